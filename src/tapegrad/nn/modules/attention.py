"""`MultiheadAttention` (PyTorch's parameter layout: packed `in_proj_weight`, `out_proj`)."""
from __future__ import annotations


from ..._functions.creation import empty
from ..._tensor.tensor import Tensor
from .. import functional as F, init
from .._functional_layers import attention_weights
from ..parameter import Parameter
from .linear import Linear
from .module import Module


class NonDynamicallyQuantizableLinear(Linear):
    """A `Linear` (PyTorch names the output projection's class this way)."""


def _heads(x: Tensor, n: int, num_heads: int) -> Tensor:
    """`(L, N, E)` -> `(N, H, L, E/H)`."""
    L, _, E = x.shape
    return x.reshape(L, n, num_heads, E // num_heads).permute(1, 2, 0, 3)


class MultiheadAttention(Module):
    """Attention from `query` to `key`/`value` with `num_heads` heads.

    Returns `(output, weights)`; weights are averaged over heads unless
    `average_attn_weights=False`, and None when `need_weights=False`. Bool masks mark positions
    that may NOT be attended (PyTorch's convention here); float masks are added to the logits.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                                      "supported by tapegrad")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        kw = {"dtype": dtype, "device": device}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _project(self, query: Tensor, key: Tensor, value: Tensor):
        E, b = self.embed_dim, self.in_proj_bias
        if self._qkv_same_embed_dim and query is key and key is value:
            L, N, _ = query.shape
            qkv = F.linear(query, self.in_proj_weight, b)
            qkv = qkv.reshape(L, N, 3, self.num_heads, self.head_dim).permute(2, 1, 3, 0, 4)
            return qkv[0], qkv[1], qkv[2]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        n = query.shape[1]
        return (_heads(F.linear(query, wq, bq), n, self.num_heads),
                _heads(F.linear(key, wk, bk), n, self.num_heads),
                _heads(F.linear(value, wv, bv), n, self.num_heads))

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                               "Transformer module method `generate_square_subsequent_mask` to "
                               "create this mask.")
        unbatched = query.ndim == 2
        same = query is key and key is value
        if unbatched:
            query, key, value = (t.reshape(t.shape[0], 1, t.shape[1]) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.reshape(1, -1)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if same:
            key = value = query
        L, N, _ = query.shape
        S = key.shape[0]
        q, k, v = self._project(query, key, value)
        masks, kinds = [], []
        if attn_mask is not None:
            if attn_mask.ndim == 3:
                attn_mask = attn_mask.reshape(N, self.num_heads, L, S)
            masks.append(attn_mask)
            kinds.append("block" if attn_mask.dtype.name == "bool" else "float")
        if key_padding_mask is not None:
            masks.append(key_padding_mask.reshape(N, 1, 1, S))
            kinds.append("block" if key_padding_mask.dtype.name == "bool" else "float")
        weights = attention_weights(q, k, masks, tuple(kinds))
        if self.dropout > 0.0:
            weights = F.dropout(weights, self.dropout, self.training)
        out = (weights @ v).permute(2, 0, 1, 3).reshape(L, N, self.embed_dim)
        out = self.out_proj(out)
        if unbatched:
            out = out.reshape(L, self.embed_dim)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if unbatched:
            weights = weights.reshape(tuple(weights.shape)[1:])
        return out, weights


