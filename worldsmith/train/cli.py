"""CLI group: Train world models."""

from __future__ import annotations

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
) -> None:
    """Train the autoregressive world model on DV tokens (tokens are cached once per dataset and tokenizer).

    Example: worldsmith train ar --preset tiny --data data/robot --tokenizer checkpoints/dv-4x8x8-tiny --out runs/ar
    """
    import sys

    from worldsmith.config import ConfigError
    from worldsmith.train.trainer import CheckpointError
    from worldsmith.wfm.ar_train import ARError, train_ar_command

    try:
        metrics = train_ar_command(preset, data, tokenizer, out, steps, batch_size, lr, precision, device, seed,
                                   set_, cache)
    except (ARError, ConfigError, CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(1)
    typer.echo(f"trained {out}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
