"""Diffusion world-model runs: config, training on cached CV latents through the shared trainer.

A run directory's `config.json` is {"kind": "diffusion", "model": DiTConfig, "edm": EDMConfig, "data": ...,
"tokenizer": <tokenizer run dir>, "latent_mean": [...], "latent_std": [...]}; `worldsmith.wfm.rollout` loads it.

Training samples, per clip: the number of given latent frames k (0 = text2world with probability
p_text2world, else uniform in 1..max_given), the EDM noise level, and whether the caption is dropped (for
classifier-free guidance). With the 4x8x8 tokenizer and 17-frame clips a clip is 5 latent frames; k = 2 gives the
model 5 video frames of context and asks for the next 12.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from worldsmith.config import apply_overrides, to_dict
from worldsmith.train.trainer import TrainConfig, Trainer
from worldsmith.wfm.dit import DiT, DiTConfig, dit_config
from worldsmith.wfm.edm import EDMConfig, edm_loss


@dataclass
class DiffusionDataConfig:
    roots: list[str] = field(default_factory=list)
    clip_frames: int = 17           # 1 + k * temporal_compression video frames per training window
    size: int = 64
    stride: int = 2                 # window start spacing within an episode
    max_given: int = 2              # video2world: up to this many given latent frames
    p_text2world: float = 0.1       # share of samples with no given frame


def _default_train() -> TrainConfig:
    # fp32: bf16 autocast made a DiT step ~5x slower on this 2-core CPU (no bf16 units; measured, nano preset);
    # use --set train.precision=bf16 on GPUs.
    return TrainConfig(steps=2000, batch_size=8, lr=1e-3, warmup_steps=100, min_lr_ratio=0.05, ema_decay=0.995,
                       precision="fp32", log_every=20, ckpt_every=250, weight_decay=0.01)


@dataclass
class DiffusionRunConfig:
    model: DiTConfig = field(default_factory=DiTConfig)
    edm: EDMConfig = field(default_factory=EDMConfig)
    data: DiffusionDataConfig = field(default_factory=DiffusionDataConfig)
    train: TrainConfig = field(default_factory=_default_train)
    tokenizer: str = ""
    preset: str = "tiny"


def run_config(preset: str, roots: list[str], tokenizer: str, overrides: list[str] | None = None,
               steps: int | None = None, init_from: str | os.PathLike | None = None) -> DiffusionRunConfig:
    """Preset + data + tokenizer + `a.b=c` overrides (model.*, edm.*, data.*, train.*) -> the resolved config.
    With `init_from` the model config (and preset name) are that run's, whatever `preset` says."""
    from worldsmith.tokenizer.run import load_tokenizer

    tok = load_tokenizer(tokenizer)   # raises a one-line TokenizerError naming the file
    if tok.config.kind != "cv":
        raise ValueError(f"{tokenizer}: the diffusion model needs a continuous (cv) tokenizer, not {tok.config.kind!r}")
    cfg = DiffusionRunConfig(model=dit_config(preset, latent_channels=tok.config.latent_channels),
                             data=DiffusionDataConfig(roots=[str(r) for r in roots]), tokenizer=str(tokenizer),
                             preset=preset)
    if init_from is not None:
        from worldsmith.config import from_dict
        from worldsmith.train.trainer import read_run_config

        saved = read_run_config(init_from)
        cfg.model, cfg.preset = from_dict(DiTConfig, saved.get("model", {})), saved.get("preset", preset)
    if steps is not None:
        cfg.train.steps = steps
    cfg = apply_overrides(cfg, overrides)
    st = tok.config.temporal_compression
    if (cfg.data.clip_frames - 1) % st:
        raise ValueError(f"data.clip_frames={cfg.data.clip_frames} must be 1 + k*{st} for {tokenizer}")
    if not 0 <= cfg.data.max_given < 1 + (cfg.data.clip_frames - 1) // st:
        raise ValueError(f"data.max_given={cfg.data.max_given} must leave at least one latent frame to generate")
    return cfg


