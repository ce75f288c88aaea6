"""The in-memory episode every source produces and every dataset format stores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VIDEO_KEY = "observation.image"


@dataclass
class Episode:
    """One episode: a video and the per-frame columns recorded with it.

    frames:  (T, H, W, 3) uint8 RGB, stored under the video key `observation.image`.
    columns: per-frame arrays whose first dimension is T, named as in LeRobot v3 where a name exists:
             "action", "observation.state", "camera.pose" (T, 4, 4 world-from-camera),
             "camera.intrinsics" (T, 3, 3), "ego.pose", "object.position", ... (float32 or int64).
    task:    the language instruction or caption ("push the red cube left").
    fps:     frames per second of `frames` and of every column.
    meta:    per-episode facts that are not per frame (source name, seed, scene parameters).
    """

    frames: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    task: str = ""
    fps: float = 10.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = np.asarray(self.frames)
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"Episode.frames must be uint8 (T, H, W, 3), got {f.dtype} {f.shape}")
        for name, col in self.columns.items():
            if len(col) != len(f):
                raise ValueError(f"Episode column {name!r} has {len(col)} rows for {len(f)} frames")

    @property
    def length(self) -> int:
        return int(self.frames.shape[0])
