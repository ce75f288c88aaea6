import numpy as np
import pytest


@pytest.fixture
def check_episode_layout():
    """Check an episode's frames (T, size, size, 3) uint8 and that its columns are exactly `expected`
    {name: (shape, dtype)}; returns the number of objects the episode holds (its object.count)."""
    def check(ep, expected: dict, frames: int, size: int) -> int:
        assert set(ep.columns) == set(expected)
        for name, (shape, dtype) in expected.items():
            assert ep.columns[name].shape == shape and ep.columns[name].dtype == dtype, name
        assert ep.frames.shape == (frames, size, size, 3) and ep.frames.dtype == np.uint8
        return int(ep.columns["object.count"][0])
    return check
