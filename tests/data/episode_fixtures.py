"""Episodes whose content says where they came from: frame k of episode e is a flat grey of level
LEVEL0 + STEP * k (readable after lossy coding) with a colour patch for e, and the action at frame k
is (k, e, ...). Anything that shifts frames against columns by even one frame shows up."""

from __future__ import annotations

import numpy as np
import pytest

from worldsmith.data.episode import Episode

LEVEL0, STEP = 16, 8


def frame_level_index(frames: np.ndarray) -> np.ndarray:
    """Recover the encoded frame index from decoded frames (the grey level of the top half)."""
    h = frames.shape[1]
    level = frames[:, : h // 2].astype(np.float64).mean(axis=(1, 2, 3))
    return np.round((level - LEVEL0) / STEP).astype(int)


def make_episode(e: int, length: int, height: int = 32, width: int = 48, fps: float = 10.0, task: str | None = None,
                 seed: int = 0) -> Episode:
    rng = np.random.default_rng([seed, e])
    k = np.arange(length)
    frames = np.empty((length, height, width, 3), np.uint8)
    frames[:] = (LEVEL0 + STEP * k).astype(np.uint8)[:, None, None, None]
    # A smooth, episode-specific colour field in the bottom half (realistic content for PSNR).
    yy, xx = np.mgrid[0 : height - height // 2, 0:width]
    for c in range(3):
        frames[:, height // 2 :, :, c] = (60 + 40 * c + 30 * np.sin(xx / 7.0 + e + c) + 20 * np.cos(yy / 5.0 - e))[None]
    action = np.zeros((length, 7), np.float32)
    action[:, 0], action[:, 1] = k, e
    action[:, 2:] = rng.normal(size=(length, 5)).astype(np.float32)
    columns = {
        "action": action,
        "observation.state": rng.normal(size=(length, 3)).astype(np.float32),
        "camera.pose": np.tile(np.eye(4, dtype=np.float32), (length, 1, 1)) + np.float32(e),
        "step": k.astype(np.int64),
        "done": k == length - 1,
        "reward": rng.normal(size=(length, 1)),  # float64 (T, 1): kept distinct from a (T,) column
    }
    return Episode(frames, columns, task if task is not None else f"task {e % 2}", fps, {"episode": e, "seed": seed})


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture
def episodes():
    return [make_episode(e, n) for e, n in enumerate([12, 20, 7])]
