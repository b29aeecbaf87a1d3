"""`InstanceNorm1d/2d/3d`: each sample's channels normalized over their spatial dimensions."""
from __future__ import annotations

import warnings

from ..._tensor.tensor import Tensor
from .. import functional as F
from .batchnorm import _BatchNorm


class _InstanceNorm(_BatchNorm):
    """PyTorch's defaults differ from BatchNorm's: no affine parameters and no running
    statistics unless asked; with `track_running_stats`, eval mode normalizes with them."""

    _spatial = 1

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        unbatched = self._spatial + 1
        if input.ndim not in (unbatched, unbatched + 1):
            raise ValueError(f"expected {unbatched}D or {unbatched + 1}D input (got "
                             f"{input.ndim}D input)")
        feature_dim = input.ndim - unbatched
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{input.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You "
                          "can silence this warning by not passing in num_features, which is "
                          "not used because affine=False", stacklevel=2)
        x = input.unsqueeze(0) if input.ndim == unbatched else input
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out.squeeze(0) if input.ndim == unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over `(N, C, L)` or unbatched `(C, L)` input."""

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over `(N, C, H, W)` or unbatched `(C, H, W)` input."""

    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over `(N, C, D, H, W)` or unbatched `(C, D, H, W)` input."""

    _spatial = 3
