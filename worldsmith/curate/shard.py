"""WebDataset tar shards and the Parquet catalog, written deterministically and atomically.

Shards are grouped by bucket `<H>x<W>_<aspect>_f<lo>-<hi>` (resolution, nearest common aspect ratio,
frame-count window) so a trainer can read batches of one shape. Each tar holds `<key>.mp4` and
`<key>.json` pairs in clip order, with fixed tar headers (mtime 0, no owner), so that the same clips give
the same bytes. Every file goes to a temp name first and is renamed when complete.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ASPECTS = {"1x1": 1.0, "4x3": 4 / 3, "3x2": 1.5, "16x9": 16 / 9, "2x1": 2.0, "21x9": 21 / 9,
           "3x4": 3 / 4, "9x16": 9 / 16}


def aspect_label(width: int, height: int) -> str:
    r = width / height
    return min(ASPECTS, key=lambda k: abs(ASPECTS[k] - r) / ASPECTS[k])


def frame_bucket(n: int, bounds: list[int]) -> str:
    lo = 1
    for hi in sorted(bounds):
        if n <= hi:
            return f"f{lo:03d}-{hi:03d}"
        lo = hi + 1
    return f"f{lo:03d}-up"


def bucket_of(r: dict, bounds: list[int]) -> str:
    return f"{r['height']}x{r['width']}_{aspect_label(r['width'], r['height'])}_{frame_bucket(r['frames'], bounds)}"


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
    tar.addfile(ti, io.BytesIO(data))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in members:
                _tar_add(tar, name, data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


SHARD_JSON_FIELDS = ("clip_id", "caption", "template_caption", "tags", "task", "source", "input", "episode", "start",
                     "end", "frames", "fps", "duration_s", "width", "height", "camera_motion", "motion", "shake",
                     "sharpness", "brightness", "colourfulness", "text_prob")


def write_shards(out: Path, accepted: list[dict], mp4: dict[str, bytes], bounds: list[int], max_clips: int) -> list[Path]:
    """Write accepted clips (in order) into bucketed shards; set `shard` and `key` on each record."""
    groups: dict[str, list[dict]] = {}
    for r in accepted:
        groups.setdefault(bucket_of(r, bounds), []).append(r)
    written = []
    for bucket in sorted(groups):
        clips = groups[bucket]
        for s in range(0, len(clips), max_clips):
            path = out / "shards" / bucket / f"shard-{s // max_clips:06d}.tar"
            members = []
            for r in clips[s: s + max_clips]:
                r["shard"] = str(path.relative_to(out))
                r["key"] = r["clip_id"]
                meta = {k: r.get(k) for k in SHARD_JSON_FIELDS}
                members.append((f"{r['key']}.mp4", mp4[r["clip_id"]]))
                members.append((f"{r['key']}.json", json.dumps(meta, sort_keys=True).encode()))
            write_tar(path, members)
            written.append(path)
    return written


CATALOG_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("input", pa.string()), ("input_id", pa.string()), ("episode", pa.int64()),
    ("source", pa.string()), ("task", pa.string()), ("input_duration_s", pa.float64()),
    ("shot", pa.int64()), ("window", pa.int64()), ("start", pa.int64()), ("end", pa.int64()),
    ("shot_start", pa.int64()), ("shot_end", pa.int64()), ("frames", pa.int64()), ("fps", pa.float64()),
    ("duration_s", pa.float64()), ("width", pa.int64()), ("height", pa.int64()),
    ("status", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("motion", pa.float64()), ("shake", pa.float64()), ("pan", pa.float64()), ("tilt", pa.float64()),
    ("zoom", pa.float64()), ("object_motion", pa.float64()), ("camera_motion", pa.string()),
    ("sharpness", pa.float64()), ("brightness", pa.float64()), ("dark_fraction", pa.float64()),
    ("bright_fraction", pa.float64()), ("colourfulness", pa.float64()), ("text_prob", pa.float64()),
    ("exact_hash", pa.string()), ("dhash", pa.list_(pa.string())), ("cluster", pa.int64()), ("dup_of", pa.string()),
    ("embedding", pa.list_(pa.float32())), ("tags", pa.list_(pa.string())), ("caption", pa.string()),
    ("template_caption", pa.string()), ("shard", pa.string()), ("key", pa.string()), ("bytes", pa.int64()),
    ("thumbnail", pa.binary()),
])


def write_catalog(path: Path, rows: list[dict]) -> None:
    cols = {f.name: [r.get(f.name) for r in rows] for f in CATALOG_SCHEMA}
    table = pa.table(cols, schema=CATALOG_SCHEMA)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)

