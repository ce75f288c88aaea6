"""Per-clip fingerprints: an exact content hash, keyframe dHashes, and a cheap semantic embedding.

- exact: SHA-256 of the clip's small grey frames quantised to 32 levels, so that two decodes of the same
  footage (or a re-encode at high quality) hash alike while any real difference does not.
- near: dHash (Krawetz 2011) of each keyframe: the sign of horizontal neighbour differences on a 9x8 grey
  thumbnail, 64 bits. Near-duplicate clips differ in few bits.
- semantic: a 160-d vector, L2-normalised: an HSV colour histogram (8 hue x 4 saturation x 2 value bins,
  64-d, square-rooted: the Hellinger map, so that cosine compares distributions) concatenated with a fixed
  random projection (seed 0) of the mean 16x9 grey thumbnail (96-d), which carries the layout. It is cheap
  and offline; it is not a learned embedding, and SemDeDup thresholds are set for it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import cv2
import numpy as np


def exact_hash(small_grey: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for g in small_grey:
        h.update((g >> 3).tobytes())
    return h.hexdigest()[:32]


def dhash(rgb: np.ndarray) -> int:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    t = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (t[:, 1:] > t[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    return int(bin(a ^ b).count("1"))


@lru_cache(maxsize=1)
def _projection() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((16 * 9, 96)).astype(np.float32) / np.sqrt(16 * 9)


def embedding(keyframes: list[np.ndarray]) -> np.ndarray:
    hists, thumbs = [], []
    for rgb in keyframes:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 2], [0, 180, 0, 256, 0, 256]).ravel()
        hists.append(hist / max(hist.sum(), 1.0))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        thumbs.append(cv2.resize(grey, (16, 9), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0)
    colour = np.sqrt(np.mean(hists, axis=0))
    layout = np.mean(thumbs, axis=0)
    layout = (layout - layout.mean()) @ _projection()
    layout /= np.linalg.norm(layout) + 1e-8
    v = np.concatenate([colour / (np.linalg.norm(colour) + 1e-8), layout]).astype(np.float32)
    return v / (np.linalg.norm(v) + 1e-8)
