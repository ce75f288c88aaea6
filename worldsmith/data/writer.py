"""Streaming writer for the LeRobotDataset v3.0 layout (see `layout.py` for the files it makes).

Episodes are appended one at a time, so a generator of any length never sits in memory. Rows go
into the current data parquet (one row group per episode), frames into the current mp4; each file
is rolled over when it passes its size limit, and lands under its final name only when finished.
The metadata (tasks, episodes, stats, and last of all `info.json`) is written by `close()`. A
crashed write therefore leaves no `meta/info.json`, and the reader refuses such a folder.

    with DatasetWriter("data/robot", fps=10) as w:
        for ep in episodes:
            w.add(ep)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from worldsmith.config import save_json
from worldsmith.data.episode import VIDEO_KEY, Episode
from worldsmith.data.layout import (
    BOOKKEEPING,
    BOOKKEEPING_DTYPES,
    CODEBASE_VERSION,
    DEFAULT_CHUNKS_SIZE,
    DEFAULT_DATA_FILE_MB,
    DEFAULT_VIDEO_FILE_MB,
    V3_DATA_PATH,
    V3_EPISODES_PATH,
    V3_VIDEO_PATH,
    DatasetError,
    chunk_and_file,
    column_feature,
    dtype_name,
    to_arrow,
    video_feature,
)
from worldsmith.data.mp4 import StreamingMp4


@dataclass
class WriterConfig:
    data_file_mb: float = DEFAULT_DATA_FILE_MB  # roll the data parquet over past this size
    video_file_mb: float = DEFAULT_VIDEO_FILE_MB  # roll the mp4 over past this size (approximate: x264 lookahead)
    chunks_size: int = DEFAULT_CHUNKS_SIZE  # files per chunk-XXX folder
    crf: int = 12  # libx264 quality; with yuv444p every source stays above 39 dB PSNR at 64x64
    preset: str = "medium"
    pix_fmt: str = "yuv444p"  # full chroma: 4:2:0 costs sharp synthetic frames 5-10 dB; "yuv420p" for browsers
    robot_type: str | None = None


class _RunningStats:
    """Per-element count, mean, std, min, max of a column, accumulated episode by episode."""

    def __init__(self) -> None:
        self.count = 0
        self.sum = self.sumsq = self.min = self.max = None

    def update(self, values: np.ndarray) -> None:
        v = values.astype(np.float64)
        s, ss, lo, hi = v.sum(0), (v * v).sum(0), v.min(0), v.max(0)
        if self.count == 0:
            self.sum, self.sumsq, self.min, self.max = s, ss, lo, hi
        else:
            self.sum, self.sumsq = self.sum + s, self.sumsq + ss
            self.min, self.max = np.minimum(self.min, lo), np.maximum(self.max, hi)
        self.count += len(v)

    def to_dict(self) -> dict:
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - mean * mean, 0.0))
        return {"mean": mean.tolist(), "std": std.tolist(), "min": self.min.tolist(), "max": self.max.tolist(),
                "count": [self.count]}


class DatasetWriter:
    def __init__(self, root: str | os.PathLike, fps: float, config: WriterConfig | None = None, **overrides):
        self.root = Path(root)
        self.fps = float(fps)
        unknown = [k for k in overrides if k not in WriterConfig.__dataclass_fields__]
        if unknown:
            raise TypeError(f"DatasetWriter: unknown option(s) {unknown}")
        self.config = dataclasses.replace(config or WriterConfig(), **overrides)
        if self.fps <= 0:
            raise DatasetError(self.root, f"fps must be positive, got {fps}")
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise DatasetError(self.root, "exists and is not an empty folder; refusing to write a dataset into it")
        self.root.mkdir(parents=True, exist_ok=True)
        self._episodes: list[dict] = []
        self._tasks: dict[str, int] = {}
        self._schema: dict[str, dict] | None = None  # column name -> feature, fixed by the first episode
        self._frame_hw: tuple[int, int] | None = None
        self._stats: dict[str, _RunningStats] = {}
        self._total_frames = 0
        self._data_writer: pq.ParquetWriter | None = None
        self._data_tmp: Path | None = None
        self._data_final: Path | None = None
        self._data_files = 0  # files started so far (the current one included)
        self._video: StreamingMp4 | None = None
        self._video_files = 0
        self._closed = False

    # -- context manager: a failure inside the block removes temp files and writes no metadata
    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def add(self, episode: Episode) -> int:
        """Append one episode; returns its episode_index."""
        if self._closed:
            raise DatasetError(self.root, "writer is closed")
        k = len(self._episodes)
        self._check(episode, k)
        task_index = self._tasks.setdefault(episode.task, len(self._tasks))
        T = episode.length
        data_chunk, data_file = self._write_rows(episode, k, task_index)
        video_chunk, video_file, t_from, t_to = self._write_frames(episode.frames)
        self._update_stats(episode)
        self._episodes.append({
            "episode_index": k,
            "tasks": [episode.task],
            "length": T,
            "data/chunk_index": data_chunk,
            "data/file_index": data_file,
            "dataset_from_index": self._total_frames,
            "dataset_to_index": self._total_frames + T,
            f"videos/{VIDEO_KEY}/chunk_index": video_chunk,
            f"videos/{VIDEO_KEY}/file_index": video_file,
            f"videos/{VIDEO_KEY}/from_timestamp": t_from,
            f"videos/{VIDEO_KEY}/to_timestamp": t_to,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
            "meta": json.dumps(episode.meta, sort_keys=True, default=_json_default),
        })
        self._total_frames += T
        return k

    def _check(self, episode: Episode, k: int) -> None:
        where = f"episode {k}"
        if episode.length == 0:
            raise DatasetError(self.root, f"{where} has no frames")
        if abs(float(episode.fps) - self.fps) > 1e-6:
            raise DatasetError(self.root, f"{where} is at {episode.fps} fps, the dataset at {self.fps}")
        hw = tuple(episode.frames.shape[1:3])
        schema = {name: column_feature(name, np.asarray(col)) for name, col in episode.columns.items()}
        clash = [n for n in schema if n in BOOKKEEPING or n == VIDEO_KEY]
        if clash:
            raise DatasetError(self.root, f"{where}: column name(s) {clash} are reserved by the format")
        if self._schema is None:
            self._schema, self._frame_hw = schema, hw
            return
        if hw != self._frame_hw:
            raise DatasetError(self.root, f"{where} frames are {hw[0]}x{hw[1]}, earlier ones "
                                          f"{self._frame_hw[0]}x{self._frame_hw[1]}")
        if schema != self._schema:
            diff = sorted(n for n in set(schema) | set(self._schema) if schema.get(n) != self._schema.get(n))
            raise DatasetError(self.root, f"{where}: columns differ from earlier episodes in {diff} "
                                          f"(names, dtypes and shapes must match)")

    # -- data parquet --------------------------------------------------------------------------
    def _rows(self, episode: Episode, k: int, task_index: int) -> pa.Table:
        T = episode.length
        arrays = {
            "timestamp": pa.array((np.arange(T) / self.fps).astype(np.float32)),
            "frame_index": pa.array(np.arange(T, dtype=np.int64)),
            "episode_index": pa.array(np.full(T, k, dtype=np.int64)),
            "index": pa.array(np.arange(self._total_frames, self._total_frames + T, dtype=np.int64)),
            "task_index": pa.array(np.full(T, task_index, dtype=np.int64)),
        }
        for name, col in episode.columns.items():
            arrays[name] = to_arrow(np.asarray(col), name)
        return pa.table(arrays)

    def _write_rows(self, episode: Episode, k: int, task_index: int) -> tuple[int, int]:
        table = self._rows(episode, k, task_index)
        if self._data_writer is None:
            chunk, file = chunk_and_file(self._data_files, self.config.chunks_size)
            self._data_final = self.root / V3_DATA_PATH.format(chunk_index=chunk, file_index=file)
            self._data_final.parent.mkdir(parents=True, exist_ok=True)
            self._data_tmp = self._data_final.with_name(f".{self._data_final.name}.tmp{os.getpid()}")
            self._data_writer = pq.ParquetWriter(self._data_tmp, table.schema)
            self._data_files += 1
        self._data_writer.write_table(table)  # one row group per episode
        location = chunk_and_file(self._data_files - 1, self.config.chunks_size)
        if self._data_tmp.stat().st_size >= self.config.data_file_mb * 1e6:
            self._finish_data_file()
        return location

    def _finish_data_file(self) -> None:
        if self._data_writer is not None:
            self._data_writer.close()
            os.replace(self._data_tmp, self._data_final)
            self._data_writer = None

    # -- video ---------------------------------------------------------------------------------
    def _write_frames(self, frames: np.ndarray) -> tuple[int, int, float, float]:
        if self._video is None:
            chunk, file = chunk_and_file(self._video_files, self.config.chunks_size)
            path = self.root / V3_VIDEO_PATH.format(video_key=VIDEO_KEY, chunk_index=chunk, file_index=file)
            h, w = frames.shape[1:3]
            self._video = StreamingMp4(path, self.fps, h, w, crf=self.config.crf, preset=self.config.preset,
                                       pix_fmt=self.config.pix_fmt)
            self._video_files += 1
        start = self._video.frames_written
        self._video.append(frames)
        chunk, file = chunk_and_file(self._video_files - 1, self.config.chunks_size)
        t_from, t_to = start / self.fps, (start + len(frames)) / self.fps
        if self._video.bytes_muxed >= self.config.video_file_mb * 1e6:
            self._video.close()
            self._video = None
        return chunk, file, t_from, t_to

    def _update_stats(self, episode: Episode) -> None:
        for name, col in episode.columns.items():
            if dtype_name(np.asarray(col).dtype, name) != "string":
                self._stats.setdefault(name, _RunningStats()).update(np.asarray(col))
        # Image stats as LeRobot keeps them: per channel, in [0, 1], shape (3, 1, 1).
        pixels = episode.frames.reshape(-1, 3).astype(np.float64) / 255.0
        self._stats.setdefault(VIDEO_KEY, _RunningStats()).update(pixels)

    # -- metadata, last ------------------------------------------------------------------------
    def close(self) -> Path:
        """Finish the open files and write the metadata; `meta/info.json` is written last."""
        if self._closed:
            return self.root
        if not self._episodes:
            self.abort()
            raise DatasetError(self.root, "no episodes were added; nothing to write")
        self._finish_data_file()
        if self._video is not None:
            self._video.close()
            self._video = None
        meta = self.root / "meta"
        _write_parquet(meta / "tasks.parquet", pa.table({
            "task_index": pa.array(list(self._tasks.values()), type=pa.int64()),
            "task": pa.array(list(self._tasks.keys()), type=pa.string()),
        }))
        _write_parquet(self.root / V3_EPISODES_PATH.format(chunk_index=0, file_index=0),
                       pa.Table.from_pylist(self._episodes))
        save_json(self._stats_dict(), meta / "stats.json")
        save_json(self._info(), meta / "info.json")
        self._closed = True
        return self.root

    def abort(self) -> None:
        """Drop the open files' temp names; finished files stay, but no info.json is written."""
        if self._data_writer is not None:
            try:
                self._data_writer.close()
            finally:
                self._data_tmp.unlink(missing_ok=True)
                self._data_writer = None
        if self._video is not None:
            self._video.abort()
            self._video = None
        self._closed = True

    def _stats_dict(self) -> dict:
        out = {}
        for name, s in self._stats.items():
            d = s.to_dict()
            if name == VIDEO_KEY:
                d = {k: [[[x]] for x in v] if k != "count" else v for k, v in d.items()}
            out[name] = d
        return out

    def _info(self) -> dict:
        h, w = self._frame_hw
        features = {VIDEO_KEY: video_feature(h, w, self.fps, self.config.pix_fmt)}
        for name in BOOKKEEPING:
            features[name] = {"dtype": BOOKKEEPING_DTYPES[name], "shape": [1], "names": None}
        features.update(self._schema)
        n = len(self._episodes)
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.config.robot_type,
            "total_episodes": n,
            "total_frames": self._total_frames,
            "total_tasks": len(self._tasks),
            "chunks_size": self.config.chunks_size,
            "data_files_size_in_mb": self.config.data_file_mb,
            "video_files_size_in_mb": self.config.video_file_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{n}"},
            "data_path": V3_DATA_PATH,
            "video_path": V3_VIDEO_PATH,
            "features": features,
        }


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def write_dataset(root: str | os.PathLike, episodes, fps: float, **options) -> Path:
    """Write an iterable of episodes as one v3.0 dataset (convenience over `DatasetWriter`)."""
    with DatasetWriter(root, fps, **options) as writer:
        for ep in episodes:
            writer.add(ep)
    return Path(root)
