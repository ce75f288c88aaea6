"""Data sources with ground truth: simulators and folders of video, each yielding `Episode`s.

Every source module exposes:
    NAME: str, DESCRIPTION: str, FPS: float
    generate(episodes: int, frames: int, size: int = 64, seed: int = 0, **options) -> Iterator[Episode]
Episode k is drawn from its own RNG seeded by (seed, k), so any episode can be regenerated alone and
the same seed gives the same frames and columns byte for byte.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterator

from worldsmith.data.episode import Episode

SOURCES = {
    "robot": "worldsmith.sources.robot",
    "driving": "worldsmith.sources.driving",
    "camera": "worldsmith.sources.camera",
    "physics": "worldsmith.sources.physics",
    "atari": "worldsmith.sources.atari",
    "videos": "worldsmith.sources.videos",
}


def get_source(name: str) -> ModuleType:
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}")
    return importlib.import_module(SOURCES[name])


def generate(name: str, episodes: int, frames: int, size: int = 64, seed: int = 0, **options) -> Iterator[Episode]:
    if episodes < 1 or frames < 1 or size < 8:
        raise ValueError(f"need episodes >= 1, frames >= 1, size >= 8 (got {episodes}, {frames}, {size})")
    return get_source(name).generate(episodes=episodes, frames=frames, size=size, seed=seed, **options)


def episode_rng_seed(seed: int, index: int) -> int:
    """A per-episode seed that does not collide across (seed, index) pairs."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
