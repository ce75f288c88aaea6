"""Video files <-> latent files, and evaluation of a tokenizer on videos or a dataset's clips.

Latent files are safetensors with one tensor, "latents" (CV, float32 (1, C, t, h, w)) or "tokens" (DV, int64
(1, t, h, w)), and metadata: preset, num_frames, fps, height, width. Both directions stream in temporal chunks.
"""

from __future__ import annotations

import math
import os
import resource
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from worldsmith.video import VideoError, iter_frames, probe, resize_frame, to_float, to_uint8


def _crop_to_multiple(img: np.ndarray, s: int) -> np.ndarray:
    h, w = img.shape[:2]
    hh, ww = h // s * s, w // s * s
    y0, x0 = (h - hh) // 2, (w - ww) // 2
    return img[y0:y0 + hh, x0:x0 + ww]


def frame_chunks(path: str | os.PathLike, s: int, size: int | None = None, max_frames: int | None = None,
                 chunk: int = 16) -> Iterator[torch.Tensor]:
    """Read a video file as (1, 3, t, H, W) float chunks in [-1, 1], resized to `size` (square crop) or cropped to
    multiples of `s`; at most `max_frames` frames."""
    buf: list[np.ndarray] = []
    n = 0
    for img in iter_frames(path, end=max_frames):
        img = resize_frame(img, size, "crop") if size else _crop_to_multiple(img, s)
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise VideoError(path, f"frames are smaller than the tokenizer's {s}x{s} spatial compression")
        buf.append(img)
        n += 1
        if len(buf) == chunk:
            yield torch.from_numpy(to_float(np.stack(buf))).transpose(0, 1)[None]
            buf = []
    if buf:
        yield torch.from_numpy(to_float(np.stack(buf))).transpose(0, 1)[None]
    if n == 0:
        raise VideoError(path, "no frames decoded")


def encode_file(model, src: str | os.PathLike, dst: str | os.PathLike, size: int | None = None,
                chunk_latents: int = 4) -> dict:
    """Encode a video file into a latent/token safetensors file (atomic write). Returns its metadata."""
    from safetensors.torch import save_file

    info = probe(src)
    counter = {"frames": 0, "hw": None}

    def counted():
        for c in frame_chunks(src, model.config.spatial_compression, size):
            counter["frames"] += c.shape[2]
            counter["hw"] = tuple(c.shape[-2:])
            yield c

    z = model.encode_long(counted(), chunk_latents=chunk_latents)
    key = "tokens" if model.config.kind == "dv" else "latents"
    meta = {"preset": model.config.preset, "num_frames": str(counter["frames"]), "fps": str(info.fps),
            "height": str(counter["hw"][0]), "width": str(counter["hw"][1]), "source": Path(src).name}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    save_file({key: z.contiguous()}, str(tmp), metadata=meta)
    os.replace(tmp, dst)
    return {**meta, "shape": list(z.shape)}


def decode_file(model, src: str | os.PathLike, dst: str | os.PathLike, chunk_latents: int = 4) -> dict:
    """Decode a latent/token file from `encode_file` to an H.264 mp4 (streamed, atomic)."""
    from safetensors import safe_open

    from worldsmith.data.mp4 import StreamingMp4

    try:
        with safe_open(str(src), framework="pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            key = "tokens" if "tokens" in keys else "latents" if "latents" in keys else None
            if key is None:
                raise ValueError(f"{src}: no 'latents' or 'tokens' tensor (has {keys})")
            z = f.get_tensor(key)
    except FileNotFoundError:
        raise ValueError(f"{src}: no such file") from None
    except ValueError:
        raise
    except Exception as e:  # safetensors raises several types for a damaged file
        raise ValueError(f"{src}: not a readable safetensors file ({e})") from None
    if meta.get("preset") and meta["preset"] != model.config.preset:
        raise ValueError(f"{src}: encoded with preset {meta['preset']!r}, the run is {model.config.preset!r}")
    want_dv = model.config.kind == "dv"
    if want_dv != (key == "tokens"):
        raise ValueError(f"{src}: holds {key} but the run is a {model.config.kind.upper()} tokenizer")
    num_frames = int(meta["num_frames"]) if "num_frames" in meta else None
    fps = float(meta.get("fps", 25.0))
    writer = None
    n = 0
    try:
        for chunk in model.decode_long(z, chunk_latents=chunk_latents, num_frames=num_frames):
            frames = to_uint8(chunk[0].transpose(0, 1).numpy())
            if writer is None:
                writer = StreamingMp4(dst, fps, frames.shape[1], frames.shape[2])
            writer.append(frames)
            n += len(frames)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return {"frames": n, "fps": fps, "out": str(dst)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def evaluate_clips(model, clips: list[torch.Tensor], chunk_latents: int = 4) -> dict:
    """Reconstruction quality and speed over clips (1, 3, T, H, W) in [-1, 1] (T = 1 + k*s_t).

    PSNR and SSIM are averaged over clips; frames/s count input frames over wall time of encode and decode.
    DV adds codebook usage (distinct ids / vocabulary) and bits per pixel, both the fixed-length
    log2(vocab) bits per token and the empirical entropy of the ids.
    """
    from worldsmith.tokenizer.losses import psnr, ssim

    psnrs, ssims = [], []
    enc_t = dec_t = 0.0
    frames = pixels = tokens = 0
    counts = torch.zeros(model.config.vocab_size or 1, dtype=torch.int64)
    with torch.no_grad():
        for clip in clips:
            t0 = time.perf_counter()
            z = model.encode_long(clip, chunk_latents=chunk_latents)
            t1 = time.perf_counter()
            recon = torch.cat(list(model.decode_long(z, chunk_latents=chunk_latents, num_frames=clip.shape[2])), 2)
            t2 = time.perf_counter()
            enc_t += t1 - t0
            dec_t += t2 - t1
            frames += clip.shape[2]
            pixels += clip.shape[2] * clip.shape[3] * clip.shape[4]
            recon = recon.clamp(-1, 1)
            psnrs.append(float(psnr(recon, clip)))
            ssims.append(float(ssim(recon, clip)))
            if model.config.kind == "dv":
                tokens += z.numel()
                counts += torch.bincount(z.flatten(), minlength=counts.numel())
    out = {"clips": len(clips), "frames": frames, "psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
           "encode_fps": frames / max(enc_t, 1e-9), "decode_fps": frames / max(dec_t, 1e-9),
           "peak_rss_mb": peak_rss_mb()}
    if model.config.kind == "dv":
        p = counts[counts > 0].double() / tokens
        entropy = float(-(p * p.log2()).sum())
        out.update(codebook_usage=int((counts > 0).sum()) / counts.numel(), distinct_tokens=int((counts > 0).sum()),
                   bits_per_pixel=tokens * math.log2(counts.numel()) / pixels,
                   entropy_bits_per_pixel=tokens * entropy / pixels)
    return out


def clips_from_videos(paths: list[str], size: int, frames: int, s: int) -> list[torch.Tensor]:
    """One clip of `frames` frames from the start of each video, resized to size x size."""
    clips = []
    for p in paths:
        chunks = list(frame_chunks(p, s, size=size, max_frames=frames, chunk=frames))
        clip = torch.cat(chunks, dim=2)
        if clip.shape[2] < frames:
            raise VideoError(p, f"has {clip.shape[2]} frames, fewer than the {frames} asked for")
        clips.append(clip)
    return clips
