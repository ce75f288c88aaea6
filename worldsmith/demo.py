"""The demo `make demo` runs: the platform end to end at the `tiny` scale, as a list of steps.

Steps:
  1. sources       generate a small LeRobot v3.0 dataset from every source (a failure is recorded, the
                   rest go on) and draw one contact sheet per source plus `sources.png`
  2. world models  generate robot episodes with a seed no checkpoint was trained on, predict their futures
                   with the shipped diffusion and AR checkpoints behind the guardrail (prompt pre-guard,
                   video post-guard with face blur), and evaluate PSNR/SSIM by horizon against
                   copy-last-frame and the tokenizer's own reconstruction (the ceiling)
 Every step gets
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
    heldout_episodes: int = 12  # robot episodes for the world-model step (seed below: never trained on)
    heldout_seed: int = 20261125
    models: tuple[str, ...] = ("diffusion-robot-tiny", "ar-robot-tiny")  # folders under checkpoints/
    no_guard: bool = False  # turning the guardrail off is explicit and logged


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


CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def _strip(side_by_side_mp4: Path, context: int, n: int = 8):
    """Ground truth | prediction rows from a side-by-side predict mp4 (left half truth, right half prediction)."""
    from worldsmith.data.sheet import pick_frames
    from worldsmith.video import read_video

    video = read_video(side_by_side_mp4)
    w = video.shape[2] // 2
    picks = [context + i for i in pick_frames(len(video) - context, n)]
    return [("ground truth", [(video[i, :, :w], f"t={i}") for i in picks]),
            ("prediction", [(video[i, :, w:], f"t={i}") for i in picks])]


def step_world_models(ctx: DemoContext) -> None:
    """Predict held-out robot futures with each shipped world model, guarded, and evaluate them."""
    from worldsmith.data.cli import generate_dataset
    from worldsmith.data.sheet import grid
    from worldsmith.guardrail import Guardrail
    from worldsmith.predict import run_diffusion_demo

    cfg = ctx.config
    if not cfg.models:
        return
    t0 = time.perf_counter()
    root = generate_dataset("robot", ctx.out / "data" / "robot-heldout", cfg.heldout_episodes, 33, cfg.size,
                            cfg.heldout_seed, overwrite=True)
    ctx.results.append(StepResult("world models", "held-out robot data", True, time.perf_counter() - t0,
                                  f"{cfg.heldout_episodes} episodes x 33 frames, seed {cfg.heldout_seed}"))
    guard = Guardrail.for_command(None, cfg.no_guard, "demo")
    for name in cfg.models:
        model = CHECKPOINTS / name
        t0 = time.perf_counter()
        if not (model / "config.json").exists():
            ctx.results.append(StepResult("world models", name, False, 0.0,
                                          f"{model}: no checkpoint (see checkpoints/README.md to train one)"))
            continue
        try:
            out = ctx.out / "world_models" / name
            res = run_diffusion_demo(root, out, model=str(model), episodes=2, frames=16, max_clips=12,
                                     show_progress=False, guard=guard)
            ev = res["eval"]
            mean = ev["mean_psnr"]
            sheet = out / "truth_vs_prediction.png"
            first = res["videos"][0]
            grid(_strip(Path(first["path"]), ev["context_frames"]),
                 f"{name}: held-out episode {first['episode']}, ground truth above, prediction below",
                 tile=96, label_width=110).save(sheet)
            raw = f" ({mean['model_raw']:.2f} dB before pixel compensation)" if "model_raw" in mean else ""
            detail = (f"{ev['clips']} held-out clips, horizons 1-{len(ev['horizons'])}: mean PSNR model "
                      f"{mean['model']:.2f} dB{raw}, copy-last-frame {mean['copy_last']:.2f} dB, tokenizer ceiling "
                      f"{mean['tokenizer']:.2f} dB (gain over copy {ev['psnr_gain_over_copy_db']:+.2f} dB)")
            files = [str(Path(f).relative_to(ctx.out)) for f in (sheet, res["plot"], *(v["path"] for v in res["videos"]))]
            ctx.results.append(StepResult("world models", name, True, time.perf_counter() - t0, detail, files))
            ctx.log(f"  ok      {name:<20} {detail}")
        except Exception as e:  # noqa: BLE001 - one model failing does not hide the other
            message = f"{type(e).__name__}: {e}".splitlines()[0]
            ctx.results.append(StepResult("world models", name, False, time.perf_counter() - t0, message))
            ctx.log(f"  FAILED  {name:<20} {message}")
            (ctx.out / "logs").mkdir(parents=True, exist_ok=True)
            (ctx.out / "logs" / f"world-model-{name}.txt").write_text(traceback.format_exc())


STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("sources", step_sources),
    ("world models", step_world_models),
]


def write_report(ctx: DemoContext) -> Path:
    rows = []
    for r in ctx.results:
        status = "ok" if r.ok else "FAILED"
        images = "".join(f'<br><img src="{html.escape(f)}" style="max-width:100%">' for f in r.files
                         if f.endswith((".png", ".gif")))
        images += "".join(f'<br><video src="{html.escape(f)}" controls loop width="384"></video>'
                          f' <a href="{html.escape(f)}">{html.escape(f)}</a>' for f in r.files if f.endswith(".mp4"))
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
