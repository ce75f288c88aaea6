"""Visual quality of a clip from a few keyframes: sharpness, exposure, brightness, colourfulness.

- sharpness: variance of the Laplacian of the grey frame (Pech-Pacheco et al. 2000); blur removes the
  high frequencies the Laplacian responds to. Scale-dependent, so it is measured at the output resolution.
- exposure: fractions of crushed-black (luma < 16) and blown-white (luma > 239) pixels.
- colourfulness: Hasler and Suesstrunk (2003), M = sigma_rgyb + 0.3 mu_rgyb with rg = R - G, yb = (R+G)/2 - B.
"""

from __future__ import annotations

import cv2
import numpy as np


def keyframe_indices(n: int, k: int) -> list[int]:
    """k frames spread evenly inside [0, n), away from the ends (where cuts blur into a clip)."""
    k = max(1, min(k, n))
    return [int((i + 0.5) * n / k) for i in range(k)]


def colourfulness(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = np.sqrt(rg.var() + yb.var())
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


def quality_scores(keyframes: list[np.ndarray]) -> dict:
    """Mean scores over RGB uint8 keyframes (H, W, 3)."""
    sharp, bright, dark, blown, colour = [], [], [], [], []
    for rgb in keyframes:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        sharp.append(float(cv2.Laplacian(grey, cv2.CV_32F).var()))
        bright.append(float(grey.mean()) / 255.0)
        dark.append(float(np.mean(grey < 16)))
        blown.append(float(np.mean(grey > 239)))
        colour.append(colourfulness(rgb))
    return {
        "sharpness": float(np.mean(sharp)),
        "brightness": float(np.mean(bright)),
        "dark_fraction": float(np.mean(dark)),
        "bright_fraction": float(np.mean(blown)),
        "colourfulness": float(np.mean(colour)),
    }
