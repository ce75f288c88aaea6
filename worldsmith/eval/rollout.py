"""Rollout evaluation of world models on held-out episodes: PSNR and SSIM at each horizon 1..H frames after the
context, for the model, the copy-last-frame baseline, and the tokenizer round trip (the ceiling for any model
that works in its latent space). For a predictor with pixel-space compensation (`worldsmith.wfm.compensation`)
"model" is what it predicts, "model_raw" the same samples uncompensated, and "tokenizer_compensated" the round
trip compensated the same way (the ceiling of a compensated model).

Clips are windows of `context + horizon` frames (rounded up to 1 + k*s_t for the tokenizer) from the episodes of
the held-out splits (val and test of `ClipDataset`'s by-episode split), one window every `stride` frames.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from worldsmith.eval.metrics import by_horizon, psnr_per_frame, ssim_per_frame


def evaluate_rollout(predictor, roots: list[str], horizon: int = 16, splits=("val", "test"), stride: int | None = None,
                     max_clips: int | None = 32, batch_size: int = 8, seed: int = 0, size: int | None = None,
                     show_progress: bool = True, captions: bool = True, samples: int = 1) -> dict:
    """`captions`: condition each clip on its episode's task text, as video2world with text is used (the models
    train on captions, with dropout); False rolls out from frames alone. Clips are batched by caption.

    `samples` > 1 also scores "model_mean": the pixel mean of that many sampled rollouts per clip (compensated
    when the predictor is), a Monte-Carlo estimate of the conditional mean, the prediction that minimises
    expected squared error. It is blurrier than any one sample; "model" (one sample) stays the headline."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    from rich.progress import Progress

    from worldsmith.data.clips import ClipDataset

    c = predictor.context_frames
    st = getattr(predictor, "st", 4)
    length = 1 + st * math.ceil((c + horizon - 1) / st)
    size = size or getattr(predictor, "data", {}).get("size")
    clips = []
    for split in splits:
        ds = ClipDataset(roots, clip_frames=length, stride=stride or length, split=split, size=size, columns=[])
        clips += [ds[i] for i in range(len(ds))]
    if not clips:
        raise ValueError(f"{', '.join(map(str, roots))}: no held-out ({'/'.join(splits)}) clip of {length} frames")
    if max_clips is not None and len(clips) > max_clips:   # an even spread over the held-out episodes
        pick = torch.linspace(0, len(clips) - 1, max_clips).round().long().tolist()
        clips = [clips[i] for i in pick]
    compensated = hasattr(predictor, "predict_raw") and hasattr(predictor, "apply")
    draw = predictor.predict_raw if compensated else predictor.predict    # one uncompensated sample
    names = ("model", "copy_last", "tokenizer") + (("model_raw", "tokenizer_compensated") if compensated else ()) \
        + (("model_mean",) if samples > 1 else ())
    rows = {name: {"psnr": [], "ssim": []} for name in names}
    t_sample, n_sampled = 0.0, 0
    with Progress(disable=not show_progress) as progress:
        job = progress.add_task("rollout eval", total=len(clips))
        by_caption: dict[str, list[int]] = {}
        for i, it in enumerate(clips):
            by_caption.setdefault(it.get("task", "") if captions else "", []).append(i)
        batches = [(text, idx[b:b + batch_size]) for text, idx in by_caption.items()
                   for b in range(0, len(idx), batch_size)]
        for text, index in batches:
            batch = [clips[i] for i in index]
            b0 = index[0]
            video = torch.stack([it["video"] for it in batch]).permute(0, 2, 1, 3, 4)     # (B, 3, L, H, W)
            truth = video[:, :, c:c + horizon]
            t0 = time.perf_counter()
            raw = draw(video[:, :, :c], horizon, prompt=text or None, seed=seed + b0).float().cpu()
            pred = predictor.apply(raw, video[:, :, :c]).cpu() if compensated else raw
            t_sample += time.perf_counter() - t0
            n_sampled += pred.shape[0] * pred.shape[2]
            copy = video[:, :, c - 1:c].expand_as(truth)
            with torch.no_grad():
                recon = predictor.reconstruct(video).float().cpu()[:, :, c:c + horizon]
            guesses = [("model", pred), ("copy_last", copy), ("tokenizer", recon)]
            if samples > 1:
                more = [draw(video[:, :, :c], horizon, prompt=text or None, seed=seed + b0 + 100_003 * k).float().cpu()
                        for k in range(1, samples)]
                mean = torch.stack([raw, *more]).mean(0)
                guesses.append(("model_mean", predictor.apply(mean, video[:, :, :c]).cpu() if compensated else mean))
            if compensated:
                guesses += [("model_raw", raw), ("tokenizer_compensated", predictor.apply(recon, video[:, :, :c]).cpu())]
            for name, guess in guesses:
                rows[name]["psnr"].append(psnr_per_frame(guess, truth))
                rows[name]["ssim"].append(ssim_per_frame(guess, truth))
            progress.advance(job, len(batch))
    out = {"horizons": list(range(1, horizon + 1)), "context_frames": c, "clips": len(clips), "captions": captions,
           "episodes": len({(it["dataset"], it["episode_index"]) for it in clips}), "psnr": {}, "ssim": {},
           "mean_psnr": {}, "mean_ssim": {}}
    for name, r in rows.items():
        p, s = torch.cat(r["psnr"]), torch.cat(r["ssim"])
        out["psnr"][name], out["ssim"][name] = by_horizon(p), by_horizon(s)
        out["mean_psnr"][name] = round(float(p.mean()), 4)
        out["mean_ssim"][name] = round(float(s.mean()), 4)
    out["psnr_gain_over_copy_db"] = round(out["mean_psnr"]["model"] - out["mean_psnr"]["copy_last"], 4)
    out["compensation_tau"] = predictor.tau if compensated else None
    out["samples"] = samples
    if samples > 1:
        out["psnr_gain_over_copy_db_mean"] = round(out["mean_psnr"]["model_mean"] - out["mean_psnr"]["copy_last"], 4)
    out["sampling_fps"] = round(n_sampled / max(t_sample, 1e-9), 3)
    return out


def plot_psnr(result: dict, path: str | os.PathLike, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, style in (("model", "-o"), ("model_raw", "-x"), ("copy_last", "--"), ("tokenizer", ":")):
        if name not in result["psnr"]:
            continue
        ax.plot(result["horizons"], result["psnr"][name], style, label=name, ms=3)
    ax.set_xlabel("horizon (frames after the context)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    tmp = f"{path}.tmp{os.getpid()}.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


# The default held-out robot set of the benchmarks and the checkpoint READMEs: episodes of a seed no shipped model
# trained on (seed 1 is the training seed), so every episode is held out (roll out all splits).
HELDOUT_ROBOT = os.path.join("runs", "eval", "robot-s99")
HELDOUT_SPLITS = ("train", "val", "test")


def heldout_robot_set(repo_root: str | os.PathLike, episodes: int = 40, seed: int = 99) -> str:
    """Path of the default held-out robot set under `repo_root`, generated when absent, as
    `worldsmith data generate robot --out runs/eval/robot-s99 --episodes 40 --frames 33 --size 64 --seed 99`."""
    root = Path(repo_root) / HELDOUT_ROBOT
    if not root.exists():
        from worldsmith.data.lerobot import write_dataset
        from worldsmith.sources import generate

        print(f"making the held-out robot set {HELDOUT_ROBOT} ({episodes} episodes, seed {seed})")
        write_dataset(root, generate("robot", episodes, 33, size=64, seed=seed), fps=10)
    return str(root)
