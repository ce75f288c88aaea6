"""Turn the command line's INPUT arguments (files, folders, globs, episode datasets) into work items.

Each item is one video to curate: a file, or one episode of a LeRobot v3 dataset folder (recognised by
its `meta/info.json`). Items get a deterministic id from what they are (resolved path and episode), so
a rerun of the same command finds the same ids and can skip the inputs that already finished.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv"}


@dataclass(frozen=True)
class InputItem:
    input_id: str  # "<stem>_<hash8>", safe as a file name and as a WebDataset key prefix
    path: str  # resolved path of the file or dataset folder
    episode: int = -1  # episode index for dataset inputs, -1 for video files

    @property
    def is_episode(self) -> bool:
        return self.episode >= 0

    @property
    def label(self) -> str:
        return f"{self.path}#episode{self.episode}" if self.is_episode else self.path

    def to_dict(self) -> dict:
        return asdict(self)


def _safe(stem: str) -> str:
    # WebDataset splits keys at the first dot; keep names short and free of separators.
    return re.sub(r"[^A-Za-z0-9-]+", "-", stem).strip("-")[:40] or "input"


def make_item(path: str | os.PathLike, episode: int = -1) -> InputItem:
    p = str(Path(path).resolve())
    digest = hashlib.sha1(f"{p}#{episode}".encode()).hexdigest()[:8]
    stem = Path(p).stem if episode < 0 else f"{Path(p).name}-ep{episode}"
    return InputItem(input_id=f"{_safe(stem)}_{digest}", path=p, episode=episode)


def is_episode_dataset(path: Path) -> bool:
    return (path / "meta" / "info.json").is_file()  # LeRobot v2 and v3 both keep it there


def _dataset_items(root: Path) -> list[InputItem]:
    from worldsmith.data.lerobot import LeRobotDataset  # lazy: the datasets package is only needed for such inputs

    ds = LeRobotDataset(root)
    return [make_item(root, k) for k in range(ds.num_episodes)]


def expand_inputs(args: list[str]) -> tuple[list[InputItem], list[str]]:
    """Items sorted by id (the order every later stage relies on), and the arguments that matched nothing."""
    items: dict[str, InputItem] = {}
    missing: list[str] = []
    for arg in args:
        paths = [Path(p) for p in sorted(glob.glob(arg, recursive=True))] if glob.has_magic(arg) else [Path(arg)]
        if not paths or not any(p.exists() for p in paths):
            missing.append(arg)
            continue
        for p in paths:
            if p.is_dir() and is_episode_dataset(p):
                found = _dataset_items(p)
            elif p.is_dir():
                datasets = sorted(d for d in p.rglob("*") if d.is_dir() and is_episode_dataset(d))
                found = [
                    make_item(f)
                    for f in sorted(p.rglob("*"))
                    if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES and not f.name.startswith(".")
                    and not any(d in f.parents for d in datasets)  # a dataset's mp4s are read as episodes
                ]
                for sub in datasets:
                    found += _dataset_items(sub)
            else:
                # An explicitly named file is taken whatever its suffix: a bad one becomes a catalog row.
                found = [make_item(p)]
            for it in found:
                items[it.input_id] = it
    return [items[k] for k in sorted(items)], missing
