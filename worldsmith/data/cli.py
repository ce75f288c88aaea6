"""CLI group: Episode datasets: generate, inspect, view."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="Episode datasets: generate, inspect, view.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def parse_options(items: list[str]) -> dict:
    """`--set key=value` pairs; values are parsed as JSON when they can be (numbers, lists, true/false)."""
    options = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value, e.g. --set objects=2")
        key, raw = item.split("=", 1)
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def folder_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def dataset_summary(root: Path) -> dict:
    from worldsmith.data.lerobot import LeRobotDataset

    ds = LeRobotDataset(root)
    tasks: dict[str, int] = {}
    for t in ds.tasks:
        tasks[t] = tasks.get(t, 0) + 1
    return {
        "path": str(root),
        "codebase_version": ds.version,
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "fps": ds.fps,
        "duration_s": round(ds.num_frames / ds.fps, 3),
        "episode_length": {"min": min(ds.lengths, default=0), "max": max(ds.lengths, default=0)},
        "features": {k: {"dtype": f.get("dtype"), "shape": f.get("shape")} for k, f in ds.features.items()},
        "tasks": tasks,
        "size_bytes": folder_size(root),
    }


@app.command()
def info(
    root: Path = typer.Argument(..., help="Dataset folder (LeRobot v3.0 or v2.x)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
) -> None:
    """Summarise a dataset: episodes, frames, fps, features, tasks, size on disk.

    Example: worldsmith data info data/robot --json
    """
    from worldsmith.data.lerobot import DatasetError

    try:
        s = dataset_summary(root)
    except DatasetError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{s['path']}[/]  LeRobot {s['codebase_version']}  {s['episodes']} episodes, "
                  f"{s['frames']} frames at {s['fps']:g} fps ({s['duration_s']:.1f} s), "
                  f"episode length {s['episode_length']['min']}..{s['episode_length']['max']}, "
                  f"{s['size_bytes'] / 1e6:.2f} MB on disk")
    table = Table("feature", "dtype", "shape")
    for name, f in s["features"].items():
        table.add_row(name, str(f["dtype"]), str(f["shape"]))
    console.print(table)
    tasks = Table("task", "episodes")
    for t, n in sorted(s["tasks"].items(), key=lambda kv: -kv[1])[:20]:
        tasks.add_row(t or "(none)", str(n))
    if len(s["tasks"]) > 20:
        tasks.add_row(f"... {len(s['tasks']) - 20} more", "")
    console.print(tasks)


@app.command()
def view(
    root: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="Output file: .png/.jpg contact sheet, .gif or .mp4."),
    episode: int = typer.Option(0, "--episode", help="Episode index."),
    frames: int = typer.Option(16, "--frames", help="Frames on a contact sheet (spread over the episode)."),
) -> None:
    """Render one episode as a contact sheet (frame index and task on it), a GIF or an MP4.

    Example: worldsmith data view data/robot --episode 3 --out robot_ep3.png
    """
    from worldsmith.data.lerobot import DatasetError, LeRobotDataset
    from worldsmith.data.sheet import pick_frames, save_view

    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif", ".mp4"):
        _fail(f"{out}: unsupported output type {out.suffix!r} (use .png, .jpg, .gif or .mp4)")
    try:
        ds = LeRobotDataset(root)
        video = ds.frames(episode)
    except DatasetError as e:
        _fail(str(e))
    indices = list(range(len(video)))
    if out.suffix.lower() in (".png", ".jpg", ".jpeg"):
        indices = pick_frames(len(video), max(1, frames))
        video = video[indices]
    save_view(out, video, ds.fps, indices, ds.tasks[episode], f"{ds.name} episode {episode}")
    typer.echo(f"wrote {out}")


@app.command()
def generate(
    source: str = typer.Argument(..., help="Source name: robot, driving, camera, physics, atari, videos."),
    out: Path = typer.Option(..., "--out", help="Output dataset folder."),
    episodes: int = typer.Option(8, "--episodes", help="Number of episodes."),
    frames: int = typer.Option(17, "--frames", help="Frames per episode."),
    size: int = typer.Option(64, "--size", help="Frame side in pixels (64, 128, 256)."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same dataset."),
    options: List[str] = typer.Option([], "--set", help="Source option key=value (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
    data_file_mb: float = typer.Option(100.0, "--data-file-mb", help="Roll data parquet files over at this size."),
    video_file_mb: float = typer.Option(500.0, "--video-file-mb", help="Roll mp4 files over at this size."),
) -> None:
    """Generate a LeRobot v3.0 dataset from a simulated source, streaming episodes to disk.

    The dataset is written to a temp folder beside --out and renamed at the end, so --out is
    either the finished dataset or untouched.

    Example: worldsmith data generate robot --out data/robot --episodes 8 --frames 33 --size 64 --seed 0
    """
    try:
        path = generate_dataset(source, out, episodes, frames, size, seed, parse_options(options), overwrite,
                                data_file_mb=data_file_mb, video_file_mb=video_file_mb, progress=True)
    except (GenerateError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"wrote {path}")


class GenerateError(Exception):
    pass


def generate_dataset(source: str, out: str | os.PathLike, episodes: int, frames: int, size: int = 64, seed: int = 0,
                     options: dict | None = None, overwrite: bool = False, progress: bool = False,
                     **writer_options) -> Path:
    """Stream `worldsmith.sources.generate(...)` into a v3.0 dataset at `out` (temp folder, then rename)."""
    from worldsmith import sources
    from worldsmith.data.lerobot import DatasetError, DatasetWriter

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise GenerateError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    try:
        stream = sources.generate(source, episodes=episodes, frames=frames, size=size, seed=seed, **(options or {}))
    except (ValueError, TypeError, ImportError) as e:
        raise GenerateError(f"source {source!r}: {e}") from e
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    writer = None
    try:
        with _progress(progress, f"{source}", episodes) as advance:
            for ep in stream:
                if writer is None:
                    writer = DatasetWriter(tmp, ep.fps, **writer_options)
                writer.add(ep)
                advance(ep.length)
        if writer is None:
            raise GenerateError(f"source {source!r} produced no episodes")
        writer.close()
    except GenerateError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as e:  # a source or write failure: one line, nothing left behind
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        message = str(e) if isinstance(e, DatasetError) else f"source {source!r} failed: {type(e).__name__}: {e}"
        raise GenerateError(message) from e
    except BaseException:  # Ctrl-C: still leave nothing behind
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        trash = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, trash)
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    return out


class _progress:
    """A rich progress bar over episodes (with frames/s), or nothing when `enabled` is False."""

    def __init__(self, enabled: bool, label: str, total: int):
        self.enabled, self.label, self.total = enabled and sys.stderr is not None, label, total
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[fps]} frames/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                            transient=False)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=self.total, fps="-")
        self.frames = 0

        def advance(n: int) -> None:
            self.frames += n
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            self.bar.update(self.task, advance=1, fps=f"{self.frames / elapsed:.0f}")

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
