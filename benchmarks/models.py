"""The benchmark models as ordinary PyTorch code, run by `torch` or by `tapegrad` (`T`)."""
import math

import numpy as np


def mlp(T, sizes):
    nn = T.nn
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def gpt(T, vocab=10, context=16, width=48, heads=3, layers=3):
    nn, F = T.nn, T.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.ln2 = nn.LayerNorm(width)
            self.fc1 = nn.Linear(width, 4 * width)
            self.fc2 = nn.Linear(4 * width, width)
            self.register_buffer("mask", T.tril(T.ones(context, context)).view(1, 1, context, context))

        def forward(self, x):
            B, L, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q = q.view(B, L, heads, C // heads).transpose(1, 2)
            k = k.view(B, L, heads, C // heads).transpose(1, 2)
            v = v.view(B, L, heads, C // heads).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // heads))
            att = att.masked_fill(self.mask[:, :, :L, :L] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, L, C)
            x = x + self.proj(y)
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(context, width)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab)

        def forward(self, idx):
            B, L = idx.shape
            x = self.tok(idx) + self.pos(T.arange(L))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x))

    return GPT()


def classifier_step(T, model, opt, clip=None):
    """The step of cases 1-3: zero_grad, forward, cross-entropy, backward, (clip,) step."""
    F = T.nn.functional

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        if clip is not None:
            T.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss
    return step


def mlp_training(T, wrap, compiled: bool, batch: int, optimizer: str = "Adam"):
    """The MLP 784-1024-1024-10 under `wrap` (a parallel wrapper, or the identity) with its
    step (compiled or not), one random batch and the optimizer: `(step, x, y, opt, model)`."""
    T.manual_seed(0)
    model = wrap(mlp(T, [784, 1024, 1024, 10]))
    opt = getattr(T.optim, optimizer)(model.parameters(), lr=1e-3)
    step = classifier_step(T, model, opt)
    if compiled:
        step = T.compile(step)
    rng = np.random.default_rng(0)
    x = T.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = T.tensor(rng.integers(0, 10, batch))
    return step, x, y, opt, model


def chain_step(T, x, n=50):
    """Case 4: a chain of small elementwise ops and its backward."""
    def step():
        y = x
        for _ in range(n // 2):
            y = (y * 1.01).tanh()
        y.sum().backward()
        grad = x.grad
        x.grad = None
        return grad
    return step
