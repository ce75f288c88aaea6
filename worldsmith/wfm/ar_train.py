"""Training the AR world model through the shared trainer, on DV token ids cached once per (dataset, tokenizer).

Encoding video with the tokenizer costs far more than a GPT step on its tokens, and the tokens of a clip
never change for a given tokenizer checkpoint, so `build_token_cache` encodes every clip window once and
stores the ids (int32) with the clip's task text in a safetensors file keyed by a hash of the dataset
roots, their clip settings and the tokenizer's weights. Training then reads tokens only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from worldsmith.config import from_dict, to_dict
from worldsmith.wfm.gpt import (GPT, GPTConfig, grid_positions, preset_config, previous_frame_ids,
                                teacher_forcing_inputs)


class ARError(ValueError):
    """Bad input to AR training or prediction; the message names the file and the problem."""


@dataclass
class ARDataConfig:
    roots: list[str] = field(default_factory=list)
    tokenizer: str = ""             # DV tokenizer run dir
    clip_frames: int = 17           # 1 + 4k frames -> 1 + k latent frames
    stride: int = 4
    size: int = 64
    split: str = "train"
    text_dropout: float = 0.1       # share of clips trained without their task text (null text, for CFG)


@dataclass
class ARRunConfig:
    preset: str = "tiny"
    model: GPTConfig = field(default_factory=GPTConfig)
    data: ARDataConfig = field(default_factory=ARDataConfig)


def model_config_dict(run: ARRunConfig) -> dict:
    return {"kind": "ar", **to_dict(run)}


def load_ar_model(run_dir: str | os.PathLike, ema: bool = True, device="cpu") -> tuple[GPT, ARRunConfig]:
    """A trained AR run -> (model in eval mode, its run config). Errors name the file."""
    from worldsmith.train.trainer import CheckpointError, load_weights, read_run_config

    try:
        saved = read_run_config(run_dir)
    except CheckpointError as e:
        raise ARError(str(e)) from None
    if saved.get("kind") != "ar":
        raise ARError(f"{Path(run_dir) / 'config.json'}: not an AR run (kind {saved.get('kind')!r})")
    run = from_dict(ARRunConfig, {k: v for k, v in saved.items() if k != "kind"}, str(Path(run_dir) / "config.json"))
    model = GPT(run.model)
    try:
        load_weights(run_dir, model, ema=ema)
    except CheckpointError as e:
        raise ARError(str(e)) from None
    return model.to(device).eval(), run


# ------------------------------------------------------------------------------------------------ loss
def ar_loss(model: GPT, batch: dict, step: int, text_dropout: float = 0.1) -> tuple[torch.Tensor, dict]:
    """Next-token cross-entropy over the whole token grid (mean nats per token).

    batch: "tokens" (B, T, H, W) int64, optional "text" (B, 384), optional "cond" (B, T, C)."""
    tokens = batch["tokens"].long()
    b, t, h, w = tokens.shape
    inputs, targets = teacher_forcing_inputs(tokens)
    text = batch.get("text")
    if text is not None and text_dropout > 0 and model.cross_layers:
        keep = torch.rand(b, device=text.device) >= text_dropout
        text = torch.where(keep[:, None], text, model.null_text[0].expand(b, -1).to(text.dtype))
    logits = model(inputs, grid_positions(t, h, w, device=tokens.device), text=text, cond=batch.get("cond"),
                   prev_ids=previous_frame_ids(targets, h * w))
    nll = model.codec.nll(logits, targets)                                   # (B, N)
    loss = nll.mean()
    with torch.no_grad():
        pred = model.codec.ids(logits.argmax(-1))
        acc = (pred == targets).float()
        later = slice(h * w, None)                                           # tokens after the first frame
        copy = (targets[:, later] == targets[:, : -h * w]).float().mean() if t > 1 else torch.tensor(0.0)
    return loss, {"bits_per_token": float(loss.detach()) / float(np.log(2)), "token_acc": float(acc.mean()),
                  "token_acc_later": float(acc[:, later].mean()) if t > 1 else 0.0,
                  "copy_acc_later": float(copy)}


def make_loss_fn(text_dropout: float):
    def loss_fn(model, batch, step):
        return ar_loss(model, batch, step, text_dropout)
    return loss_fn


# ------------------------------------------------------------------------------------------------ data
class TokenDataset(torch.utils.data.Dataset):
    """Cached DV token grids: {"tokens": (T, H, W) int64, "text": (384,) float32}."""

    def __init__(self, tokens: torch.Tensor, text: torch.Tensor | None = None):
        self.tokens, self.text = tokens, text

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict:
        item = {"tokens": self.tokens[i].long()}
        if self.text is not None:
            item["text"] = self.text[i]
        return item


def _tokenizer_fingerprint(run_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "ema.safetensors", "model.safetensors"):
        p = run_dir / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_key(data: ARDataConfig) -> str:
    h = hashlib.sha256()
    for r in data.roots:
        p = Path(r).resolve()
        stamp = max((f.stat().st_mtime_ns for f in p.rglob("*") if f.is_file()), default=0) if p.exists() else 0
        h.update(f"{p}:{stamp};".encode())
    h.update(json.dumps([data.clip_frames, data.stride, data.size, data.split]).encode())
    h.update(_tokenizer_fingerprint(Path(data.tokenizer)).encode())
    return h.hexdigest()[:20]


def default_cache_dir() -> Path:
    return Path(os.environ.get("WORLDSMITH_CACHE", Path.home() / ".cache" / "worldsmith")) / "ar_tokens"


def build_token_cache(data: ARDataConfig, cache_dir: str | os.PathLike | None = None, batch_size: int = 8,
                      show_progress: bool = True, device="auto") -> Path:
    """Encode every clip window of `data` once with its DV tokenizer; return the cache file (reused when present)."""
    from safetensors.torch import save_file

    from worldsmith.data.clips import ClipDataset
    from worldsmith.text import embed_texts
    from worldsmith.tokenizer.run import load_tokenizer

    from worldsmith.train.latents import encode_device

    device = encode_device(device)
    if device.type == "cuda":
        batch_size *= 8
    tok_dir = Path(data.tokenizer)
    try:
        tokenizer = load_tokenizer(tok_dir, device=device)
    except Exception as e:  # the tokenizer's own errors already name the file
        raise ARError(str(e)) from None
    if tokenizer.config.kind != "dv":
        raise ARError(f"{tok_dir / 'config.json'}: the AR model needs a DV tokenizer, this one is {tokenizer.config.kind!r}")
    st = tokenizer.config.temporal_compression
    if (data.clip_frames - 1) % st:
        raise ARError(f"clip_frames {data.clip_frames} must be 1 + a multiple of {st} for {tok_dir}")
    out = Path(cache_dir or default_cache_dir()) / f"{cache_key(data)}.safetensors"
    if out.exists():
        return out
    clips = ClipDataset(data.roots, clip_frames=data.clip_frames, stride=data.stride, split=data.split,
                        size=data.size)
    if len(clips) == 0:
        raise ARError(f"{', '.join(data.roots)}: no clips of {data.clip_frames} frames in split {data.split!r}")
    from rich.progress import Progress

    grids, tasks = [], []
    with Progress(disable=not show_progress) as progress, torch.no_grad():
        task = progress.add_task("encode DV tokens", total=len(clips))
        for start in range(0, len(clips), batch_size):
            items = [clips[i] for i in range(start, min(start + batch_size, len(clips)))]
            video = torch.stack([it["video"] for it in items]).permute(0, 2, 1, 3, 4).to(device)   # (B,3,T,H,W)
            grids.append(tokenizer.encode(video).to(torch.int32).cpu())
            tasks += [it["task"] for it in items]
            progress.advance(task, len(items))
    tokens = torch.cat(grids)
    text = torch.from_numpy(embed_texts(tasks))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    save_file({"tokens": tokens.contiguous(), "text": text.contiguous()}, str(tmp),
              metadata={"roots": json.dumps(data.roots), "tokenizer": str(tok_dir), "tasks": json.dumps(tasks)})
    os.replace(tmp, out)
    return out


def load_token_cache(path: str | os.PathLike) -> TokenDataset:
    from safetensors.torch import load_file

    t = load_file(str(path))
    return TokenDataset(t["tokens"], t.get("text"))


# ------------------------------------------------------------------------------------------------ training
def train_ar(run: ARRunConfig, train_cfg, out_dir: str | os.PathLike, cache_dir=None, show_progress: bool = True,
             stop_after: int | None = None, dataset: TokenDataset | None = None) -> dict:
    """Train (or resume) an AR run; `dataset` skips the tokenizer (tests, pre-tokenized data)."""
    from worldsmith.train.trainer import Trainer, resumed_run_config

    out = Path(out_dir)
    resumed_run_config(out, to_dict(run.model), ARError)
    if dataset is None:
        dataset = load_token_cache(build_token_cache(run.data, cache_dir, show_progress=show_progress))
    grid = list(dataset.tokens.shape[1:])
    if grid != list(run.model.grid):
        raise ARError(f"token grid {grid} of the data does not match the model grid {run.model.grid} "
                      f"(set model.grid={grid})")
    torch.manual_seed(train_cfg.seed)
    model = GPT(run.model)
    trainer = Trainer(model, make_loss_fn(run.data.text_dropout), dataset, train_cfg, out, model_config_dict(run),
                      show_progress=show_progress)
    return trainer.fit(stop_after=stop_after)


def run_config(preset: str, roots: list[str], tokenizer: str, overrides: list[str] | None = None) -> ARRunConfig:
    from worldsmith.config import apply_overrides

    run = ARRunConfig(preset=preset, model=preset_config(preset),
                      data=ARDataConfig(roots=[str(r) for r in roots], tokenizer=str(tokenizer)))
    return apply_overrides(run, overrides)


def train_ar_command(preset: str, data: list[str], tokenizer: str, out: str, steps: int, batch_size: int, lr: float,
                     precision: str, device: str, seed: int, overrides: list[str] | None, cache_dir: str | None) -> dict:
    """What `worldsmith train ar` runs: build the configs, check the inputs, train (or resume)."""
    from pathlib import Path

    from worldsmith.train.trainer import TrainConfig

    for root in data:
        if not Path(root).exists():
            raise ARError(f"{root}: no such dataset")
    train_overrides = [o[len("train."):] for o in overrides or [] if o.startswith("train.")]
    run = run_config(preset, data, tokenizer, [o for o in overrides or [] if not o.startswith("train.")])
    from worldsmith.config import apply_overrides

    train_cfg = apply_overrides(TrainConfig(steps=steps, batch_size=batch_size, lr=lr, precision=precision,
                                            device=device, seed=seed, warmup_steps=min(100, max(1, steps // 10)),
                                            ckpt_every=max(1, min(200, steps))), train_overrides)
    return train_ar(run, train_cfg, out, cache_dir=cache_dir)
