"""Streaming: encode and decode videos of any length in temporal chunks, and any frame size in spatial tiles.

Memory is bounded by the chunk, not the video: the input may be an iterator of frame chunks (a decoder
reading a file), latents are small and kept, decoded frames are yielded chunk by chunk.

Exactness. Every temporal operation is causal and carries its left context from chunk to chunk (layers.py),
the Haar patcher and the temporal down/up-sampling pair frames inside chunks aligned to s_t, and temporal
attention has a finite window whose keys are cached. So a chunked pass computes the same sums as one pass;
the only differences are float rounding where a kernel blocks a different-length tensor differently
(measured <= 1e-5 in tests/tokenizer/test_streaming.py; bit-exact for most shapes).

Tiles. Frames larger than `config.tile_size` are cut into overlapping tiles (multiples of the spatial
compression), each tile streamed with its own state; the overlaps are blended with linear ramps, in latent
space when encoding and in pixel space when decoding, so seams do not show. Tiles are an approximation
(a tile does not see beyond its border), unlike chunking.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def _tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Start offsets of tiles of `tile` covering `size`, overlapping by >= `overlap`, aligned to `align`."""
    if size <= tile:
        return [0]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def _ramp(n: int, overlap: int, before: bool, after: bool, device) -> torch.Tensor:
    """Blend weights of one tile along one axis: rising over the leading overlap, falling over the trailing."""
    w = torch.ones(n, device=device)
    if overlap > 0:
        r = (torch.arange(overlap, device=device, dtype=torch.float32) + 0.5) / overlap
        if before:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if after:
            w[n - overlap:] = torch.minimum(w[n - overlap:], r.flip(0))
    return w


def _tiled(fn, x: torch.Tensor, states: dict, tile_in: int, overlap_in: int, scale: float, align: int) -> torch.Tensor:
    """Apply `fn(tile, state)` on overlapping spatial tiles of x and blend the outputs.

    `scale` = output size / input size (1/s when encoding, s when decoding); `align` keeps tile starts on
    multiples the model can take.
    """
    h, w = x.shape[-2:]
    if h <= tile_in and w <= tile_in:
        return fn(x, states.setdefault((0, 0), {}))
    ys, xs = _tile_starts(h, tile_in, overlap_in, align), _tile_starts(w, tile_in, overlap_in, align)
    out = weight = None
    ov = int(round(overlap_in * scale))
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            th, tw = min(tile_in, h), min(tile_in, w)
            y = fn(x[..., y0:y0 + th, x0:x0 + tw], states.setdefault((y0, x0), {}))
            if out is None:
                out = torch.zeros(*y.shape[:-2], int(h * scale), int(w * scale), dtype=y.dtype, device=y.device)
                weight = torch.zeros(int(h * scale), int(w * scale), device=y.device)
            wy = _ramp(y.shape[-2], ov, i > 0, i < len(ys) - 1, y.device)
            wx = _ramp(y.shape[-1], ov, j > 0, j < len(xs) - 1, y.device)
            wt = wy[:, None] * wx[None, :]
            oy, ox = int(y0 * scale), int(x0 * scale)
            out[..., oy:oy + y.shape[-2], ox:ox + y.shape[-1]] += y * wt
            weight[oy:oy + y.shape[-2], ox:ox + y.shape[-1]] += wt
    return out / weight


def _aligned_chunks(video, first_len: int, next_len: int, st: int) -> Iterator[torch.Tensor]:
    """Re-cut a tensor (B, 3, T, H, W) or an iterable of such pieces into chunks of first_len, then next_len
    frames. A short tail is padded by repeating its last frame up to the next valid length."""
    pieces = (video[:, :, i:i + next_len] for i in range(0, video.shape[2], next_len)) \
        if isinstance(video, torch.Tensor) else iter(video)
    buf: list[torch.Tensor] = []
    have, need, first = 0, first_len, True
    for piece in pieces:
        buf.append(piece)
        have += piece.shape[2]
        while have >= need:
            cat = torch.cat(buf, dim=2)
            yield cat[:, :, :need]
            rest = cat[:, :, need:]
            buf, have, need, first = ([rest] if rest.shape[2] else []), rest.shape[2], next_len, False
    if have:
        cat = torch.cat(buf, dim=2)
        extra = (have - (1 if first else 0)) % st
        if extra:
            pad = cat[:, :, -1:].expand(-1, -1, st - extra, -1, -1)
            cat = torch.cat([cat, pad], dim=2)
        yield cat


@torch.no_grad()
def encode_long(model, video: torch.Tensor | Iterable[torch.Tensor], chunk_latents: int = 4) -> torch.Tensor:
    """Encode a video of any length: (B, 3, T, H, W) tensor or iterable of (B, 3, t, H, W) chunks in [-1, 1].

    Returns CV latents (B, C, 1+ceil((T-1)/s_t), h, w) or DV ids (B, 1+ceil(...), h, w). A tail that does
    not fill s_t frames is padded by repeating the last frame: pass T as `num_frames` to `decode_long`.
    """
    cfg = model.config
    st, s = cfg.temporal_compression, cfg.spatial_compression
    states: dict = {}
    outs = []
    for n, chunk in enumerate(_aligned_chunks(video, 1 + chunk_latents * st, chunk_latents * st, st)):
        first = n == 0
        model.check_video(chunk, first=first)

        def enc(x, state, first=first):
            return model.quantize(model._encode_raw(x, state, first=first))

        codes = _tiled(enc, chunk, states, cfg.tile_size, cfg.tile_overlap, 1.0 / s, s)
        outs.append(model.fsq.codes_to_ids(codes) if model.fsq is not None else codes)
    if not outs:
        raise ValueError("encode_long: the video has no frames")
    return torch.cat(outs, dim=-3)


@torch.no_grad()
def decode_long(model, z: torch.Tensor, chunk_latents: int = 4, num_frames: int | None = None) -> Iterator[torch.Tensor]:
    """Decode latents/ids from `encode_long` chunk by chunk; yields (B, 3, t, H, W) pieces, trimmed to num_frames."""
    cfg = model.config
    s = cfg.spatial_compression
    states: dict = {}
    t_lat = z.shape[-3]
    emitted = 0
    start = 0
    while start < t_lat:
        first = start == 0
        end = min(t_lat, start + chunk_latents + (1 if first else 0))
        codes = model.to_codes(z[:, start:end] if z.ndim == 4 else z[:, :, start:end])

        def dec(c, state, first=first):
            return model._decode_raw(c, state, first=first)

        frames = _tiled(dec, codes, states, cfg.tile_size // s, cfg.tile_overlap // s, float(s), 1)
        if num_frames is not None:
            frames = frames[:, :, : max(0, num_frames - emitted)]
        emitted += frames.shape[2]
        if frames.shape[2]:
            yield frames
        start = end
