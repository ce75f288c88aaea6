"""Finite Scalar Quantisation (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Each of the d latent channels is bounded to `levels[i]` values and rounded; the product of the levels is the
vocabulary (default [8, 8, 8, 5, 5, 5] -> 64,000 tokens). No codebook, no commitment loss: rounding uses a
straight-through estimator so the encoder gets the gradient of the identity.

Codes are the rounded values scaled to [-1, 1]; a token id is the mixed-radix number whose digits are the
per-channel level indices, so id <-> code is an exact bijection over range(vocab_size).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity in the backward pass."""
    return z + (torch.round(z) - z).detach()


class FSQ(nn.Module):
    def __init__(self, levels: list[int] | tuple[int, ...] = (8, 8, 8, 5, 5, 5), eps: float = 1e-3):
        super().__init__()
        if any(int(l) < 2 for l in levels):
            raise ValueError(f"FSQ levels must all be >= 2, got {list(levels)}")
        self.levels = [int(l) for l in levels]
        self.eps = eps
        lv = torch.tensor(self.levels, dtype=torch.float64)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1], dtype=torch.int64), 0)
        self.register_buffer("_levels", lv.float(), persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def vocab_size(self) -> int:
        return math.prod(self.levels)

    def _shape(self, z: torch.Tensor) -> torch.Tensor:
        """Levels broadcast over (B, d, ...) tensors."""
        return self._levels.view(1, -1, *([1] * (z.ndim - 2))).to(z.dtype)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash each channel into an interval that rounds to exactly L integer values.

        Odd L: tanh * (L-1)/2 gives (-(L-1)/2, (L-1)/2), rounding to L values centred on 0. Even L: shift by
        1/2 so the interval (-L/2, L/2 - 1) + eps-margin rounds to the L values -L/2 .. L/2-1.
        """
        lv = self._shape(z)
        half_l = (lv - 1) * (1 + self.eps) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d, ...) pre-quantisation latents -> codes in [-1, 1] (straight-through gradient)."""
        half_width = (self._shape(z) // 2)
        return round_ste(self.bound(z)) / half_width

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, d, ...) codes -> (B, ...) int64 token ids."""
        half_width = self._shape(codes) // 2
        digits = torch.round(codes * half_width + half_width).long()
        basis = self._basis.view(1, -1, *([1] * (codes.ndim - 2)))
        return (digits * basis).sum(dim=1)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, ...) int64 token ids -> (B, d, ...) float codes."""
        if ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"token ids must be an integer tensor, got {ids.dtype}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got [{int(ids.min())}, {int(ids.max())}]")
        ids = ids.long().unsqueeze(1)
        basis = self._basis.view(1, -1, *([1] * (ids.ndim - 2)))
        levels = self._levels.long().view_as(basis)
        digits = (ids // basis) % levels
        half_width = (levels // 2).float()
        return (digits.float() - half_width) / half_width