def make_loss_fn(cfg: DiffusionRunConfig):
    from worldsmith.wfm.conditioning import drop_text

    def loss_fn(model, batch, step):
        x0 = batch["latents"]
        B = x0.shape[0]
        k = torch.randint(1, cfg.data.max_given + 1, (B,), device=x0.device) if cfg.data.max_given > 0 \
            else torch.zeros(B, dtype=torch.long, device=x0.device)
        k = torch.where(torch.rand(B, device=x0.device) < cfg.data.p_text2world, torch.zeros_like(k), k)
        text = drop_text(batch["text"], cfg.edm.text_dropout)
        return edm_loss(model, x0, cfg.edm, n_given=k, text=text, text_mask=batch["text_mask"])
    return loss_fn


def model_config_dict(cfg: DiffusionRunConfig, mean: torch.Tensor, std: torch.Tensor) -> dict:
    return {"kind": "diffusion", "preset": cfg.preset, "model": to_dict(cfg.model), "edm": to_dict(cfg.edm),
            "data": to_dict(cfg.data), "tokenizer": cfg.tokenizer,
            "latent_mean": [round(float(v), 6) for v in mean], "latent_std": [round(float(v), 6) for v in std]}


def init_source(cfg: DiffusionRunConfig, init_from: str | os.PathLike) -> dict:
    """The config.json of a diffusion run to warm-start from, checked against `cfg`: a diffusion run with the
    same DiT config (run_config takes it over; a --set model.* override would break it). The tokenizer is the
    caller's to keep: the weights only make sense on the latents they were trained on."""
    from worldsmith.config import from_dict
    from worldsmith.train.trainer import CheckpointError, read_run_config

    saved = read_run_config(init_from)
    where = Path(init_from) / "config.json"
    if saved.get("kind") != "diffusion":
        raise CheckpointError(f"{where}: not a diffusion run (kind {saved.get('kind')!r})")
    if to_dict(from_dict(DiTConfig, saved.get("model", {}))) != to_dict(cfg.model):
        raise CheckpointError(f"{where}: its DiT config differs from this run's (a --set model.* override?); "
                              f"warm-starting needs the same model")
    return saved


def train_diffusion(cfg: DiffusionRunConfig, out_dir: str | os.PathLike, show_progress: bool = True,
                    stop_after: int | None = None, cache_root: str | None = None,
                    init_from: str | os.PathLike | None = None) -> dict:
    """Encode (or reuse) the latent cache, then train the DiT; returns the last logged metrics.

    `init_from` warm-starts a new run from another diffusion run's (EMA) weights, keeping that run's latent
    normalisation, with a fresh optimiser and schedule: continued pre-training on more data, and the entry
    point of post-training. Ignored when resuming (the checkpoint wins)."""
    from worldsmith.train.latents import LatentClips, build_latent_cache, channel_stats
    from worldsmith.train.trainer import load_weights, read_run_config, resumed_run_config

    resumed_run_config(out_dir, to_dict(cfg.model))   # a run of another DiT config is refused before any work
    d = cfg.data
    cache = build_latent_cache(d.roots, cfg.tokenizer, d.clip_frames, d.size, d.stride, "train",
                               show_progress=show_progress, cache_root=cache_root)
    out = Path(out_dir)
    resuming = (out / "config.json").exists() and (out / "train_state.json").exists()
    source = init_source(cfg, init_from) if init_from is not None and not resuming else None
    if resuming or source is not None:
        saved = read_run_config(out) if resuming else source   # keep the normalisation the weights were trained on
        mean, std = torch.tensor(saved["latent_mean"]), torch.tensor(saved["latent_std"])
    else:
        from safetensors.torch import load_file

        mean, std = channel_stats(load_file(str(cache))["latents"])
        mean, std = torch.tensor([round(float(v), 6) for v in mean]), torch.tensor([round(float(v), 6) for v in std])
    data = LatentClips(cache, mean, std, cfg.edm.sigma_data)
    torch.manual_seed(cfg.train.seed)
    model = DiT(cfg.model)
    config = model_config_dict(cfg, mean, std)
    if source is not None:
        load_weights(init_from, model, ema=True)
        config["init_from"] = str(init_from)
    trainer = Trainer(model, make_loss_fn(cfg), data, cfg.train, out, config, show_progress=show_progress)
    return trainer.fit(stop_after=stop_after)
