"""Causal building blocks of the tokenizer, all on (B, C, T, H, W) tensors.

Every operation is causal in time: output frame t depends on input frames <= t. Everything that looks
back in time (temporal convs, temporal attention, temporal down/up-sampling) takes an optional
`state: dict`. With state=None a call processes one whole clip whose first frame starts the video.
With a dict, successive calls process successive chunks of one video: each module stores the frames of
context it needs from the previous chunk under its own key, so chunked processing computes the same
values as one pass (see streaming.py). Normalisation is per frame (never across time), again for causality.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _first_chunk(module: nn.Module, state: dict | None) -> bool:
    """True when this call starts a video: no state at all, or the module has not run in this stream yet."""
    return state is None or module not in state


class FrameGroupNorm(nn.Module):
    """GroupNorm statistics per frame (over C/G, H, W), so no frame sees the future through its mean."""

    def __init__(self, channels: int, groups: int = 16, eps: float = 1e-6):
        super().__init__()
        self.groups = min(groups, channels)
        while channels % self.groups:
            self.groups -= 1
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        # statistics and normalisation in fp32 (as torch's own GroupNorm under autocast); the result goes back
        # to the input's dtype so the next conv keeps its bf16 speed
        xg = x.float().reshape(b, self.groups, c // self.groups, t, h * w)
        var, mean = torch.var_mean(xg, dim=(2, 4), keepdim=True, correction=0)
        xg = (xg - mean) * torch.rsqrt(var + self.eps)
        out = xg.reshape(b, c, t, h, w) * self.weight.view(1, c, 1, 1, 1) + self.bias.view(1, c, 1, 1, 1)
        return out.to(x.dtype)


class PointwiseConv(nn.Conv3d):
    """A 1x1x1 conv3d computed as a 1x1 conv2d over (T, H*W): the same weights and sums, but it takes the fast
    oneDNN path (torch's CPU conv3d with a 1x1x1 kernel falls back to a slow im2col kernel)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = F.conv2d(x.reshape(b, c, t, h * w), self.weight[:, :, 0], self.bias)
        return y.reshape(b, -1, t, h, w)


class SpatialConv(nn.Conv3d):
    """A per-frame k x k convolution (kernel (1, k, k)): no temporal mixing."""

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__(c_in, c_out, (1, k, k), padding=(0, k // 2, k // 2))


class CausalTimeConv(nn.Module):
    """Temporal convolution (kernel (k, 1, 1)) padded on the left only.

    The first chunk is padded by replicating its first frame (so a single image is a valid input);
    later chunks are padded with the last k-1 input frames of the previous chunk, kept in `state`.
    """

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__()
        self.k = k
        self.conv = nn.Conv3d(c_in, c_out, (k, 1, 1))

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        if self.k == 1:
            return self.conv(x)
        if _first_chunk(self, state):
            pad = x[:, :, :1].expand(-1, -1, self.k - 1, -1, -1)
        else:
            pad = state[self]
        xp = torch.cat([pad, x], dim=2)
        if state is not None:
            state[self] = xp[:, :, -(self.k - 1):].detach()
        # a (k, 1, 1) conv3d is a (k, 1) conv2d over (T, H*W): the same sums, ~25% faster on CPU
        b, c, t, h, w = xp.shape
        y = F.conv2d(xp.reshape(b, c, t, h * w), self.conv.weight[..., 0], self.conv.bias)
        return y.reshape(b, -1, t - self.k + 1, h, w)


class ResBlock(nn.Module):
    """Factorised causal 3D residual block: norm, SiLU, spatial conv, causal temporal conv (twice)."""

    def __init__(self, c_in: int, c_out: int, time_kernel: int = 3):
        super().__init__()
        self.norm1 = FrameGroupNorm(c_in)
        self.conv1s = SpatialConv(c_in, c_out)
        self.conv1t = CausalTimeConv(c_out, c_out, time_kernel)
        self.norm2 = FrameGroupNorm(c_out)
        self.conv2s = SpatialConv(c_out, c_out)
        self.conv2t = CausalTimeConv(c_out, c_out, time_kernel)
        self.skip = PointwiseConv(c_in, c_out) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2t.conv.weight)  # start as identity: stable early training
        nn.init.zeros_(self.conv2t.conv.bias)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        h = self.conv1t(self.conv1s(F.silu(self.norm1(x))), state)
        h = self.conv2t(self.conv2s(F.silu(self.norm2(h))), state)
        return self.skip(x) + h


class SpatialAttention(nn.Module):
    """Self-attention among the h*w positions of each frame (single head over all channels)."""

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.norm = FrameGroupNorm(channels)
        self.qkv = PointwiseConv(channels, 3 * channels)
        self.proj = PointwiseConv(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        qkv = self.qkv(self.norm(x))  # (B, 3C, T, H, W) -> (3, B*T, heads, HW, C/heads)
        qkv = qkv.reshape(b, 3, self.heads, c // self.heads, t, h * w).permute(1, 0, 4, 2, 5, 3)
        q, k, v = (z.reshape(b * t, self.heads, h * w, c // self.heads) for z in qkv)
        o = F.scaled_dot_product_attention(q, k, v)
        o = o.reshape(b, t, self.heads, h * w, c // self.heads).permute(0, 2, 4, 1, 3).reshape(b, c, t, h, w)
        return x + self.proj(o)


class CausalTemporalAttention(nn.Module):
    """Self-attention along time at each spatial position, causal, over a window of `window` frames.

    The window bounds the context a stream has to carry: the last window-1 normalised frames are kept
    in `state`, so chunked attention sees exactly the keys a single pass sees.
    """

    def __init__(self, channels: int, window: int = 8, heads: int = 1):
        super().__init__()
        self.window, self.heads = window, heads
        self.norm = FrameGroupNorm(channels)
        self.q = PointwiseConv(channels, channels)
        self.kv = PointwiseConv(channels, 2 * channels)
        self.proj = PointwiseConv(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def _heads(self, z: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = z.shape  # -> (B*H*W, heads, T, C/heads)
        return z.reshape(b, self.heads, c // self.heads, t, h * w).permute(0, 4, 1, 3, 2).reshape(
            b * h * w, self.heads, t, c // self.heads)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        xn = self.norm(x)
        past = None if _first_chunk(self, state) else state[self]
        ctx = xn if past is None else torch.cat([past, xn], dim=2)
        if state is not None:
            state[self] = ctx[:, :, -(self.window - 1):].detach() if self.window > 1 else ctx[:, :, :0]
        offset = ctx.shape[2] - t  # absolute position of the first query within ctx
        qi = torch.arange(t, device=x.device)[:, None] + offset
        kj = torch.arange(ctx.shape[2], device=x.device)[None, :]
        allowed = (kj <= qi) & (qi - kj < self.window)
        k, v = self.kv(ctx).chunk(2, dim=1)
        o = F.scaled_dot_product_attention(self._heads(self.q(xn)), self._heads(k), self._heads(v), attn_mask=allowed)
        o = o.reshape(b, h * w, self.heads, t, c // self.heads).permute(0, 2, 4, 3, 1).reshape(b, c, t, h, w)
        return x + self.proj(o)


class SpatialDown(nn.Module):
    """2x spatial downsampling: space-to-depth (2x2 -> channels) then a 1x1 conv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = PointwiseConv(4 * c_in, c_out)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t, h // 2, 2, w // 2, 2).permute(0, 1, 4, 6, 2, 3, 5).reshape(b, 4 * c, t, h // 2, w // 2)
        return self.proj(x)


class SpatialUp(nn.Module):
    """2x spatial upsampling: a 1x1 conv to 4C then depth-to-space, then a 3x3 conv to smooth."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = PointwiseConv(c_in, 4 * c_out)
        self.smooth = SpatialConv(c_out, c_out)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        b, _, t, h, w = x.shape
        y = self.proj(x)
        c = y.shape[1] // 4
        y = y.reshape(b, c, 2, 2, t, h, w).permute(0, 1, 4, 5, 2, 6, 3).reshape(b, c, t, 2 * h, 2 * w)
        return self.smooth(y)


class CausalTimeDown(nn.Module):
    """2x causal temporal downsampling: 1+2m frames -> 1+m (first chunk), 2m -> m (later chunks).

    The first frame is duplicated, then frame pairs (x0, x0), (x1, x2), ... are stacked on channels and
    mixed by a 1x1 conv, the same first-frame rule as the Haar patcher.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = PointwiseConv(2 * c_in, c_out)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        if _first_chunk(self, state):
            x = torch.cat([x[:, :, :1], x], dim=2)
            if state is not None:
                state[self] = True
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t // 2, 2, h, w).permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * c, t // 2, h, w)
        return self.proj(x)


class CausalTimeUp(nn.Module):
    """Inverse of CausalTimeDown: each latent frame becomes two frames; the first chunk drops its first."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = PointwiseConv(c_in, 2 * c_out)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        y = self.proj(x)
        b, c2, t, h, w = y.shape
        y = y.reshape(b, c2 // 2, 2, t, h, w).permute(0, 1, 3, 2, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)
        if _first_chunk(self, state):
            y = y[:, :, 1:]
            if state is not None:
                state[self] = True
        return y
