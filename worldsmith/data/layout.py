"""The LeRobotDataset layouts (v3.0 written and read, v2.1 read): paths, features, column encoding.

v3.0 (what we write):
    meta/info.json                          codebase_version "v3.0", fps, features, totals, path templates
    meta/stats.json                         per-feature mean/std/min/max/count (for normalisation)
    meta/tasks.parquet                      task_index, task
    meta/episodes/chunk-000/file-000.parquet one row per episode: where its rows and video frames are
    data/chunk-XXX/file-XXX.parquet         per-frame rows of many episodes
    videos/<video_key>/chunk-XXX/file-XXX.mp4 many episodes back to back, found by from/to timestamp
v2.1 (read only): one parquet and one mp4 per episode, `meta/episodes.jsonl`, `meta/tasks.jsonl`.

Per-frame columns are stored as LeRobot/HF datasets store them: a scalar per frame is a plain column,
a vector a fixed-size list, a matrix (4x4 pose) nested fixed-size lists. `info.json` records dtype
and shape of each feature, so a column reads back with the shape and dtype it was written with.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from worldsmith.data.episode import VIDEO_KEY

CODEBASE_VERSION = "v3.0"
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V3_EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_CHUNKS_SIZE = 1000  # files per chunk folder, as LeRobot
DEFAULT_DATA_FILE_MB = 100.0
DEFAULT_VIDEO_FILE_MB = 500.0

# Columns every frame row carries in LeRobot, in this order, before the episode's own columns.
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
BOOKKEEPING_DTYPES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64",
                      "index": "int64", "task_index": "int64"}


class DatasetError(Exception):
    """A folder that is not a readable dataset, or a write that cannot proceed: '<path>: <problem>'."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def chunk_and_file(n: int, chunks_size: int) -> tuple[int, int]:
    """The n-th file of a stream lives in chunk n // chunks_size as file n % chunks_size."""
    return n // chunks_size, n % chunks_size


def column_feature(name: str, values: np.ndarray) -> dict:
    """The info.json feature entry for a per-frame column (T, ...)."""
    shape = list(values.shape[1:]) or [1]
    return {"dtype": dtype_name(values.dtype, name), "shape": shape, "names": None}


def video_feature(height: int, width: int, fps: float, pix_fmt: str = "yuv420p") -> dict:
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": "h264",
            "video.pix_fmt": pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def dtype_name(dtype: np.dtype, name: str = "") -> str:
    dtype = np.dtype(dtype)
    if dtype.kind in "biuf":
        return dtype.name
    if dtype.kind in "UO":
        return "string"
    raise DatasetError(name or "<column>", f"unsupported column dtype {dtype} (numbers, bools or strings only)")


def to_arrow(values: np.ndarray, name: str = "") -> pa.Array:
    """(T, ...) numpy -> arrow: plain for scalars, nested fixed-size lists for each extra dimension."""
    values = np.asarray(values)
    if dtype_name(values.dtype, name) == "string":
        return pa.array([str(v) for v in values], type=pa.string())
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    arr: pa.Array = flat
    for size in reversed(values.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, int(size))
    return arr


def from_arrow(column: pa.ChunkedArray | pa.Array, feature: dict | None, name: str = "") -> np.ndarray:
    """Arrow column -> numpy (T, *shape). Accepts fixed-size and variable lists (as HF writes for v2.1)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    n = len(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.array(column.to_pylist(), dtype=object)
    values = column
    depth = 0
    while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type) or pa.types.is_large_list(values.type):
        values = values.flatten()
        depth += 1
    flat = values.to_numpy(zero_copy_only=False)
    if depth == 0:
        shape: tuple[int, ...] = ()
        if feature is not None and list(feature.get("shape", [1])) != [1]:
            shape = tuple(feature["shape"])
    elif feature is not None:
        shape = tuple(int(s) for s in feature["shape"])
    else:
        shape = (flat.size // max(n, 1),)
    expected = n * int(np.prod(shape)) if shape else n
    if flat.size != expected:
        raise DatasetError(name or "<column>", f"column holds {flat.size} values, expected {n} x {list(shape)}")
    out = flat.reshape((n, *shape))
    if feature is not None and feature.get("dtype") not in (None, "video", "image", "string"):
        out = out.astype(feature["dtype"], copy=False)
    return out


def default_video_key(features: dict) -> str | None:
    keys = [k for k, f in features.items() if f.get("dtype") == "video"]
    if VIDEO_KEY in keys:
        return VIDEO_KEY
    return keys[0] if keys else None
