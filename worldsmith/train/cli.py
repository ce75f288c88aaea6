"""CLI group: Train world models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Train world models.", no_args_is_help=True)


@app.command("ar")
def train_ar_cmd(
    preset: str = typer.Option("tiny", help="AR model preset: tiny (CPU), small, base."),
    data: list[str] = typer.Option(..., "--data", help="Episode dataset or video folder (repeat for several)."),
    tokenizer: str = typer.Option(..., help="DV tokenizer run directory (e.g. checkpoints/dv-4x8x8-tiny)."),
    out: str = typer.Option(..., help="Run directory (resumed when it holds a checkpoint)."),
    steps: int = typer.Option(1000, help="Optimizer steps."),
    batch_size: int = typer.Option(8, help="Clips per step."),
    lr: float = typer.Option(1e-3, help="Peak learning rate."),
    precision: str = typer.Option("fp32", help="fp32 or bf16 (bf16 autocast is slow on CPUs without bf16 units)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    seed: int = typer.Option(0, help="Seed for init and data order."),
    set_: list[str] = typer.Option([], "--set", help="Overrides: model.dim=256, data.clip_frames=33, train.ema_decay=0.99."),
    cache: str = typer.Option(None, help="Token cache folder (default ~/.cache/worldsmith/ar_tokens)."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default; 1 wins on a busy machine)."),
) -> None:
    """Train the autoregressive world model on DV tokens (tokens are cached once per dataset and tokenizer).

    Example: worldsmith train ar --preset tiny --data data/robot --tokenizer checkpoints/dv-4x8x8-tiny --out runs/ar
    """
    import sys

    from worldsmith.config import ConfigError
    from worldsmith.train.trainer import CheckpointError
    from worldsmith.wfm.ar_train import ARError, train_ar_command

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        metrics = train_ar_command(preset, data, tokenizer, out, steps, batch_size, lr, precision, device, seed,
                                   set_, cache)
    except (ARError, ConfigError, CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(1)
    typer.echo(f"trained {out}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


@app.command("diffusion")
def diffusion(
    data: list[Path] = typer.Option(..., "--data", help="Episode dataset(s) or video folder(s) (repeatable)."),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="Trained CV tokenizer run directory."),
    out: Path = typer.Option(..., "--out", help="Run directory (resumes if it holds a checkpoint)."),
    preset: str = typer.Option("tiny", "--preset", help="DiT preset: nano, tiny, small, base."),
    steps: int = typer.Option(None, "--steps", help="Training steps (default: the preset's)."),
    overrides: list[str] = typer.Option([], "--set", help="Override model.X, edm.X, data.X or train.X (repeatable)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Warm-start from another diffusion run's weights "
                                        "and model config (same tokenizer; fresh optimiser and schedule)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train the diffusion world model (DiT + EDM) on the CV tokenizer's latents of the clips in --data.

    Clips are encoded once and cached (~/.cache/worldsmith/latents, or $WORLDSMITH_CACHE). Under torchrun the
    same command trains data-parallel.

    Example: worldsmith train diffusion --preset tiny --data data/robot --tokenizer checkpoints/cv-4x8x8-tiny
    --out runs/dit-robot --steps 2000 --set train.batch_size=8
    """
    from worldsmith.config import ConfigError
    from worldsmith.data.layout import DatasetError
    from worldsmith.tokenizer.run import TokenizerError
    from worldsmith.train.diffusion import run_config, train_diffusion
    from worldsmith.train.trainer import CheckpointError
    from worldsmith.video import VideoError

    for d in data:
        if not d.exists():
            _fail(f"{d}: no such dataset folder")
    try:
        cfg = run_config(preset, [str(d) for d in data], str(tokenizer), overrides, steps=steps, init_from=init)
        metrics = train_diffusion(cfg, out, show_progress=not quiet, init_from=init)
    except (ConfigError, TokenizerError, CheckpointError, DatasetError, VideoError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"trained {out}: step {cfg.train.steps}, loss {metrics.get('loss', float('nan')):.4f}")


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="Trained run directory."),
    out: Path = typer.Argument(..., help="Folder to write (replaced)."),
    fp32: bool = typer.Option(False, "--fp32", help="Keep float32 weights (default: float16, half the size)."),
) -> None:
    """Export a run's EMA weights and config to a small folder that predict/eval load (e.g. for checkpoints/).

    Example: worldsmith train export runs/dit-robot checkpoints/diffusion-robot-tiny
    """
    from worldsmith.train.trainer import CheckpointError, export_run

    try:
        path = export_run(run, out, half=not fp32)
    except (CheckpointError, OSError) as e:
        _fail(str(e))
    size = sum(p.stat().st_size for p in path.iterdir()) / 1e6
    typer.echo(f"exported {run} -> {path} ({size:.1f} MB)")
