"""CLI group: Curate raw video into training shards and a catalog."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Curate raw video into training shards and a catalog.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        _fail(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x360")
    if w < 16 or h < 16:
        _fail(f"--size {text!r}: sides must be >= 16")
    return h, w


@app.command("run")
def run_cmd(
    inputs: list[str] = typer.Argument(..., help="Video files, folders, globs, or LeRobot v3 episode dataset folders."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: shards/, catalog.parquet, summary.json."),
    engine: str = typer.Option("local", help="local (process pool) or ray."),
    workers: int = typer.Option(1, help="Parallel workers (processes, or Ray CPUs)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address; a local Ray is started when omitted."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON config file (see DIR/config.json of a run)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set filters.min_motion=0.1"),
) -> None:
    """Split, filter, deduplicate, caption and shard videos. Rerun the same command to resume after a crash.

    Example: worldsmith curate run raw/*.mp4 data/robot --out curated --workers 2
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from worldsmith.config import ConfigError, apply_overrides, load_config
    from worldsmith.curate.config import CurateConfig
    from worldsmith.curate.inputs import expand_inputs
    from worldsmith.curate.run import curate, pending

    if engine not in ("local", "ray"):
        _fail(f"--engine {engine!r}: choose local or ray")
    if workers < 1:
        _fail(f"--workers {workers}: must be >= 1")
    try:
        cfg = load_config(CurateConfig, config) if config else CurateConfig()
        cfg = apply_overrides(cfg, set_)
    except ConfigError as e:
        _fail(str(e))
    try:
        items, missing = expand_inputs(inputs)
    except Exception as e:  # an unreadable dataset folder
        _fail(f"cannot read inputs: {e}")
    for m in missing:
        typer.echo(f"warning: {m}: no such file, folder or match", err=True)
    if not items:
        _fail("no inputs found in " + " ".join(inputs))
    todo = len(pending(items, cfg, out / "work"))
    columns = [TextColumn("[bold]curate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("inputs", total=todo, rate="")
        seen = {"video": 0.0, "wall": 0.0}

        def done(s: dict) -> None:
            seen["video"] += s["duration"]
            bar.update(task, advance=1, rate=f"{seen['video']:.0f}s video")

        summary = curate(items, out, cfg, engine=engine, workers=workers, address=address, on_done=done)
    rej = ", ".join(f"{k} {v}" for k, v in summary["rejected"].items()) or "none"
    typer.echo(f"inputs {summary['inputs']} (bad {summary['bad_inputs']}, resumed past {summary['skipped_done']}), "
               f"{summary['input_seconds']:.1f} s of video -> clips {summary['clips']}, accepted {summary['accepted']} "
               f"({summary['accepted_seconds']:.1f} s), rejected: {rej}")
    typer.echo(f"shards: {len(summary['shards'])} in {out / 'shards'}; catalog: {out / 'catalog.parquet'}")


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output MP4; the ground truth goes to OUT.json."),
    size: str = typer.Option("640x360", help="WIDTHxHEIGHT of the compilation."),
    fps: float = typer.Option(25.0, help="Frame rate."),
    seed: int = typer.Option(0, help="Seed for the procedural segment and the caption text."),
) -> None:
    """Make a raw compilation with hard cuts and planted frozen, repeated, captioned and blurred segments.

    Example: worldsmith curate synth --out raw/synth.mp4
    """
    from worldsmith.curate.synth import synthesize

    gt = synthesize(out, size=_parse_size(size), fps=fps, seed=seed)
    typer.echo(f"wrote {out} ({gt['frames']} frames, {len(gt['cuts'])} cuts) and {out}.json")


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="A folder written by `worldsmith curate run`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML report path (default DIR/report.html)."),
) -> None:
    """Funnel, rejection reasons, score histograms and contact sheets of a curation run (HTML + PNG).

    Example: worldsmith curate report curated --out curated/report.html
    """
    from worldsmith.curate.report import make_report

    if not (run_dir / "catalog.parquet").is_file():
        _fail(f"{run_dir}: no catalog.parquet (not a curation output folder?)")
    path = make_report(run_dir, out or run_dir / "report.html")
    typer.echo(f"wrote {path}")


@app.command("train-text-detector")
def train_text_cmd(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Weights JSON (default: the shipped file)."),
    n_train: int = typer.Option(3000, help="Training frames (half with rendered captions)."),
    n_test: int = typer.Option(1000, help="Held-out frames from other videos and time ranges."),
    seed: int = typer.Option(0),
) -> None:
    """Retrain the burnt-in text detector on rendered captions and print its held-out accuracy.

    Example: worldsmith curate train-text-detector --out /tmp/text_detector.json
    """
    from worldsmith.curate.textdetect import WEIGHTS, train_text_detector

    model = train_text_detector(out or WEIGHTS, n_train=n_train, n_test=n_test, seed=seed)
    typer.echo(f"train accuracy {model['train_accuracy']:.3f}, held-out accuracy {model['heldout_accuracy']:.3f} "
               f"-> {out or WEIGHTS}")
