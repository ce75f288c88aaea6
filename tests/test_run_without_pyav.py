"""scripts/run_without_pyav.py: OpenCV's reading stands in for PyAV's on machines without it, frame for frame."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from worldsmith import video

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_without_pyav.py"


@pytest.fixture(scope="module")
def shim():
    spec = importlib.util.spec_from_file_location("run_without_pyav", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the readers; nothing is patched until install()
    return module


def test_opencv_frames_equal_pyav_frames(shim, tmp_path):
    t, y, x = np.meshgrid(np.arange(24), np.arange(48), np.arange(64), indexing="ij")
    frames = np.stack([(x * 4 + t * 9) % 256, (y * 5 + t * 3) % 256, (x + y + t * 7) % 256], -1).astype(np.uint8)
    path = tmp_path / "moving.mp4"
    video.write_video(path, frames, fps=10)
    assert video.iter_frames is not shim.iter_frames  # importing the script patched nothing
    ours = np.stack(list(video.iter_frames(path)))
    theirs = np.stack(list(shim.iter_frames(path)))
    assert theirs.shape == ours.shape == (24, 48, 64, 3)
    assert np.array_equal(theirs, ours)
    assert np.array_equal(np.stack(list(shim.iter_frames(path, 5, 12))), ours[5:12])
    a, b = video.probe(path), shim.probe(path)
    assert (b.width, b.height, b.frame_count) == (a.width, a.height, a.frame_count)
    assert b.fps == pytest.approx(a.fps)
    with pytest.raises(NotImplementedError, match="frame rate"):
        next(shim.iter_frames(path, fps=5))
    with pytest.raises(video.VideoError, match="OpenCV cannot open it"):
        shim.probe(tmp_path / "missing.mp4")
