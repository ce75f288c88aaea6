"""A tiny regression model and dataset that the trainer tests drive in-process and as subprocesses.

Run as a script (`python tests/train/_trainer_toy.py OUT --steps N ...`) it trains one run, so that a test can kill it
with SIGKILL or launch it under torch.distributed.run.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from worldsmith.train.trainer import Trainer, TrainConfig


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n: int = 24):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 6, generator=g)
        self.y = torch.sin(self.x @ torch.randn(6, 3, generator=g))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i], "name": f"s{i}"}


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)


def make_loss(sleep: float = 0.0):
    def loss_fn(model, batch, step):
        # Input noise drawn from the global RNG: resume and DDP parity must reproduce it too.
        x = batch["x"] + 0.1 * torch.randn_like(batch["x"])
        loss = (model(x).float() - batch["y"]).pow(2).mean()
        if sleep:
            time.sleep(sleep)
        return loss, {"abs_y": float(batch["y"].abs().mean())}
    return loss_fn


def run(out, sleep: float = 0.0, stop_after=None, **cfg_kw):
    cfg = TrainConfig(**{"steps": 12, "batch_size": 4, "lr": 1e-2, "warmup_steps": 3, "log_every": 1,
                         "ckpt_every": 4, "ema_decay": 0.9, "precision": "bf16", **cfg_kw})
    t = Trainer(ToyModel(), make_loss(sleep), ToyData(), cfg, out, {"kind": "toy"}, show_progress=False)
    t.fit(stop_after=stop_after)
    return t


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--ckpt-every", type=int, default=4)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--parallel", default="ddp")
    ap.add_argument("--sleep", type=float, default=0.0)
    a = ap.parse_args()
    run(a.out, sleep=a.sleep, steps=a.steps, grad_accum=a.grad_accum, batch_size=a.batch_size,
        ckpt_every=a.ckpt_every, precision=a.precision, parallel=a.parallel)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
