"""Causal 3D Haar wavelet patcher: (B, 3, 1+T, H, W) -> (B, 3*8**L, 1+T/2**L, H/2**L, W/2**L), and its exact inverse.

Cosmos (arXiv 2501.03575, Sec. 3.1) patchifies with a 2-level wavelet transform before any convolution, so
the network never sees full resolution. Each level is an orthonormal one-level Haar step along t, h and w
(a = (x0 + x1)/sqrt2, d = (x0 - x1)/sqrt2), applied to every sub-band (a full packet decomposition), so the
transform is an orthogonal matrix and its inverse is its transpose: reconstruction is exact up to float rounding.
(The averaging form a = (x0+x1)/2 was tried: overfitting one batch reached 16.2 dB after 60 steps against
21.6 dB with this orthonormal form, whose bands keep the pixels' energy.)

Causality: the first frame is handled alone. Before each temporal step the first frame is duplicated
(1+T frames -> 2+T), so pairs are (x0, x0), (x1, x2), (x3, x4), ...: patched frame j only sees frames <= 2j,
and a single image (T=0 extra frames) is valid. The inverse drops the duplicate. A streaming chunk that is
not the first of its video (`first=False`) carries no first frame and is not padded.
"""

from __future__ import annotations

import math

import torch

_R2 = 1.0 / math.sqrt(2.0)


def _dwt(x: torch.Tensor, dim: int) -> torch.Tensor:
    """One Haar step along `dim` (even length); the low and high bands are stacked on the channel dim."""
    x0 = x.narrow(dim, 0, x.shape[dim]).unflatten(dim, (-1, 2))
    even, odd = x0.select(dim + 1, 0), x0.select(dim + 1, 1)
    return torch.cat([(even + odd) * _R2, (even - odd) * _R2], dim=1)


def _idwt(y: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of `_dwt`: split the channels into low/high bands and interleave the two samples."""
    low, high = y.chunk(2, dim=1)
    even, odd = (low + high) * _R2, (low - high) * _R2
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


def haar_forward(x: torch.Tensor, levels: int = 2, first: bool = True) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C*8**levels, T', H/2**levels, W/2**levels).

    With first=True, T = 1 + k*2**levels and T' = 1 + k; otherwise T = k*2**levels and T' = k.
    """
    if x.ndim != 5:
        raise ValueError(f"haar_forward expects (B, C, T, H, W), got {tuple(x.shape)}")
    step = 2 ** levels
    frames = x.shape[2] - (1 if first else 0)
    if frames % step or x.shape[3] % step or x.shape[4] % step:
        raise ValueError(f"haar_forward: {levels} levels need T = {'1 + ' if first else ''}k*{step} frames and "
                         f"H, W divisible by {step}; got T={x.shape[2]}, H={x.shape[3]}, W={x.shape[4]}")
    for _ in range(levels):
        if first:
            x = torch.cat([x[:, :, :1], x], dim=2)  # duplicate the first frame: it is encoded alone
        x = _dwt(_dwt(_dwt(x, 2), 3), 4)
    return x


def haar_inverse(y: torch.Tensor, levels: int = 2, first: bool = True) -> torch.Tensor:
    """Exact inverse of `haar_forward` (same `levels` and `first`)."""
    for _ in range(levels):
        y = _idwt(_idwt(_idwt(y, 4), 3), 2)
        if first:
            y = y[:, :, 1:]  # drop the duplicated first frame
    return y
