"""CLI group: Causal video tokenizers: train, encode, decode, eval."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Causal video tokenizers: train, encode, decode, eval.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _load(run: Path):
    from worldsmith.tokenizer.run import TokenizerError, load_tokenizer

    try:
        return load_tokenizer(run)
    except TokenizerError as e:
        _fail(str(e))


@app.command()
def train(
    preset: str = typer.Option("cv-4x8x8", help="cv-4x8x8, cv-8x8x8, cv-8x16x16, dv-4x8x8, dv-8x8x8, dv-8x16x16 "
                                               "(suffix -base for the GPU width)."),
    data: list[Path] = typer.Option(..., "--data", help="Episode dataset or folder of videos (repeatable)."),
    out: Path = typer.Option(..., help="Run directory (resumes if it holds a checkpoint)."),
    steps: Optional[int] = typer.Option(None, help="Training steps (same as --set train.steps=N)."),
    set_: list[str] = typer.Option([], "--set", help="Override model.X / loss.X / data.X / train.X (repeatable)."),
    init: Optional[Path] = typer.Option(None, help="Warm-start a new run from another tokenizer run's matching "
                                                   "weights (e.g. a DV from a trained CV)."),
    decoder_only: bool = typer.Option(False, "--decoder-only", help="Freeze the --init tokenizer's encoder and train "
                                      "its decoder: latents/token ids stay identical, so world models keep working."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Train a causal video tokenizer with L1 + SSIM losses, EMA and resume.

    Example: worldsmith tokenizer train --preset cv-4x8x8 --data data/robot --data data/videos --out runs/cv --steps 500 --set train.device=cuda
    """
    import json

    from worldsmith.config import ConfigError
    from worldsmith.data.layout import DatasetError
    from worldsmith.tokenizer.run import TokenizerError, run_config, train_tokenizer
    from worldsmith.video import VideoError

    for d in data:
        if not d.exists():
            _fail(f"{d}: no such dataset or folder")
    overrides = list(set_) + ([f"train.steps={steps}"] if steps is not None else [])
    try:
        cfg = run_config(preset, [str(d) for d in data], overrides)
        metrics = train_tokenizer(cfg, out, show_progress=not quiet, init_from=init, decoder_only=decoder_only)
    except (ConfigError, TokenizerError, DatasetError, VideoError, ValueError) as e:
        _fail(str(e))
    typer.echo(json.dumps({"run": str(out), **{k: round(v, 5) for k, v in metrics.items()}}))


@app.command()
def export(
    run: Path = typer.Argument(..., help="Tokenizer run directory."),
    out: Path = typer.Argument(..., help="Checkpoint folder to write (replaced; its README.md is kept)."),
    dtype: str = typer.Option("float16", help="Weight dtype: float16 (half the bytes) or float32."),
) -> None:
    """Export a run's EMA weights and config to a small checkpoint folder.

    Example: worldsmith tokenizer export runs/cv-4x8x8-tiny checkpoints/cv-4x8x8-tiny
    """
    from worldsmith.tokenizer.run import TokenizerError, export_checkpoint

    if dtype not in ("float16", "float32", "bfloat16"):
        _fail(f"--dtype {dtype}: expected float16, bfloat16 or float32")
    try:
        typer.echo(str(export_checkpoint(run, out, dtype)))
    except TokenizerError as e:
        _fail(str(e))


@app.command()
def encode(
    run: Path = typer.Argument(..., help="Tokenizer run directory."),
    src: Path = typer.Argument(..., help="Input video file."),
    dst: Path = typer.Argument(..., help="Output .safetensors (latents or tokens)."),
    size: Optional[int] = typer.Option(None, help="Resize (square crop) to this side first; default: crop to a "
                                                  "multiple of the spatial compression."),
) -> None:
    """Encode a video of any length to CV latents or DV tokens, streamed in chunks.

    Example: worldsmith tokenizer encode checkpoints/dv-4x8x8-tiny in.mp4 tokens.safetensors --size 64
    """
    import json

    from worldsmith.tokenizer.files import encode_file
    from worldsmith.video import VideoError

    model = _load(run)
    try:
        meta = encode_file(model, src, dst, size=size)
    except (VideoError, ValueError) as e:
        _fail(str(e))
    typer.echo(json.dumps(meta))


@app.command()
def decode(
    run: Path = typer.Argument(..., help="Tokenizer run directory."),
    src: Path = typer.Argument(..., help="Latent/token .safetensors from `encode`."),
    dst: Path = typer.Argument(..., help="Output .mp4."),
) -> None:
    """Decode latents or tokens back to an mp4, streamed in chunks.

    Example: worldsmith tokenizer decode checkpoints/dv-4x8x8-tiny tokens.safetensors recon.mp4
    """
    import json

    from worldsmith.tokenizer.files import decode_file

    model = _load(run)
    try:
        info = decode_file(model, src, dst)
    except ValueError as e:
        _fail(str(e))
    typer.echo(json.dumps(info))


@app.command("eval")
def eval_(
    run: Path = typer.Argument(..., help="Tokenizer run directory."),
    videos: list[Path] = typer.Option([], "--videos", help="Video files to evaluate on (repeatable)."),
    data: Optional[Path] = typer.Option(None, help="Or an episode dataset / video folder (its clips)."),
    split: str = typer.Option("test", help="Split of --data to use (train, val, test, all)."),
    size: int = typer.Option(64, help="Frame side (square crop)."),
    frames: int = typer.Option(33, help="Frames per clip (1 + k*s_t)."),
    max_clips: int = typer.Option(16, help="At most this many clips from --data."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the metrics here as JSON."),
) -> None:
    """PSNR, SSIM, encode/decode frames/s, peak memory; for DV codebook usage and bits per pixel.

    Example: worldsmith tokenizer eval checkpoints/cv-4x8x8-tiny --videos carphone_pristine.mp4 --size 64 --json cv.json
    """
    import json

    import torch

    from worldsmith.config import save_json
    from worldsmith.data.layout import DatasetError
    from worldsmith.tokenizer.files import clips_from_videos, evaluate_clips
    from worldsmith.video import VideoError

    model = _load(run)
    st = model.config.temporal_compression
    if (frames - 1) % st:
        _fail(f"--frames {frames}: must be 1 + k*{st} for {model.config.preset}")
    if not videos and data is None:
        _fail("pass --videos FILE... or --data DIR")
    try:
        if videos:
            clips = clips_from_videos([str(v) for v in videos], size, frames, model.config.spatial_compression)
        else:
            from worldsmith.data.clips import ClipDataset

            ds = ClipDataset([data], clip_frames=frames, stride=frames, split=split, size=size, columns=[])
            if len(ds) == 0:
                _fail(f"{data}: no clips of {frames} frames in split {split!r}")
            pick = torch.linspace(0, len(ds) - 1, min(max_clips, len(ds))).long().tolist()
            clips = [ds[i]["video"].transpose(0, 1)[None] for i in pick]
        metrics = evaluate_clips(model, clips)
    except (VideoError, DatasetError, ValueError) as e:
        _fail(str(e))
    metrics = {"run": str(run), "preset": model.config.preset, "size": size, "frames_per_clip": frames, **metrics}
    if json_out:
        save_json(metrics, json_out)
    typer.echo(json.dumps(metrics, indent=2))
