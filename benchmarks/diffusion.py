"""Diffusion world model benchmark: our DiT vs diffusers' CosmosTransformer3DModel, and rollout quality.

    .venv/bin/python benchmarks/diffusion.py --quick     # ends within about a minute
    .venv/bin/python benchmarks/diffusion.py             # more repeats, deeper networks, more held-out clips
    python benchmarks/diffusion.py --device cuda --precision bf16 --no-rollout   # the speed part on a GPU
                                                         # (-> benchmarks/results/diffusion_cuda.json)

1. Training-step time (forward + backward + AdamW, fp32, batch 2) and sampling-step time (one denoiser forward,
   no grad) of `worldsmith.wfm.dit.DiT` and `diffusers.CosmosTransformer3DModel` at the same width, depth, heads,
   MLP ratio, AdaLN-LoRA rank, patch (1, 2, 2), text length and token count, in this process, interleaved
   (ABBA...) so that load from other processes hits both alike; the median wall time is reported, and the
   median thread CPU time beside it. diffusers gets `concat_padding_mask=False` (its default needs torchvision),
   our mask channel as an input channel, one timestep per sample (cheaper than our per-frame modulation), and no
   attention mask. Ours runs with the presets' exact GELU; the tanh-GELU variant (older checkpoints') is
   timed beside it.
2. Rollout on held-out robot episodes with the shipped checkpoint (checkpoints/diffusion-robot-tiny):
   5 context frames, 16 predicted (two windows), PSNR/SSIM by horizon vs copy-last-frame and the tokenizer's
   own round trip; sampling speed in generated frames per second (decode included). The predictor's default
   starting-noise temperature (0.2, picked on robot seed 7); the full run also scores temperature 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worldsmith.config import save_json  # noqa: E402
from worldsmith.eval.rollout import heldout_robot_set  # noqa: E402
from worldsmith.wfm.dit import DiT, DiTConfig  # noqa: E402

CKPT = ROOT / "checkpoints" / "diffusion-robot-tiny"


def _ours(cfg: DiTConfig):
    net = DiT(cfg)

    def fwd(x, c_noise, text, mask):
        return net(x, c_noise, text=text, text_mask=mask)
    return net, fwd


def _diffusers(cfg: DiTConfig, latent_shape):
    from diffusers import CosmosTransformer3DModel

    T, H, W = latent_shape
    net = CosmosTransformer3DModel(
        in_channels=cfg.latent_channels + 1, out_channels=cfg.latent_channels, num_attention_heads=cfg.heads,
        attention_head_dim=cfg.width // cfg.heads, num_layers=cfg.depth, mlp_ratio=cfg.mlp_ratio,
        text_embed_dim=cfg.text_dim, adaln_lora_dim=cfg.adaln_lora_rank, max_size=(T, H, W),
        patch_size=(1, cfg.patch, cfg.patch), concat_padding_mask=False)

    # No attention mask: every text token is valid here (ours drops an all-valid mask the same way).
    def fwd(x, c_noise, text, mask):
        return net(x, c_noise[:, 0] * 1000, encoder_hidden_states=text, return_dict=False)[0]
    return net, fwd


def time_models(cfg: DiTConfig, latent_shape, batch: int, repeats: int, device: str = "cpu",
                precision: str = "fp32") -> dict:
    """Median wall time (and thread CPU time, steadier when other processes share the cores) of a training step
    and a sampling step per model. Models take turns within each round, in reversed order every other round
    (ABBA...), so that neither always runs right after the other; round 0 is warm-up. On a GPU each timing
    waits for the device (torch.cuda.synchronize) before reading the clock; "bf16" runs both under autocast."""
    torch.manual_seed(0)
    T, H, W = latent_shape
    dev = torch.device(device)
    x = torch.randn(batch, cfg.latent_channels + 1, T, H, W, device=dev)
    c_noise = torch.rand(batch, T, device=dev)
    text = torch.randn(batch, 16, cfg.text_dim, device=dev)
    mask = torch.ones(batch, 16, dtype=torch.bool, device=dev)
    target = torch.randn(batch, cfg.latent_channels, T, H, W, device=dev)
    models = {"ours": _ours(cfg), "diffusers": _diffusers(cfg, latent_shape)}
    if cfg.gelu != "tanh":   # also the GELU form of the shipped checkpoint, so both numbers are on record
        models["ours_tanh_gelu"] = _ours(dataclasses.replace(cfg, gelu="tanh"))
    for net, _ in models.values():
        net.to(dev)
    opts = {k: torch.optim.AdamW(m[0].parameters(), lr=1e-4) for k, m in models.items()}
    times = {k: {"train": [], "sample": [], "train_cpu": [], "sample_cpu": []} for k in models}
    order = list(models)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    for r in range(repeats + 1):
        for name in (order if r % 2 == 0 else order[::-1]):
            net, fwd = models[name]
            net.train()
            sync()
            t0, c0 = time.perf_counter(), time.thread_time()
            with autocast:
                loss = (fwd(x, c_noise, text, mask).float() - target).pow(2).mean()
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            sync()
            t1, c1 = time.perf_counter(), time.thread_time()
            net.eval()
            with torch.no_grad(), autocast:
                fwd(x, c_noise, text, mask)
            sync()
            t2, c2 = time.perf_counter(), time.thread_time()
            if r:
                for key, v in (("train", t1 - t0), ("sample", t2 - t1), ("train_cpu", c1 - c0),
                               ("sample_cpu", c2 - c1)):
                    times[name][key].append(v)
    out = {"tokens": T * (H // cfg.patch) * (W // cfg.patch), "batch": batch, "width": cfg.width, "depth": cfg.depth,
           "heads": cfg.heads, "gelu": cfg.gelu, "repeats": repeats, "device": device, "precision": precision}
    for name, (net, _) in models.items():
        med = {k: round(statistics.median(v), 4) for k, v in times[name].items()}
        out[name] = {"params": sum(p.numel() for p in net.parameters()),
                     "train_step_s": med["train"], "sampling_step_s": med["sample"],
                     "train_step_cpu_s": med["train_cpu"], "sampling_step_cpu_s": med["sample_cpu"]}
    out["train_speed_ratio"] = round(out["diffusers"]["train_step_s"] / out["ours"]["train_step_s"], 3)
    out["sampling_speed_ratio"] = round(out["diffusers"]["sampling_step_s"] / out["ours"]["sampling_step_s"], 3)
    out["train_cpu_ratio"] = round(out["diffusers"]["train_step_cpu_s"] / out["ours"]["train_step_cpu_s"], 3)
    out["sampling_cpu_ratio"] = round(out["diffusers"]["sampling_step_cpu_s"] / out["ours"]["sampling_step_cpu_s"],
                                      3)
    return out


def rollout_quality(data: str, max_clips: int, steps: int, temperature: float | None = None) -> dict | None:
    """`evaluate_rollout` of the shipped checkpoint as `worldsmith eval rollout` runs it: pixel compensation on
    (its default tau), captions on, the predictor's default starting-noise temperature unless one is given."""
    if not (CKPT / "config.json").exists() or not Path(data).exists():
        return None
    from worldsmith.eval.rollout import HELDOUT_SPLITS, evaluate_rollout
    from worldsmith.predict import load_predictor

    kw = {} if temperature is None else {"temperature": temperature}
    p = load_predictor(CKPT, steps=steps, **kw)
    res = evaluate_rollout(p, [data], horizon=16, max_clips=max_clips, show_progress=False, splits=HELDOUT_SPLITS)
    res["temperature"] = getattr(p, "inner", p).temperature   # p: the compensating wrapper around the predictor
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Fewer repeats and clips: ends within about a minute.")
    ap.add_argument("--data", default=None,
                    help="Robot dataset rolled out, every episode (default: runs/eval/robot-s99, seed-99 episodes no "
                         "model trained on; made when absent).")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared machine).")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the speed part; results then go to "
                    "benchmarks/results/diffusion_<device>.json and the CPU file is left alone)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 autocast for both models")
    ap.add_argument("--no-rollout", action="store_true", help="only the speed part")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: torch sees no CUDA device on this machine")
    # The tiny preset's width/heads (and its exact GELU) at 2x2 patches of 128x128 video's 5x16x16 latents.
    cfg = DiTConfig(latent_channels=16, width=256, heads=4, depth=4 if args.quick else 10, adaln_lora_rank=64,
                    patch=2, gelu="exact")
    t0 = time.time()
    on_cpu = args.device == "cpu"
    repeats = (5 if args.quick else 15) * (1 if on_cpu else 10)  # a GPU step takes milliseconds: more rounds
    speed = time_models(cfg, (5, 16, 16), batch=2, repeats=repeats, device=args.device, precision=args.precision)
    quality = full_temperature = None
    if not args.no_rollout:
        data = args.data or heldout_robot_set(ROOT)
        quality = rollout_quality(data, max_clips=24 if args.quick else 40, steps=12)
        # The full run also scores temperature 1 (samples of the model's own distribution), for the record.
        full_temperature = None if args.quick else rollout_quality(data, max_clips=40, steps=12, temperature=1.0)
    print(f"{'':24}{'ours':>12}{'diffusers':>12}{'ratio':>8}")
    print(f"{'params':24}{speed['ours']['params']:>12,}{speed['diffusers']['params']:>12,}")
    print(f"{'train step (s)':24}{speed['ours']['train_step_s']:>12.4f}{speed['diffusers']['train_step_s']:>12.4f}"
          f"{speed['train_speed_ratio']:>8.2f}")
    print(f"{'sampling step (s)':24}{speed['ours']['sampling_step_s']:>12.4f}"
          f"{speed['diffusers']['sampling_step_s']:>12.4f}{speed['sampling_speed_ratio']:>8.2f}")
    print(f"{'train step, CPU (s)':24}{speed['ours']['train_step_cpu_s']:>12.4f}"
          f"{speed['diffusers']['train_step_cpu_s']:>12.4f}{speed['train_cpu_ratio']:>8.2f}")
    print(f"{'sampling step, CPU (s)':24}{speed['ours']['sampling_step_cpu_s']:>12.4f}"
          f"{speed['diffusers']['sampling_step_cpu_s']:>12.4f}{speed['sampling_cpu_ratio']:>8.2f}")
    if "ours_tanh_gelu" in speed:
        o = speed["ours_tanh_gelu"]
        print(f"  ours with tanh GELU (older checkpoints'): train {o['train_step_s']:.4f} s "
              f"({speed['diffusers']['train_step_s'] / o['train_step_s']:.2f}x), sampling {o['sampling_step_s']:.4f} s "
              f"({speed['diffusers']['sampling_step_s'] / o['sampling_step_s']:.2f}x)")
    where = f"{args.threads} thread(s)" if on_cpu else torch.cuda.get_device_name(args.device)
    print(f"  width {cfg.width}, depth {cfg.depth}, heads {cfg.heads}, {speed['tokens']} tokens, batch 2, "
          f"{args.precision}, {where}, median of {speed['repeats']} interleaved rounds")
    headline = {"step_speed_ratio_vs_diffusers": speed["train_speed_ratio"],
                "sampling_step_speed_ratio_vs_diffusers": speed["sampling_speed_ratio"],
                "psnr_gain_over_copy_db": None, "sampling_fps": None}
    if quality:
        m = quality["mean_psnr"]
        print(f"\nrollout, {quality['clips']} held-out clips ({quality['episodes']} episodes), horizons 1-16:")
        print(f"  PSNR model {m['model']:.2f} dB | copy-last {m['copy_last']:.2f} dB | tokenizer ceiling "
              f"{m['tokenizer']:.2f} dB | gain {quality['psnr_gain_over_copy_db']:+.2f} dB")
        if "model_raw" in m:
            print(f"  before pixel compensation (tau {quality['compensation_tau']}): model {m['model_raw']:.2f} dB "
                  f"({m['model_raw'] - m['copy_last']:+.2f} dB); compensated ceiling {m['tokenizer_compensated']:.2f} dB")
        print("  by horizon (model):     " + " ".join(f"{v:.1f}" for v in quality["psnr"]["model"]))
        print("  by horizon (copy-last): " + " ".join(f"{v:.1f}" for v in quality["psnr"]["copy_last"]))
        print(f"  sampling {quality['sampling_fps']:.2f} frames/s (decode included), starting-noise temperature "
              f"{quality['temperature']}")
        if full_temperature:
            print(f"  at temperature 1 (the model's own distribution): gain "
                  f"{full_temperature['psnr_gain_over_copy_db']:+.2f} dB")
        headline.update(psnr_gain_over_copy_db=quality["psnr_gain_over_copy_db"],
                        sampling_fps=quality["sampling_fps"])
    elif not args.no_rollout:
        print(f"\nrollout: skipped ({CKPT} or {data} missing)")
    result = {"headline": headline, "speed": speed, "rollout": quality, "rollout_temperature_1": full_temperature,
              "quick": args.quick,
              "threads": args.threads, "seconds": round(time.time() - t0, 1),
              "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}"
                         + ("" if on_cpu else f", {torch.cuda.get_device_name(args.device)}")}
    out = ROOT / "benchmarks" / "results" / ("diffusion.json" if on_cpu else f"diffusion_{args.device.split(':')[0]}.json")
    save_json(result, out)
    print(f"\nheadline: {json.dumps(headline)}  -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
