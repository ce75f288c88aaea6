"""Key/value cache for incremental decoding.

One preallocated (B, kv_heads, capacity, head_dim) buffer per layer for keys and one for values, and a
shared length. A forward pass over L new positions writes them at [length, length + L) in every layer and
then advances the length once. `truncate(n)` rolls back (speculative decoding drops rejected drafts);
the buffers grow by doubling when a rollout needs more room. Keys are stored after RoPE, so a cached key
keeps the position it was computed at: see ar_sampling.rollout for how the sliding window keeps them valid.
"""

from __future__ import annotations

import torch


class KVCache:
    def __init__(self, layers: int, batch: int, kv_heads: int, head_dim: int, capacity: int,
                 device=None, dtype=torch.float32):
        shape = (batch, kv_heads, max(int(capacity), 1), head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def _grow(self, need: int) -> None:
        new = max(need, 2 * self.capacity)
        for buf in (self.k, self.v):
            for i, t in enumerate(buf):
                bigger = t.new_zeros(t.shape[0], t.shape[1], new, t.shape[3])
                bigger[:, :, : self.length] = t[:, :, : self.length]
                buf[i] = bigger

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, kv_heads, L, hd) after the current length; return all keys/values so far."""
        end = self.length + k.shape[2]
        if end > self.capacity:
            self._grow(end)
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def truncate(self, n: int) -> None:
        if not 0 <= n <= self.length:
            raise ValueError(f"cannot truncate a cache of length {self.length} to {n}")
        self.length = n

    def reset(self) -> None:
        self.length = 0
