"""Train the shipped `tiny` checkpoints in one go: CV and DV tokenizers, then the diffusion and AR world models.

This is the chain behind `checkpoints/*/README.md`. Each stage gets a wall-clock budget: a short probe run
measures steps/s on this machine, and the real run gets as many steps as fit the budget (so the same command
works on a 2-core CPU, with tiny budgets, and on a GPU). Results are exported into `checkpoints/`.

The world models condition on text. A machine without the all-MiniLM-L6-v2 package (a bare GPU box) can use
a text-embedding cache made beforehand on a machine that has it:

    python scripts/train_checkpoints.py --make-text-cache runs/gpu/text_cache.safetensors --data-root runs/gpu

A box without PyAV runs this through `scripts/run_without_pyav.py` (video reading by OpenCV).

Data: `--data-root` holds LeRobot datasets made by `worldsmith data generate` (robot, camera, physics, driving,
atari, videos): `scripts/chain_data.sh runs/gpu` makes them. The tokenizers train on all of them; the world models
on `robot`. On a GPU box (H200) the whole chain with these budgets takes under 10 minutes (run once, 2026-11-26,
with lr 1e-3 for the tokenizers, which diverged; the lr is 3e-4 now):

    python scripts/train_checkpoints.py --data-root runs/gpu --text-cache runs/gpu/text_cache.safetensors \
        --budget cv=160 --budget dv=95 --budget dit=90 --budget ar=75 --heldout runs/gpu/heldout/carphone_pristine.mp4 \
        --dit-set model.patch=1 --dit-set model.width=160 --dit-set model.depth=8 --dit-set model.heads=5 --pack OUT
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKENIZER_SOURCES = ["robot", "camera", "physics", "driving", "atari", "videos"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- text-embedding cache: sentence vectors (AR) and token embeddings (DiT) per task string ----

def dataset_tasks(roots: list[Path]) -> list[str]:
    from worldsmith.data.reader import LeRobotDataset

    tasks: list[str] = []
    for r in roots:
        tasks += LeRobotDataset(r).tasks
    return sorted(set(t for t in tasks if t))


def make_text_cache(path: Path, tasks: list[str]) -> None:
    from safetensors.torch import save_file

    from worldsmith.text import embed_texts
    from worldsmith.wfm.conditioning import _token_cache, text_tokens

    sent = torch.from_numpy(embed_texts(tasks))
    text_tokens(tasks)
    tensors = {f"sent.{i}": sent[i].contiguous() for i in range(len(tasks))}
    tensors.update({f"tok.{i}": torch.from_numpy(_token_cache[t]).contiguous() for i, t in enumerate(tasks)})
    save_file(tensors, str(path), metadata={"tasks": json.dumps(tasks)})
    log(f"text cache: {len(tasks)} task strings -> {path}")


def load_text_cache(path: Path) -> None:
    from safetensors import safe_open

    import worldsmith.text as text
    from worldsmith.wfm import conditioning

    with safe_open(str(path), "pt") as f:
        tasks = json.loads(f.metadata()["tasks"])
        for i, t in enumerate(tasks):
            text._cache[t] = f.get_tensor(f"sent.{i}").numpy()
            conditioning._token_cache[t] = f.get_tensor(f"tok.{i}").numpy()
    log(f"text cache: {len(tasks)} task strings loaded from {path}")


# ---- results that leave the machine: held-out scores in the log, checkpoints as tar parts ----

def heldout_eval(ckpt: Path, videos: list[Path]) -> None:
    from worldsmith.tokenizer.files import clips_from_videos, evaluate_clips
    from worldsmith.tokenizer.run import load_tokenizer

    if not videos:
        return
    model = load_tokenizer(ckpt)
    clips = clips_from_videos([str(v) for v in videos], 64, 113, model.config.spatial_compression)
    m = evaluate_clips(model, clips)
    log(f"held-out {[v.name for v in videos]} on {ckpt.name}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}")


def pack(ckpt: Path, dest: Path | None, part_bytes: int = 15 * 2**20) -> None:
    """Tar and gzip `ckpt` into `dest`/<name>.tgz, cut into parts under `part_bytes` when larger (`cat` joins them)."""
    import io
    import tarfile

    if dest is None:
        return
    dest.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(ckpt, arcname=ckpt.name)
    data = buf.getvalue()
    parts = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
    for i, part in enumerate(parts):
        name = f"{ckpt.name}.tgz" if len(parts) == 1 else f"{ckpt.name}.tgz.{i:02d}"
        (dest / name).write_bytes(part)
    log(f"packed {ckpt.name}: {len(data) / 2**20:.1f} MB in {len(parts)} part(s)")


# ---- budgeted training ----

def steps_per_s(run_dir: Path) -> float:
    rows = [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines() if l.strip()]
    rates = [r["steps_per_s"] for r in rows if r.get("steps_per_s")]
    return float(sum(rates[-2:]) / len(rates[-2:]))


def budget_steps(name: str, probe, budget_s: float, scratch: Path, lo: int, hi: int) -> int:
    d = scratch / f"probe-{name}"
    shutil.rmtree(d, ignore_errors=True)
    t = time.time()
    probe(d)
    rate = steps_per_s(d)
    steps = int(max(lo, min(hi, rate * budget_s)))
    log(f"{name}: probe {time.time() - t:.1f}s, {rate:.2f} steps/s -> {steps} steps for {budget_s:.0f}s")
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, required=True)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "chain")
    ap.add_argument("--text-cache", type=Path)
    ap.add_argument("--make-text-cache", type=Path)
    ap.add_argument("--budget", action="append", default=[], help="stage=seconds for cv, dv, dit, ar (0 skips)")
    ap.add_argument("--batch", type=int, default=32, help="world-model batch")
    ap.add_argument("--tok-batch", type=int, default=64, help="tokenizer batch")
    ap.add_argument("--heldout", type=Path, action="append", default=[],
                    help="video(s) to evaluate each tokenizer on after training (held-out footage)")
    ap.add_argument("--pack", type=Path, help="also tar each exported checkpoint into this folder (<=15 MB parts)")
    ap.add_argument("--dit-preset", default="nano")
    ap.add_argument("--dit-set", action="append", default=[], help="DiT overrides, e.g. model.patch=1")
    ap.add_argument("--tok-set", action="append", default=[], help="tokenizer overrides, e.g. train.lr=0.0003")
    ap.add_argument("--ar-preset", default="nano",
                    help="nano, the shipped size (tiny, 23 M, memorised its training episodes on a GPU and "
                         "generalised worse: checkpoints/ar-robot-tiny/README.md)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--ckpt-dir", type=Path, default=Path("checkpoints"), help="where to export (relative to the repo)")
    args = ap.parse_args()

    roots = [args.data_root / s for s in TOKENIZER_SOURCES if (args.data_root / s).exists()]
    robot = args.data_root / "robot"
    if args.make_text_cache:
        make_text_cache(args.make_text_cache, dataset_tasks([robot]))
        return
    if args.text_cache:
        load_text_cache(args.text_cache)

    budget = {"cv": 150.0, "dv": 90.0, "dit": 140.0, "ar": 100.0}
    for b in args.budget:
        k, v = b.split("=")
        budget[k] = float(v)
    precision = "bf16" if torch.cuda.is_available() else "fp32"
    log(f"device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}, precision {precision}")
    args.runs.mkdir(parents=True, exist_ok=True)
    torch.backends.cudnn.benchmark = True  # fixed clip shapes: let cuDNN pick its fastest convolutions once
    ckpt = args.ckpt_dir  # relative paths are stored in the world models' configs

    from worldsmith.tokenizer.run import export_checkpoint, open_clips, run_config as tok_config, train_tokenizer

    clips = {}  # one preloaded dataset for every tokenizer run (probe and real, CV and DV)

    def tok_stage(kind: str, init: Path | None) -> None:
        # Clips are preloaded into memory (data.preload), so the training process feeds the GPU by itself
        # (H200, batch 64, bf16: 14 steps/s). lr 1e-3 with batch 64 in bf16 diverged there at step ~250 (a grad-norm
        # spike of 444, then a plateau at 12 dB), and on an H100 lr 4e-4 with 200 warmup steps collapsed the same way
        # near step 400 (~14 dB after 2055 steps). The likely cause was the SSIM loss running as bf16 convolutions
        # under autocast (see docs/architecture.md); with it in fp32 this recipe (lr 3e-4, so not the collapsed run's
        # lr) ran on an H100 (2026-11-27, 10.5 steps/s) without a collapse, to the shipped CV. fp32 on the H200 ran
        # this tokenizer at 1.7 steps/s, 8x slower than bf16.
        common = [f"train.batch_size={args.tok_batch}", f"train.device={args.device}", f"train.precision={precision}",
                  "data.split=all", "train.lr=0.0003", "train.warmup_steps=300", "train.log_every=10",
                  "train.num_workers=0", *args.tok_set]

        def train(out: Path, steps: int, extra=()):
            cfg = tok_config(f"{kind}-4x8x8", [str(r) for r in roots], common + [f"train.steps={steps}", *extra])
            if "data" not in clips:
                t = time.time()
                clips["data"] = open_clips(cfg.data, cfg.model)
                log(f"tokenizer data: {len(clips['data'])} clips preloaded in {time.time() - t:.1f}s")
            warm = init if init is not None and (init / "ema.safetensors").exists() else None
            return train_tokenizer(cfg, out, show_progress=False, init_from=warm, data=clips["data"])

        steps = budget_steps(kind, lambda d: train(d, 30), budget[kind], args.runs, 50, 100000)
        out = args.runs / f"{kind}-4x8x8-tiny"
        shutil.rmtree(out, ignore_errors=True)
        m = train(out, steps, [f"train.ckpt_every={max(100, steps // 4)}"])
        export_checkpoint(out, ckpt / f"{kind}-4x8x8-tiny", "float16")
        log(f"{kind}: {steps} steps, last metrics {json.dumps({k: round(v, 4) for k, v in m.items()})}")
        heldout_eval(ckpt / f"{kind}-4x8x8-tiny", args.heldout)
        pack(ckpt / f"{kind}-4x8x8-tiny", args.pack)

    if budget["cv"] > 0:
        tok_stage("cv", None)
    if budget["dv"] > 0:
        tok_stage("dv", args.runs / "cv-4x8x8-tiny")

    if budget["dit"] > 0:
        guarded("dit", lambda: dit_stage(args, budget, robot, ckpt, precision))
    if budget["ar"] > 0:
        guarded("ar", lambda: ar_stage(args, budget, robot, ckpt, precision))


def guarded(name: str, stage) -> None:
    """A world-model stage that fails is logged and the next one still runs (the tokenizers came first)."""
    import traceback

    try:
        stage()
    except Exception:
        log(f"{name}: FAILED\n{traceback.format_exc()}")


def dit_stage(args, budget, robot: Path, ckpt: Path, precision: str) -> None:
    from worldsmith.train.diffusion import run_config as dit_config, train_diffusion

    def dit(out: Path, steps: int):
        cfg = dit_config(args.dit_preset, [str(robot)], str(ckpt / "cv-4x8x8-tiny"),
                         [f"train.batch_size={args.batch}", f"train.device={args.device}",
                          f"train.precision={precision}", "train.log_every=10",
                          f"train.ckpt_every={max(100, steps // 4)}", *args.dit_set], steps=steps)
        return train_diffusion(cfg, out, show_progress=False)

    budgeted_world_model("dit", dit, budget["dit"], args.runs / "diffusion-robot-tiny", ckpt, args.pack)


def ar_stage(args, budget, robot: Path, ckpt: Path, precision: str) -> None:
    from worldsmith.wfm.ar_train import train_ar_command

    def ar(out: Path, steps: int):
        return train_ar_command(args.ar_preset, [str(robot)], str(ckpt / "dv-4x8x8-tiny"), str(out), steps, args.batch,
                                1e-3, precision, args.device, 0, ["train.log_every=10"], None)

    budgeted_world_model("ar", ar, budget["ar"], args.runs / "ar-robot-tiny", ckpt, args.pack)


def budgeted_world_model(name: str, train, budget_s: float, out: Path, ckpt: Path, pack_dir: Path | None) -> None:
    """Probe `train(out, steps)`'s rate, train as many steps as fit `budget_s`, export fp16 into `ckpt`/<out name>."""
    from worldsmith.train.trainer import export_run

    steps = budget_steps(name, lambda d: train(d, 30), budget_s, out.parent, 50, 100000)
    shutil.rmtree(out, ignore_errors=True)
    m = train(out, steps)
    export_run(out, ckpt / out.name, half=True)
    log(f"{name}: {steps} steps, last metrics {json.dumps({k: round(v, 4) for k, v in m.items()})}")
    pack(ckpt / out.name, pack_dir)


if __name__ == "__main__":
    main()
    # A bare GPU box has no language model: this says whether the text cache covered every caption.
    log(f"language model loaded: {'sentence_transformers' in sys.modules}")
