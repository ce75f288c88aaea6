"""Read curated shards back for training: {"video": (T, 3, H, W) float in [-1, 1], "caption": str, ...}.

The tars are plain WebDataset shards (`<key>.mp4` + `<key>.json`), so `webdataset.WebDataset` reads them
too; this reader needs only the standard library, PyAV and torch, gives random access (a map-style torch
Dataset) and can cut a fixed number of frames and resize, so clips of any bucket batch together.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Iterator

import numpy as np

from worldsmith.video import read_video, resize_video, to_float


def shard_paths(root: str | Path) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.tar") if not p.name.startswith(".") and p.parent.name != "work")


def _index(paths: list[Path]) -> list[tuple[Path, str]]:
    out = []
    for p in paths:
        with tarfile.open(p, "r") as tar:
            names = tar.getnames()
        out += [(p, n[:-4]) for n in names if n.endswith(".mp4")]
    return out


def _load(path: Path, key: str, frames: int | None, size: int | tuple[int, int] | None) -> dict:
    with tarfile.open(path, "r") as tar:
        mp4 = tar.extractfile(f"{key}.mp4").read()
        meta = json.loads(tar.extractfile(f"{key}.json").read())
    video = read_video(mp4, end=frames)
    if frames is not None and len(video) < frames:  # shorter clips repeat their last frame
        video = np.concatenate([video, np.repeat(video[-1:], frames - len(video), axis=0)])
    if size is not None:
        video = resize_video(video, size, "crop")
    return {"video": to_float(video), "caption": meta.get("caption", ""), "key": key, "meta": meta}


def iter_shard_clips(root: str | Path, frames: int | None = None, size: int | tuple[int, int] | None = None) -> Iterator[dict]:
    """Every clip of the shards under `root` (a run folder, a shards folder or one tar), in shard order.

    `video` is a numpy float32 array (T, 3, H, W) in [-1, 1]; `frames` keeps the first T frames
    (padding short clips), `size` resizes (int = square, or (H, W)) by centre crop.
    """
    for path, key in _index(shard_paths(root)):
        yield _load(path, key, frames, size)


def ClipShardDataset(root: str | Path, frames: int | None = None, size: int | tuple[int, int] | None = None):
    """A map-style torch Dataset over curated shards; items as `iter_shard_clips`, video as a torch tensor."""
    import torch

    class _Dataset(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.items = _index(shard_paths(root))

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int) -> dict:
            item = _load(*self.items[i], frames, size)
            item["video"] = torch.from_numpy(item["video"])
            return item

    return _Dataset()
