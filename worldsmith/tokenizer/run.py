"""Tokenizer runs: the full run config, training through the shared trainer, and `load_tokenizer(run_dir)`.

A run directory is the shared trainer's (DESIGN.md): `config.json` holds {"kind": "tokenizer", "model": ...,
"loss": ..., "data": ...}; the weights are `ema.safetensors` (used for inference) and `model.safetensors`.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from worldsmith.config import ConfigError, apply_overrides, from_dict, to_dict
from worldsmith.tokenizer.losses import LossConfig, reconstruction_loss
from worldsmith.tokenizer.model import TokenizerConfig, VideoTokenizer, preset_config


class TokenizerError(RuntimeError):
    """A tokenizer run directory that cannot be loaded: the message names the file and the problem."""


@dataclass
class DataConfig:
    roots: list[str] = field(default_factory=list)   # episode datasets and/or folders of videos
    clip_frames: int = 0         # 0: 1 + 2*s_t (two latent frames after the first)
    size: int = 64
    stride: int = 2
    split: str = "train"         # "all" when the held-out footage is kept out by file instead
    preload: bool = True         # decode every episode once into memory (random windows then cost a slice) ...
    preload_max_gb: float = 16.0  # ... unless the decoded frames would exceed this (then an LRU of episodes)
    flip: bool = True            # random horizontal flips of training clips (mirror-symmetric content)


def _default_train():
    from worldsmith.train.trainer import TrainConfig
    # fp32: bf16 autocast convolutions are ~10x slower than fp32 on the 2-core CPU (measured); use
    # --set train.precision=bf16 on GPUs.
    return TrainConfig(steps=1000, batch_size=2, lr=5e-4, warmup_steps=50, ema_decay=0.995, precision="fp32",
                       log_every=10, ckpt_every=100)


@dataclass
class TokenizerRunConfig:
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: object = field(default_factory=_default_train)


def run_config(preset: str, roots: list[str], overrides: list[str] | None = None) -> TokenizerRunConfig:
    """Preset + data roots + `a.b=c` overrides (model.*, loss.*, data.*, train.*) -> the resolved run config."""
    from worldsmith.train.trainer import TrainConfig

    model = preset_config(preset)
    base = {"model": to_dict(model), "loss": to_dict(LossConfig()), "data": to_dict(DataConfig(roots=list(roots))),
            "train": to_dict(_default_train())}
    for item in overrides or []:
        key, eq, raw = item.partition("=")
        parts = key.strip().split(".")
        if not eq or parts[0] not in base or len(parts) != 2:
            raise ConfigError(f"override {item!r}: expected model.X=, loss.X=, data.X= or train.X= (e.g. train.steps=500)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if parts[1] not in base[parts[0]]:
            raise ConfigError(f"override {item!r}: no field {parts[1]!r} in {parts[0]} (have {sorted(base[parts[0]])})")
        base[parts[0]][parts[1]] = value
    cfg = TokenizerRunConfig(model=from_dict(TokenizerConfig, base["model"], "model"),
                             loss=from_dict(LossConfig, base["loss"], "loss"),
                             data=from_dict(DataConfig, base["data"], "data"),
                             train=from_dict(TrainConfig, base["train"], "train"))
    VideoTokenizer(cfg.model)  # validate the model config now, not after the data is opened
    return cfg


def model_config_dict(cfg: TokenizerRunConfig) -> dict:
    return {"kind": "tokenizer", "model": to_dict(cfg.model), "loss": to_dict(cfg.loss), "data": to_dict(cfg.data)}


def make_loss_fn(loss_cfg: LossConfig, flip: bool = False, decoder_only: bool = False):
    def loss_fn(model: VideoTokenizer, batch: dict, step: int):
        video = batch["video"].transpose(1, 2)  # ClipDataset gives (B, T, 3, H, W)
        if flip:  # the trainer seeds the CPU generator per micro-batch, so resume stays exact
            mirrored = (torch.rand(video.shape[0]) < 0.5).to(video.device).view(-1, 1, 1, 1, 1)
            video = torch.where(mirrored, video.flip(-1), video)
        if decoder_only:  # the frozen encoder needs no graph: about 40% less work per step
            with torch.no_grad():
                codes = model.encode_codes(video)
            recon = model._decode_raw(codes)
        else:
            recon, _ = model(video)
        return reconstruction_loss(recon, video, loss_cfg)

    return loss_fn


def open_clips(data: DataConfig, model: TokenizerConfig, split: str | None = None):
    from worldsmith.data.clips import ClipDataset

    if not data.roots:
        raise ConfigError("no training data: pass --data DIR (an episode dataset or a folder of videos)")
    frames = data.clip_frames or 1 + 2 * model.temporal_compression
    clips = ClipDataset(data.roots, clip_frames=frames, stride=data.stride, split=split or data.split,
                        size=data.size, columns=[])
    if data.preload:
        need = sum(clips.sources[si].length(k) for si, k in clips.episodes) * data.size * data.size * 3
        if need <= data.preload_max_gb * 2**30:
            clips.preload()
        else:
            warnings.warn(f"{data.roots}: decoded frames would take {need / 2**30:.1f} GB, over data.preload_max_gb="
                          f"{data.preload_max_gb:g}; not preloading (each random window then decodes its episode)")
    return clips


def init_from_run(model: VideoTokenizer, run_dir: str | os.PathLike) -> list[str]:
    """Warm start: copy every weight of another tokenizer run whose name and shape match (e.g. a DV from a
    trained CV of the same compression: all but the latent projections). Returns the names not copied."""
    src = load_tokenizer(run_dir).state_dict()
    own = model.state_dict()
    take = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict({**own, **take})
    return sorted(set(own) - set(take))


def train_tokenizer(cfg: TokenizerRunConfig, out_dir: str | os.PathLike, show_progress: bool = True,
                    stop_after: int | None = None, init_from: str | os.PathLike | None = None, data=None,
                    decoder_only: bool = False) -> dict:
    """Train (or resume) a tokenizer run; returns the last logged metrics. `init_from` warm-starts a new run
    from another run's matching weights (ignored when resuming: the checkpoint wins). `data` is an already
    opened `open_clips(cfg.data, cfg.model)` to reuse (several runs over one preloaded dataset).

    `decoder_only` freezes the encoder of the `init_from` tokenizer and trains the decoder alone: CV latents and
    DV token ids stay bit-identical, so world models trained on them keep working and gain the better decoder.
    A run started that way resumes that way (it is recorded in config.json as "finetune": "decoder")."""
    from worldsmith.train.trainer import Trainer, resumed_run_config

    out = Path(out_dir)
    saved = resumed_run_config(out, to_dict(cfg.model), TokenizerError)
    if saved is not None:
        decoder_only = decoder_only or saved.get("finetune") == "decoder"
    resuming = (out / "train_state.json").exists()
    if decoder_only and init_from is None and not resuming:
        raise TokenizerError(f"{out}: decoder-only fine-tuning starts from a trained tokenizer: pass --init RUN")
    torch.manual_seed(cfg.train.seed)
    model = VideoTokenizer(cfg.model)
    if init_from is not None and not resuming:
        missed = init_from_run(model, init_from)
        if decoder_only and missed:
            raise TokenizerError(f"{init_from}: does not match preset {cfg.model.preset!r} (missing {missed[:2]}); "
                                 f"decoder-only fine-tuning needs every weight")
    if decoder_only:
        model.encoder.requires_grad_(False)
    data = data if data is not None else open_clips(cfg.data, cfg.model)
    if len(data) == 0:
        raise ConfigError(f"{cfg.data.roots}: no clips of {cfg.data.clip_frames or 1 + 2 * cfg.model.temporal_compression}"
                          f" frames in split {cfg.data.split!r}")
    config = {**model_config_dict(cfg), **({"finetune": "decoder"} if decoder_only else {})}
    trainer = Trainer(model, make_loss_fn(cfg.loss, cfg.data.flip, decoder_only), data, cfg.train, out, config,
                      show_progress=show_progress)
    return trainer.fit(stop_after=stop_after)


def load_tokenizer(run_dir: str | os.PathLike, preset: str | None = None, ema: bool = True,
                   device: str | torch.device = "cpu") -> VideoTokenizer:
    """Load a trained tokenizer (EMA weights) in eval mode.

    Raises TokenizerError with "<file>: <problem>" for a missing or damaged config or weights file, a run of
    another kind, a `preset` other than the run's, or weights that do not fit the config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run = Path(run_dir)
    cfg_path = run / "config.json"
    try:
        saved = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise TokenizerError(f"{cfg_path}: no such file (is {run} a tokenizer run directory?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{cfg_path}: corrupt config (not valid JSON: {e})") from None
    if not isinstance(saved, dict) or saved.get("kind") != "tokenizer" or "model" not in saved:
        kind = saved.get("kind") if isinstance(saved, dict) else None
        raise TokenizerError(f"{cfg_path}: not a tokenizer run (kind {kind!r})")
    try:
        cfg = from_dict(TokenizerConfig, saved["model"], str(cfg_path))
    except ConfigError as e:
        raise TokenizerError(str(e)) from None
    if preset is not None:
        want = preset_config(preset)
        if (want.kind, want.compression) != (cfg.kind, cfg.compression):  # widths may be overridden by --set
            raise TokenizerError(f"{cfg_path}: holds preset {cfg.preset!r}, not the requested {preset!r}")
    weights = run / "ema.safetensors"
    if not ema or not weights.exists():
        weights = run / "model.safetensors"
    try:
        state = load_file(str(weights))
    except FileNotFoundError:
        raise TokenizerError(f"{weights}: no such file (was {run} trained?)") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise TokenizerError(f"{weights}: corrupt checkpoint ({e})") from None
    model = VideoTokenizer(cfg)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        raise TokenizerError(f"{weights}: does not match preset {cfg.preset!r} (missing {missing[:2]}, "
                             f"unexpected {unexpected[:2]}, wrong shape {bad[:2]})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model.to(device).eval()


def export_checkpoint(run_dir: str | os.PathLike, out_dir: str | os.PathLike, dtype: str = "float16") -> Path:
    """Copy a run's inference files to a small checkpoint folder: config.json, train.json, log.jsonl, loss.png and
    the EMA weights as `ema.safetensors` (float16 by default: half the bytes; load_tokenizer casts back to float32).
    The run is validated as a tokenizer first; the shared trainer's export writes the folder atomically."""
    from worldsmith.train.trainer import CheckpointError, export_run

    model = load_tokenizer(run_dir)  # validates the run first
    try:
        return export_run(run_dir, out_dir, dtype=dtype, metadata={"preset": model.config.preset})
    except CheckpointError as e:
        raise TokenizerError(str(e)) from e
