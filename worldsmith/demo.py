"""The demo `make demo` runs: the platform end to end at the `tiny` scale, as a list of steps.

Today's steps:
  1. sources  generate a small LeRobot v3.0 dataset from every source (a failure is recorded, the
              rest go on) and draw one contact sheet per source plus `sources.png`, all of them
Later steps (tokenizer, world models, evaluation) append themselves to `STEPS`. Every step gets
the shared `DemoContext` (config, output folder, what earlier steps produced) and returns
`StepResult`s; `report.html` lists them all. The demo exits non-zero when any result failed.
"""

from __future__ import annotations

import html
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class DemoConfig:
    out: str = "demo_out"
    episodes: int = 2
    frames: int = 17
    size: int = 64
    seed: int = 0
    sources: list[str] | None = None  # None: every source in worldsmith.sources.SOURCES


@dataclass
class StepResult:
    step: str
    name: str
    ok: bool
    seconds: float
    detail: str = ""  # one line: what was made, or the error
    files: list[str] = field(default_factory=list)  # relative to the demo folder


@dataclass
class DemoContext:
    config: DemoConfig
    out: Path
    results: list[StepResult] = field(default_factory=list)
    datasets: dict[str, Path] = field(default_factory=dict)  # source name -> dataset folder
    log: Callable[[str], None] = print


def step_sources(ctx: DemoContext) -> None:
    """One small dataset and one contact sheet per source; `sources.png` shows them side by side."""
    from worldsmith import sources
    from worldsmith.data.cli import GenerateError, generate_dataset
    from worldsmith.data.lerobot import LeRobotDataset
    from worldsmith.data.sheet import grid, pick_frames, save_view

    cfg = ctx.config
    names = cfg.sources or list(sources.SOURCES)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        try:
            root = generate_dataset(name, ctx.out / "data" / name, cfg.episodes, cfg.frames, cfg.size, cfg.seed,
                                    overwrite=True)
            ds = LeRobotDataset(root)
            video = ds.frames(0)
            picks = pick_frames(len(video), 8)
            sheet = ctx.out / "sheets" / f"{name}.png"
            save_view(sheet, video[picks], ds.fps, picks, ds.tasks[0], f"{name} episode 0")
            seconds = time.perf_counter() - t0
            cols = ", ".join(f"{c} {ds.features[c]['shape']}" for c in ds.column_names) or "no columns"
            detail = (f"{ds.num_episodes} episodes x {ds.lengths[0]} frames at {ds.fps:g} fps, "
                      f"{ds.num_frames / seconds:.0f} frames/s end to end; {cols}")
            ctx.datasets[name] = root
            ctx.results.append(StepResult("sources", name, True, seconds, detail,
                                          [str(sheet.relative_to(ctx.out))]))
            rows.append((f"{name}: {ds.tasks[0]}", [(video[i], f"frame {i}") for i in picks]))
            ctx.log(f"  ok      {name:<8} {seconds:5.1f} s  {detail}")
        except Exception as e:  # noqa: BLE001 - a broken source is reported by name; the demo goes on
            seconds = time.perf_counter() - t0
            message = (str(e) if isinstance(e, GenerateError) else f"{type(e).__name__}: {e}").splitlines()[0]
            ctx.results.append(StepResult("sources", name, False, seconds, message))
            ctx.log(f"  FAILED  {name:<8} {message}")
            rows.append((f"{name}: FAILED ({message})", []))
            (ctx.out / "logs").mkdir(parents=True, exist_ok=True)
            (ctx.out / "logs" / f"source-{name}.txt").write_text(traceback.format_exc())
    if any(cells for _, cells in rows):
        combined = ctx.out / "sources.png"
        tmp = combined.with_name(".sources.tmp.png")
        grid(rows, "worldsmith sources: episode 0 of each", tile=96, label_width=150).save(tmp)
        tmp.replace(combined)
        ctx.results.append(StepResult("sources", "sources.png", True, 0.0, f"{len(rows)} sources side by side",
                                      ["sources.png"]))


# The lead extends this list with the world-model chain (tokenize, train, roll out, evaluate).
STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("sources", step_sources),
]


def write_report(ctx: DemoContext) -> Path:
    rows = []
    for r in ctx.results:
        status = "ok" if r.ok else "FAILED"
        images = "".join(f'<br><img src="{html.escape(f)}" style="max-width:100%">' for f in r.files
                         if f.endswith((".png", ".gif")))
        rows.append(f"<tr class='{status}'><td>{html.escape(r.step)}</td><td>{html.escape(r.name)}</td>"
                    f"<td>{status}</td><td>{r.seconds:.1f}</td><td>{html.escape(r.detail)}{images}</td></tr>")
    failed = sum(not r.ok for r in ctx.results)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>worldsmith demo</title>
<style>body{{font-family:sans-serif;margin:2em}} td{{vertical-align:top;padding:4px 8px;border-bottom:1px solid #ddd}}
tr.FAILED td{{background:#fdd}}</style></head><body>
<h1>worldsmith demo</h1>
<p>{len(ctx.results)} results, {failed} failed. Config: {html.escape(str(ctx.config))}</p>
<img src="sources.png" style="max-width:100%">
<table><tr><th>step</th><th>item</th><th>status</th><th>seconds</th><th>detail</th></tr>
{''.join(rows)}
</table></body></html>
"""
    path = ctx.out / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path


def run_demo(config: DemoConfig, log: Callable[[str], None] = print) -> DemoContext:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(config, out, log=log)
    for name, step in STEPS:
        log(f"[{name}]")
        t0 = time.perf_counter()
        try:
            step(ctx)
        except Exception as e:  # noqa: BLE001 - a step that breaks is reported; later steps still run
            ctx.results.append(StepResult(name, name, False, time.perf_counter() - t0, f"{type(e).__name__}: {e}"))
            log(f"  FAILED  step {name}: {type(e).__name__}: {e}")
    write_report(ctx)
    return ctx
