"""Reader for LeRobotDataset folders: v3.0 (many episodes per file) and v2.0/v2.1 (one file per episode).

Both layouts are turned into the same list of `EpisodeRecord`s at open time (where each episode's
rows and frames live), so everything after that is layout-free:

    ds = LeRobotDataset("data/robot")
    ds.num_episodes, ds.lengths, ds.tasks, ds.fps, ds.features
    ds.frames(3, 10, 27)      # (17, H, W, 3) uint8, seeking inside the mp4, not decoding all of it
    ds.columns(3, 10, 27)     # {"action": (17, 7), ...} with the dtypes and shapes of info.json
    ds.episode(3)             # the whole Episode back

A folder that is not a finished dataset raises `DatasetError("<path>: <problem>")` at open time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from worldsmith.data.episode import VIDEO_KEY, Episode
from worldsmith.data.layout import BOOKKEEPING, DatasetError, default_video_key, from_arrow
from worldsmith.video import VideoError, read_video

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")


@dataclass
class EpisodeRecord:
    index: int
    length: int
    tasks: list[str]
    data_path: Path
    whole_file: bool  # v2.x: the data file holds only this episode
    videos: dict[str, tuple[Path, int]] = field(default_factory=dict)  # key -> (mp4, first frame in it)
    meta: dict = field(default_factory=dict)


class LeRobotDataset:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.info = _load_info(self.root)
        self.version = str(self.info["codebase_version"])
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        self.video_key = default_video_key(self.features)
        self.column_names = [k for k, f in self.features.items()
                             if k not in BOOKKEEPING and f.get("dtype") not in ("video", "image")]
        if self.version == "v3.0":
            self.task_list = _v3_tasks(self.root)
            self._records = self._v3_records()
        else:
            self.task_list = _v2_tasks(self.root)
            self._records = self._v2_records()
        total = self.info.get("total_episodes")
        if total is not None and int(total) != len(self._records):
            raise DatasetError(self.root, f"meta/info.json says {total} episodes, the episode metadata lists "
                                          f"{len(self._records)}")
        self._missing_files_check()
        self._table_cache: tuple[Path, int, pa.Table] | None = None

    # -- summary -------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self._records)

    def __len__(self) -> int:
        return len(self._records)

    @property
    def lengths(self) -> list[int]:
        return [r.length for r in self._records]

    @property
    def num_frames(self) -> int:
        return sum(self.lengths)

    @property
    def tasks(self) -> list[str]:
        """The task string of each episode (its first task when it lists several)."""
        return [r.tasks[0] if r.tasks else "" for r in self._records]

    @property
    def name(self) -> str:
        return self.root.resolve().name

    def record(self, k: int) -> EpisodeRecord:
        if not 0 <= k < len(self._records):
            raise DatasetError(self.root, f"no episode {k} (the dataset has {len(self._records)})")
        return self._records[k]

    # -- random access -------------------------------------------------------------------------
    def frames(self, k: int, start: int = 0, end: int | None = None, key: str | None = None) -> np.ndarray:
        """Frames [start, end) of episode k as (T, H, W, 3) uint8; seeks inside the episode's mp4."""
        rec = self.record(k)
        key = key or self.video_key
        if key is None or key not in rec.videos:
            raise DatasetError(self.root, f"episode {k} has no video {key!r} (video features: {self.video_keys})")
        start, end = _clip_range(start, end, rec.length, self.root, k)
        path, offset = rec.videos[key]
        try:
            frames = read_video(path, offset + start, offset + end)
        except VideoError as e:
            raise DatasetError(e.source, e.problem) from e
        if len(frames) != end - start:
            raise DatasetError(path, f"episode {k}: expected {end - start} frames from {start}, decoded {len(frames)}")
        h, w = self.features[key]["shape"][:2]
        return np.ascontiguousarray(frames[:, :h, :w])  # odd sizes are padded to even for 4:2:0

    def columns(self, k: int, start: int = 0, end: int | None = None,
                names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Per-frame columns [start, end) of episode k, shaped and typed as info.json says."""
        rec = self.record(k)
        start, end = _clip_range(start, end, rec.length, self.root, k)
        names = self.column_names if names is None else names
        unknown = [n for n in names if n not in self.features]
        if unknown:
            raise DatasetError(self.root, f"no column(s) {unknown} (have {self.column_names})")
        table = self._episode_table(rec)
        rows = table.slice(start, end - start)
        return {n: from_arrow(rows.column(n), self.features[n], f"{rec.data_path}:{n}") for n in names}

    def episode(self, k: int) -> Episode:
        rec = self.record(k)
        return Episode(frames=self.frames(k), columns=self.columns(k), task=self.tasks[k], fps=self.fps,
                       meta=dict(rec.meta))

    def _episode_table(self, rec: EpisodeRecord) -> pa.Table:
        """The episode's rows in frame order; the last one is cached (clip windows hit it repeatedly).
        The cache is read once into a local: preloading threads may replace it between two reads."""
        cached = self._table_cache
        if cached and cached[:2] == (rec.data_path, rec.index):
            return cached[2]
        try:
            if rec.whole_file:
                table = pq.read_table(rec.data_path)
            else:  # row-group statistics let pyarrow skip the other episodes' row groups
                table = pq.read_table(rec.data_path, filters=[("episode_index", "=", rec.index)])
        except (pa.ArrowInvalid, OSError) as e:
            raise DatasetError(rec.data_path, f"not a readable parquet file ({e})") from e
        if "frame_index" in table.column_names:
            table = table.sort_by("frame_index")
        if table.num_rows != rec.length:
            raise DatasetError(rec.data_path, f"episode {rec.index} has {table.num_rows} rows, "
                                              f"the metadata says {rec.length}")
        self._table_cache = (rec.data_path, rec.index, table)
        return table

    # -- layouts -------------------------------------------------------------------------------
    def _v3_records(self) -> list[EpisodeRecord]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(self.root, "meta/episodes/ holds no episode metadata (chunk-*/file-*.parquet)")
        rows = []
        for f in files:
            try:
                rows += pq.read_table(f).to_pylist()
            except (pa.ArrowInvalid, OSError) as e:
                raise DatasetError(f, f"not a readable parquet file ({e})") from e
        rows.sort(key=lambda r: r["episode_index"])
        data_tpl, video_tpl = self.info.get("data_path"), self.info.get("video_path")
        if not data_tpl:
            raise DatasetError(self.root / "meta/info.json", "no 'data_path' template")
        records = []
        for i, r in enumerate(rows):
            try:
                if r["episode_index"] != i:
                    raise DatasetError(self.root, f"episode metadata skips from {i - 1} to {r['episode_index']}")
                data = self.root / data_tpl.format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
                videos = {}
                for key in self.video_keys:
                    path = self.root / video_tpl.format(video_key=key, chunk_index=r[f"videos/{key}/chunk_index"],
                                                        file_index=r[f"videos/{key}/file_index"])
                    videos[key] = (path, int(round(r[f"videos/{key}/from_timestamp"] * self.fps)))
            except KeyError as e:
                raise DatasetError(files[0], f"episode {i}: missing field {e.args[0]!r}") from e
            meta = json.loads(r["meta"]) if isinstance(r.get("meta"), str) else {}
            records.append(EpisodeRecord(i, int(r["length"]), list(r.get("tasks") or []), data, False, videos, meta))
        return records

    def _v2_records(self) -> list[EpisodeRecord]:
        path = self.root / "meta" / "episodes.jsonl"
        rows = _read_jsonl(path)
        rows.sort(key=lambda r: r["episode_index"])
        chunks_size = int(self.info.get("chunks_size", 1000))
        data_tpl, video_tpl = self.info.get("data_path"), self.info.get("video_path")
        if not data_tpl:
            raise DatasetError(self.root / "meta/info.json", "no 'data_path' template")
        records = []
        for r in rows:
            try:
                k = int(r["episode_index"])
                chunk = k // chunks_size
                data = self.root / data_tpl.format(episode_chunk=chunk, episode_index=k)
                videos = {key: (self.root / video_tpl.format(episode_chunk=chunk, video_key=key, episode_index=k), 0)
                          for key in self.video_keys}
                records.append(EpisodeRecord(k, int(r["length"]), list(r.get("tasks") or []), data, True, videos))
            except KeyError as e:
                raise DatasetError(path, f"an episode line lacks {e.args[0]!r}") from e
        if [r.index for r in records] != list(range(len(records))):
            raise DatasetError(path, "episode indices are not 0..N-1")
        return records

    def _missing_files_check(self) -> None:
        for rec in self._records:
            for path in [rec.data_path, *(p for p, _ in rec.videos.values())]:
                if not path.is_file():
                    raise DatasetError(self.root, f"episode {rec.index}: missing file {path.relative_to(self.root)}")


def is_dataset(root: str | os.PathLike) -> bool:
    return (Path(root) / "meta" / "info.json").is_file()


def _load_info(root: Path) -> dict:
    if not root.exists():
        raise DatasetError(root, "no such folder")
    if not root.is_dir():
        raise DatasetError(root, "is a file, not a dataset folder")
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise DatasetError(root, "not a LeRobot dataset: no meta/info.json (an unfinished write leaves none)")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"not valid JSON ({e})") from e
    if not isinstance(info, dict):
        raise DatasetError(path, "is not a JSON object")
    for key in ("codebase_version", "fps", "features"):
        if key not in info:
            raise DatasetError(path, f"lacks {key!r}")
    if info["codebase_version"] not in SUPPORTED_VERSIONS:
        raise DatasetError(path, f"unsupported codebase_version {info['codebase_version']!r} "
                                 f"(reads {', '.join(SUPPORTED_VERSIONS)})")
    if not isinstance(info["features"], dict):
        raise DatasetError(path, "'features' is not a mapping")
    return info


def _v3_tasks(root: Path) -> list[str]:
    path = root / "meta" / "tasks.parquet"
    if not path.is_file():
        raise DatasetError(root, "missing meta/tasks.parquet")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(path, f"not a readable parquet file ({e})") from e
    # pandas-written files (LeRobot's own) keep the task string as the index column.
    task_col = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if task_col is None or "task_index" not in table.column_names:
        raise DatasetError(path, f"expected columns task_index and task, found {table.column_names}")
    pairs = sorted(zip(table.column("task_index").to_pylist(), table.column(task_col).to_pylist()))
    return [t for _, t in pairs]


def _v2_tasks(root: Path) -> list[str]:
    rows = _read_jsonl(root / "meta" / "tasks.jsonl")
    return [r["task"] for r in sorted(rows, key=lambda r: r["task_index"])]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DatasetError(path.parent.parent, f"missing meta/{path.name}")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DatasetError(path, f"line {n} is not valid JSON ({e.msg})") from e
    return rows


def _clip_range(start: int, end: int | None, length: int, root: Path, k: int) -> tuple[int, int]:
    end = length if end is None else end
    if not 0 <= start < end <= length:
        raise DatasetError(root, f"episode {k}: bad frame range [{start}, {end}) for {length} frames")
    return start, end
