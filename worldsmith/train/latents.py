"""Latent cache: clips encoded once per (dataset, tokenizer, clip window), so world-model training never re-encodes.

A cache file is one safetensors under `<cache_dir>/latents/<key>.safetensors` holding
    latents    (N, C, t, h, w) float32   the frozen CV tokenizer's latents of every clip window
    task_id    (N,) int64                index into the caption list (metadata "tasks")
    text       (K, L, 384) float32       token embeddings of each distinct caption, text_mask (K, L) bool
    episode, frame (N,) int64            where each window comes from
The key hashes the dataset roots (path and the size/mtime of their files), the tokenizer weights (size/mtime),
and the window parameters; a changed dataset or a retrained tokenizer gets a new file. Written to a temp name
and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from worldsmith.wfm.conditioning import cache_dir, text_tokens


def _fingerprint(path: Path) -> list:
    """Cheap identity of a dataset root or tokenizer run: every file's relative path, size and mtime."""
    if path.is_file():
        st = path.stat()
        return [path.name, st.st_size, st.st_mtime_ns]
    out = []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            st = p.stat()
            out.append([str(p.relative_to(path)), st.st_size, st.st_mtime_ns])
    return out


def cache_key(roots: list[str], tokenizer_run: str, clip_frames: int, size: int, stride: int, split: str) -> str:
    tok = Path(tokenizer_run)
    weights = tok / "ema.safetensors" if (tok / "ema.safetensors").exists() else tok / "model.safetensors"
    ident = {
        "roots": [[str(Path(r).resolve()), _fingerprint(Path(r))] for r in roots],
        "tokenizer": [str(tok.resolve()), _fingerprint(weights) if weights.exists() else None],
        "clip": [clip_frames, size, stride, split],
        "version": 1,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def encode_device(device: str | torch.device = "auto") -> torch.device:
    """Where a cache builder runs its tokenizer: "auto" is the GPU when there is one."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_latent_cache(roots: list[str], tokenizer_run: str, clip_frames: int = 17, size: int = 64, stride: int = 2,
                       split: str = "train", batch_size: int = 8, show_progress: bool = True,
                       cache_root: str | None = None, device: str = "auto") -> Path:
    """Encode every clip window of `roots` (this split) with the tokenizer unless cached; returns the cache file.
    `device` "auto" encodes on the GPU when there is one (the latents are stored on the CPU either way)."""
    from worldsmith.data.clips import ClipDataset
    from worldsmith.tokenizer.run import load_tokenizer

    key = cache_key(roots, tokenizer_run, clip_frames, size, stride, split)
    path = Path(cache_root or cache_dir()) / "latents" / f"{key}.safetensors"
    if path.exists():
        return path
    clips = ClipDataset(roots, clip_frames=clip_frames, stride=stride, split=split, size=size, columns=[])
    if len(clips) == 0:
        raise ValueError(f"{', '.join(map(str, roots))}: no {clip_frames}-frame clips in split {split!r}")
    device = encode_device(device)
    tok = load_tokenizer(tokenizer_run, device=device)
    if device.type == "cuda":
        batch_size *= 8
    if tok.config.kind != "cv":
        raise ValueError(f"{tokenizer_run}: the diffusion model needs a continuous (cv) tokenizer, not {tok.config.kind!r}")
    latents, tasks, task_ids, episodes, frames = [], [], [], [], []
    from rich.progress import Progress

    with Progress(disable=not show_progress) as progress, torch.no_grad():
        job = progress.add_task("encode clips", total=len(clips))
        for start in range(0, len(clips), batch_size):
            items = [clips[i] for i in range(start, min(start + batch_size, len(clips)))]
            video = torch.stack([it["video"] for it in items]).permute(0, 2, 1, 3, 4)   # (B, 3, T, H, W)
            latents.append(tok.encode(video.to(device)).float().cpu())
            for it in items:
                if it["task"] not in tasks:
                    tasks.append(it["task"])
                task_ids.append(tasks.index(it["task"]))
                episodes.append(int(it["episode_index"]) + 100_000 * _source_index(clips, it["dataset"]))
                frames.append(int(it["frame_index"]))
            progress.advance(job, len(items))
    text, text_mask = text_tokens(tasks)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({"latents": torch.cat(latents).contiguous(), "task_id": torch.tensor(task_ids),
               "text": text.contiguous(), "text_mask": text_mask.contiguous(),
               "episode": torch.tensor(episodes), "frame": torch.tensor(frames)}, str(tmp),
              metadata={"tasks": json.dumps(tasks), "roots": json.dumps([str(r) for r in roots]),
                        "tokenizer": str(tokenizer_run), "clip": json.dumps([clip_frames, size, stride, split])})
    os.replace(tmp, path)
    return path


def _source_index(clips, name: str) -> int:
    for i, s in enumerate(clips.sources):
        if s.name == name:
            return i
    return 0


class LatentClips(torch.utils.data.Dataset):
    """Items {"latents": (C, t, h, w) normalised to std sigma_data, "text": (L, 384), "text_mask": (L,)}."""

    def __init__(self, path: str | os.PathLike, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 sigma_data: float = 0.5):
        t = load_file(str(path))
        self.latents, self.task_id = t["latents"], t["task_id"]
        self.text, self.text_mask = t["text"], t["text_mask"]
        with safe_open(str(path), framework="pt") as f:
            self.tasks = json.loads(f.metadata()["tasks"])
        if mean is None or std is None:
            mean, std = channel_stats(self.latents)
        self.mean, self.std, self.sigma_data = mean, std, sigma_data
        self.scale = (sigma_data / std)[:, None, None, None]
        self.shift = mean[:, None, None, None]

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> dict:
        k = int(self.task_id[i])
        return {"latents": (self.latents[i] - self.shift) * self.scale, "text": self.text[k],
                "text_mask": self.text_mask[k]}


def channel_stats(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over (N, t, h, w) of (N, C, t, h, w) latents."""
    x = latents.transpose(0, 1).reshape(latents.shape[1], -1).double()
    return x.mean(1).float(), x.std(1).clamp(min=1e-6).float()
