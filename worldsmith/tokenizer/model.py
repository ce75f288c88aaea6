"""Causal video tokenizers: CV (continuous latents) and DV (FSQ token ids), after Cosmos (arXiv 2501.03575).

    video (B, 3, 1+T, H, W) in [-1, 1]
      -> 2-level Haar patcher (4x in t, h, w; exact inverse)        haar.py
      -> encoder: factorised causal residual blocks, spatial / causal temporal downsampling,
                  bottleneck with spatial attention and windowed causal temporal attention
      -> CV: latents (B, C, 1+T/s_t, H/s, W/s)   |   DV: FSQ codes -> token ids (B, 1+T/s_t, H/s, W/s)
      -> decoder (mirror) -> inverse patcher -> video

The first frame is always encoded alone, so a single image is a valid video and latent frame j only depends
on frames <= j*s_t. Presets name the compression: `cv-4x8x8` is 4x in time and 8x8 in space; each preset has a
`tiny` width (CPU) and a `base` width (GPUs), e.g. `dv-8x16x16-base`; a bare name means tiny.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from worldsmith.tokenizer.fsq import FSQ
from worldsmith.tokenizer.haar import haar_forward, haar_inverse
from worldsmith.tokenizer.layers import (CausalTemporalAttention, CausalTimeDown, CausalTimeUp, FrameGroupNorm,
                                         ResBlock, SpatialAttention, SpatialConv, SpatialDown, SpatialUp)


@dataclass
class TokenizerConfig:
    preset: str = "cv-4x8x8"          # the name this config was built from (checked on load)
    kind: str = "cv"                  # "cv": continuous latents; "dv": FSQ token ids
    temporal_compression: int = 4     # s_t: 1 + k*s_t frames -> 1 + k latent frames
    spatial_compression: int = 8      # s: H x W -> H/s x W/s
    latent_channels: int = 16         # CV latent channels (DV uses len(fsq_levels))
    fsq_levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])
    haar_levels: int = 2              # the patcher compresses 2**haar_levels in t, h and w
    width: int = 64                   # channels right after the patcher
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])  # per stage (only the first stages+1 used)
    num_res_blocks: int = 1           # residual blocks per encoder/decoder stage
    time_kernel: int = 3              # causal temporal conv kernel
    attn_window: int = 8              # causal temporal attention window, in latent frames
    heads: int = 1
    tile_size: int = 64               # spatial tile (pixels) for frames larger than this in encode_long/decode_long
    tile_overlap: int = 16            # overlap between tiles (pixels), blended linearly

    @property
    def code_channels(self) -> int:
        return len(self.fsq_levels) if self.kind == "dv" else self.latent_channels

    @property
    def vocab_size(self) -> int | None:
        return math.prod(self.fsq_levels) if self.kind == "dv" else None

    @property
    def compression(self) -> tuple[int, int, int]:
        return (self.temporal_compression, self.spatial_compression, self.spatial_compression)

    @property
    def patch(self) -> int:
        return 2 ** self.haar_levels

    def stages(self) -> tuple[int, int]:
        """(spatial, temporal) 2x downsampling stages needed beyond the patcher."""
        ns, nt = math.log2(self.spatial_compression / self.patch), math.log2(self.temporal_compression / self.patch)
        if ns < 0 or nt < 0 or ns != int(ns) or nt != int(nt):
            raise ValueError(f"compression {self.compression} must be powers of 2 >= the patcher's {self.patch}")
        return int(ns), int(nt)


PRESETS = ["cv-4x8x8", "cv-8x8x8", "cv-8x16x16", "dv-4x8x8", "dv-8x8x8", "dv-8x16x16"]
_WIDTHS = {"tiny": dict(width=64, num_res_blocks=1), "base": dict(width=128, num_res_blocks=2)}


def preset_config(name: str) -> TokenizerConfig:
    """`cv-4x8x8`, `cv-4x8x8-tiny`, `dv-8x16x16-base`, ... -> TokenizerConfig."""
    base, size = name, "tiny"
    for suffix in _WIDTHS:
        if name.endswith("-" + suffix):
            base, size = name[: -len(suffix) - 1], suffix
    if base not in PRESETS:
        raise ValueError(f"unknown tokenizer preset {name!r}; choose one of {PRESETS} (optionally with -tiny / -base)")
    kind, comp = base.split("-")
    st, sh, sw = (int(v) for v in comp.split("x"))
    assert sh == sw
    return TokenizerConfig(preset=name, kind=kind, temporal_compression=st, spatial_compression=sh, **_WIDTHS[size])


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        ns, nt = cfg.stages()
        n = max(ns, nt)
        widths = [cfg.width * m for m in (cfg.channel_mult + [cfg.channel_mult[-1]] * n)[: n + 1]]
        c_in = 3 * cfg.patch ** 3
        self.conv_in = SpatialConv(c_in, widths[0])
        self.blocks = nn.ModuleList()
        for i in range(n):
            for _ in range(cfg.num_res_blocks):
                self.blocks.append(ResBlock(widths[i], widths[i], cfg.time_kernel))
            c = widths[i]
            if i < ns:
                self.blocks.append(SpatialDown(c, widths[i + 1]))
                c = widths[i + 1]
            if i < nt:
                self.blocks.append(CausalTimeDown(c, widths[i + 1]))
        w = widths[-1]
        self.mid = nn.ModuleList([ResBlock(w, w, cfg.time_kernel), SpatialAttention(w, cfg.heads),
                                  CausalTemporalAttention(w, cfg.attn_window, cfg.heads), ResBlock(w, w, cfg.time_kernel)])
        self.norm_out = FrameGroupNorm(w)
        self.conv_out = SpatialConv(w, cfg.code_channels)
        self.widths = widths

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        h = self.conv_in(x)
        for block in [*self.blocks, *self.mid]:
            h = block(h, state)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig, widths: list[int]):
        super().__init__()
        ns, nt = cfg.stages()
        n = max(ns, nt)
        w = widths[-1]
        self.conv_in = SpatialConv(cfg.code_channels, w)
        self.mid = nn.ModuleList([ResBlock(w, w, cfg.time_kernel), SpatialAttention(w, cfg.heads),
                                  CausalTemporalAttention(w, cfg.attn_window, cfg.heads), ResBlock(w, w, cfg.time_kernel)])
        self.blocks = nn.ModuleList()
        for i in reversed(range(n)):  # mirror of the encoder: undo stage i's downsampling, then its blocks
            c = widths[i + 1] if i < ns else widths[i]
            if i < nt:
                self.blocks.append(CausalTimeUp(widths[i + 1], c))
            if i < ns:
                self.blocks.append(SpatialUp(c, widths[i]))
            for _ in range(cfg.num_res_blocks):
                self.blocks.append(ResBlock(widths[i], widths[i], cfg.time_kernel))
        self.norm_out = FrameGroupNorm(widths[0])
        self.conv_out = SpatialConv(widths[0], 3 * cfg.patch ** 3)

    def forward(self, z: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        h = self.conv_in(z)
        for block in [*self.mid, *self.blocks]:
            h = block(h, state)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))


class VideoTokenizer(nn.Module):
    """CV or DV causal video tokenizer. `encode`/`decode` work on whole clips; `encode_long`/`decode_long`
    stream videos of any length (and any frame size, by tiles) with bounded memory."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        if cfg.kind not in ("cv", "dv"):
            raise ValueError(f"tokenizer kind must be 'cv' or 'dv', got {cfg.kind!r}")
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, self.encoder.widths)
        self.fsq = FSQ(cfg.fsq_levels) if cfg.kind == "dv" else None

    # -- checks ---------------------------------------------------------------------------------------
    def check_video(self, video: torch.Tensor, first: bool = True) -> None:
        st, s = self.config.temporal_compression, self.config.spatial_compression
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got {tuple(video.shape)}")
        t = video.shape[2] - (1 if first else 0)
        if t < 0 or t % st:
            raise ValueError(f"video has {video.shape[2]} frames; {self.config.preset} needs "
                             f"{'1 + ' if first else ''}k*{st} (e.g. {1 + 4 * st if first else 4 * st})")
        if video.shape[3] % s or video.shape[4] % s:
            raise ValueError(f"frame size {video.shape[3]}x{video.shape[4]} must be divisible by {s} "
                             f"for {self.config.preset}")

    # -- clip API ---------------------------------------------------------------------------------------
    def _encode_raw(self, video: torch.Tensor, state: dict | None = None, first: bool = True) -> torch.Tensor:
        """Pre-quantisation encoder output (B, code_channels, t, h, w)."""
        x = haar_forward(video, self.config.haar_levels, first=first)
        return self.encoder(x, state)

    def _decode_raw(self, z: torch.Tensor, state: dict | None = None, first: bool = True) -> torch.Tensor:
        return haar_inverse(self.decoder(z, state), self.config.haar_levels, first=first)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder output -> what the decoder sees: CV latents unchanged, DV codes in [-1, 1]."""
        return self.fsq.quantize(z) if self.fsq is not None else z

    def encode_codes(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 1+k*s_t, H, W) -> CV latents or DV codes (B, C, 1+k, H/s, W/s) float."""
        self.check_video(video)
        return self.quantize(self._encode_raw(video))

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """CV: latents (B, C, 1+k, H/s, W/s) float.  DV: token ids (B, 1+k, H/s, W/s) int64."""
        codes = self.encode_codes(video)
        return self.fsq.codes_to_ids(codes) if self.fsq is not None else codes

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of `encode` (DV also accepts float codes) -> (B, 3, 1+k*s_t, H, W)."""
        return self._decode_raw(self.to_codes(z))

    def to_codes(self, z: torch.Tensor) -> torch.Tensor:
        if self.fsq is not None and not torch.is_floating_point(z):
            return self.fsq.ids_to_codes(z)
        if z.ndim != 5 or z.shape[1] != self.config.code_channels:
            raise ValueError(f"latents must be (B, {self.config.code_channels}, t, h, w), got {tuple(z.shape)}")
        return z

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction, codes)."""
        codes = self.encode_codes(video)
        return self._decode_raw(codes), codes

    # -- streaming (streaming.py) --------------------------------------------------------------------------
    def encode_long(self, video, chunk_latents: int = 4) -> torch.Tensor:
        """Any length (tensor or iterable of chunks), any size (tiles): see streaming.encode_long."""
        from worldsmith.tokenizer.streaming import encode_long
        return encode_long(self, video, chunk_latents=chunk_latents)

    def decode_long(self, z: torch.Tensor, chunk_latents: int = 4, num_frames: int | None = None):
        """Yields (B, 3, t, H, W) chunks, trimmed to num_frames: see streaming.decode_long."""
        from worldsmith.tokenizer.streaming import decode_long
        return decode_long(self, z, chunk_latents=chunk_latents, num_frames=num_frames)


def build_tokenizer(preset: str | TokenizerConfig, overrides: list[str] | None = None) -> VideoTokenizer:
    from worldsmith.config import apply_overrides
    cfg = preset if isinstance(preset, TokenizerConfig) else preset_config(preset)
    return VideoTokenizer(apply_overrides(cfg, overrides))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["TokenizerConfig", "VideoTokenizer", "PRESETS", "preset_config", "build_tokenizer", "param_count"]
