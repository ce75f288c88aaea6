"""One training loop for every worldsmith model (tokenizers, diffusion, autoregressive).

Models never import the trainer: the trainer drives any `nn.Module` through a loss function

    loss_fn(model, batch, step) -> (loss: Tensor scalar, metrics: dict[str, float])

and writes a run directory (DESIGN.md):

    config.json               the model config (JSON-able dict with a "kind": "tokenizer" | "diffusion" | "ar" ...)
    train.json                the TrainConfig below
    model.safetensors         raw weights            (safetensors metadata {"step": "<k>"})
    ema.safetensors           exponential moving average of the weights (use these for inference)
    train_state.safetensors   optimizer tensors (AdamW moments)
    train_state.json          step, optimizer scalars, RNG states, data position
    log.jsonl                 one JSON line per logged step; loss.png plots it

Every file is written to a temp name and renamed; `train_state.json` is renamed last and every file carries the
step, so a resume that finds files from two different checkpoints says so instead of training on a mix.

Determinism. The sample order is a pure function of (seed, step): epoch e visits `randperm(N, seed + e)`, and
step s consumes the next `batch_size * grad_accum * world_size` positions. Before each micro-batch the torch,
numpy and python RNGs are seeded from (seed, step, global micro index), so noise drawn inside `loss_fn` does not
depend on where a run was interrupted, nor on how the same global batch is split between processes and
accumulation steps: 2 processes x accum 1 see exactly the samples and noise of 1 process x accum 2.
Consequently a run resumed from a checkpoint reproduces the uninterrupted loss curve bit-exactly on CPU.

Distributed. Under `torchrun` (WORLD_SIZE > 1) each process computes gradients on its share of the global batch
and the gradients are averaged with one flat all-reduce before clipping (gloo on CPU, nccl on GPU). This is
DDP's arithmetic without DDP's wrapper, so `loss_fn` may call any method of the model (`model.encode`, ...).
`parallel="fsdp"` instead shards parameters, gradients and optimizer state with FSDP2 `fully_shard` over the
modules `model.fsdp_units()` returns (or the direct children holding parameters); then `loss_fn` must run the
forward pass through `model(...)` and checkpoints gather full state dicts on rank 0.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from worldsmith.config import from_dict, save_json, to_dict


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 2              # per process and per micro-batch
    lr: float = 3e-4
    weight_decay: float = 0.01       # applied to matrices only (dim >= 2), not to norms and biases
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100          # linear warmup, then cosine down to min_lr_ratio * lr
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0           # max global grad norm; 0 disables
    grad_accum: int = 1
    ema_decay: float = 0.999         # 0 disables the EMA (ema.safetensors then equals the weights)
    precision: str = "bf16"          # "bf16" autocast (CPU and GPU) or "fp32"
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    device: str = "auto"             # "auto" = cuda when available, else cpu
    num_workers: int = 0             # DataLoader workers; 0 loads in the training process
    parallel: str = "ddp"            # with WORLD_SIZE > 1: "ddp" (gradient all-reduce) or "fsdp" (FSDP2 sharding)


class CheckpointError(RuntimeError):
    """A run directory whose checkpoint files are missing, inconsistent or unreadable."""


# ----------------------------------------------------------------------------------------------------------------
# small pure helpers

def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr_ratio * lr."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def sample_indices(n: int, seed: int, start: int, count: int) -> list[int]:
    """Positions [start, start+count) of the endless stream epoch0-perm ++ epoch1-perm ++ ... over n samples."""
    out: list[int] = []
    perms: dict[int, torch.Tensor] = {}
    for q in range(start, start + count):
        epoch, i = divmod(q, n)
        if epoch not in perms:
            g = torch.Generator().manual_seed(seed * 100_003 + epoch)
            perms[epoch] = torch.randperm(n, generator=g)
        out.append(int(perms[epoch][i]))
    return out


def seed_micro(seed: int, step: int, micro: int) -> None:
    """Seed torch/numpy/python RNGs for one micro-batch from (seed, step, global micro index)."""
    s = (seed * 1_000_003 + step * 7919 + micro * 104_729) % (2**31 - 1)
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)


def to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def default_collate(items: list) -> Any:
    """Stack tensors/arrays/numbers, keep strings (e.g. a "task" caption) as lists."""
    first = items[0]
    if isinstance(first, dict):
        return {k: default_collate([it[k] for it in items]) for k in first}
    if torch.is_tensor(first):
        return torch.stack(items)
    if isinstance(first, np.ndarray):
        return torch.from_numpy(np.stack(items))
    if isinstance(first, (int, float, bool)) and not isinstance(first, str):
        return torch.tensor(items)
    return list(items)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


# ----------------------------------------------------------------------------------------------------------------
# checkpoint files

def _save_tensors_atomic(tensors: dict[str, torch.Tensor], path: Path, step: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"step": str(step)})
    os.replace(tmp, path)


def _file_step(path: Path) -> int:
    with safe_open(str(path), framework="pt") as f:
        return int((f.metadata() or {}).get("step", -1))


def save_checkpoint(out_dir: str | os.PathLike, step: int, weights: dict[str, torch.Tensor],
                    ema: dict[str, torch.Tensor], opt_tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Write one checkpoint; the slow serialisation happens under temp names, the renames last."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _save_tensors_atomic(weights, out / "model.safetensors", step)
    _save_tensors_atomic(ema, out / "ema.safetensors", step)
    _save_tensors_atomic(opt_tensors, out / "train_state.safetensors", step)
    save_json({**state, "step": step}, out / "train_state.json")


def read_run_config(run_dir: str | os.PathLike) -> dict:
    """The model config (config.json) of a run directory, with its "kind"."""
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: no such file (is {run_dir} a run directory?)") from e
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e.msg})") from e


def resumed_run_config(out_dir: str | os.PathLike, model: dict, error: type[Exception] = CheckpointError) -> dict | None:
    """The config.json of the run in `out_dir` that a training command is about to resume (None: a new run).
    A run whose model config differs from `model` (the command's, as saved) is refused with `error`, before
    any weight is loaded into a model of the wrong shape."""
    path = Path(out_dir) / "config.json"
    if not path.exists():
        return None
    saved = read_run_config(out_dir)
    if saved.get("model") != model:
        preset = saved.get("preset") or (saved.get("model") or {}).get("preset")
        held = f"preset {preset!r} with a different model config" if preset else "a different model config"
        raise error(f"{path}: the run holds {held}; resume with the same preset and --set, or use a new --out")
    return saved


def load_weights(run_dir: str | os.PathLike, model: nn.Module, ema: bool = True, strict: bool = True) -> int:
    """Load ema.safetensors (or model.safetensors) of a run into `model`; returns the checkpoint's step."""
    run = Path(run_dir)
    path = run / ("ema.safetensors" if ema else "model.safetensors")
    if ema and not path.exists():
        path = run / "model.safetensors"
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (was {run} trained?)")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a damaged file
        raise CheckpointError(f"{path}: unreadable safetensors file ({e})") from e
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise CheckpointError(f"{path}: does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return _file_step(path)


def plot_log(log_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if all(r["loss"] > 0 for r in rows):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(png_path.parent.name)
    fig.tight_layout()
    tmp = png_path.with_name(f".{png_path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)


# ----------------------------------------------------------------------------------------------------------------
# the trainer

class Trainer:
    def __init__(self, model: nn.Module, loss_fn: Callable, train_data: torch.utils.data.Dataset,
                 cfg: TrainConfig, out_dir: str | os.PathLike, model_config: dict,
                 collate_fn: Callable | None = None, eval_fn: Callable | None = None,
                 show_progress: bool = True):
        """eval_fn(model, step) -> dict of metrics, run on rank 0 at each checkpoint with the EMA weights."""
        if "kind" not in model_config:
            raise ValueError("model_config must include a 'kind' (e.g. 'tokenizer', 'diffusion', 'ar')")
        if len(train_data) == 0:
            raise ValueError("train_data is empty")
        self.cfg, self.loss_fn, self.data = cfg, loss_fn, train_data
        self.collate = collate_fn or default_collate
        self.eval_fn, self.show_progress = eval_fn, show_progress
        self.out = Path(out_dir)
        self.model_config = model_config

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if cfg.device == "auto":
            self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(cfg.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

        self.model = model.to(self.device)
        self.fsdp = self.world > 1 and cfg.parallel == "fsdp"
        if self.fsdp:
            self._shard_fsdp()
        self.trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the model has no trainable parameters")
        decay = [p for n, p in self.trainable if p.dim() >= 2]
        no_decay = [p for n, p in self.trainable if p.dim() < 2]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=tuple(cfg.betas), fused=False, foreach=False)
        # EMA of every float parameter and buffer, kept in fp32 on the device (under FSDP: on the local shards).
        self.ema = {k: v.detach().clone().float() for k, v in self.model.state_dict().items() if v.is_floating_point()}
        self.step = 0
        self._loader = None
        self._last_plot = time.time()
        self.last_metrics: dict = {}

    # -- distributed helpers -------------------------------------------------------------------------------------
    def _shard_fsdp(self) -> None:
        from torch.distributed.fsdp import fully_shard

        units = list(self.model.fsdp_units()) if hasattr(self.model, "fsdp_units") else [
            m for m in self.model.children() if any(True for _ in m.parameters())]
        for m in units:
            fully_shard(m)
        fully_shard(self.model)

    def _full_state(self) -> dict[str, torch.Tensor]:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return self.model.state_dict()

    def _allreduce_grads(self) -> None:
        grads = [p.grad for _, p in self.trainable if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def _mean_across_ranks(self, values: dict[str, float]) -> dict[str, float]:
        if self.world == 1 or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def _barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def _opt_tensors_and_scalars(self) -> tuple[dict[str, torch.Tensor], dict]:
        sd = self.opt.state_dict()
        tensors, scalars = {}, {}
        for pid, st in sd["state"].items():
            for key, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"{pid}.{key}"] = val
                else:
                    scalars[f"{pid}.{key}"] = val
        return tensors, {"scalars": scalars, "param_groups": sd["param_groups"]}

    def save(self) -> None:
        if self.fsdp:
            return self._save_fsdp()
        opt_tensors, opt_meta = self._opt_tensors_and_scalars()
        if self.rank == 0:
            ema = self.ema if self.cfg.ema_decay > 0 else {k: v.float() for k, v in self.model.state_dict().items()
                                                            if v.is_floating_point()}
            save_checkpoint(self.out, self.step, self.model.state_dict(), ema, opt_tensors, {
                "optimizer": opt_meta, "rng": _rng_state(),
                "data": {"samples_seen": self.step * self._global_batch(), "dataset_len": len(self.data)},
                "world_size": self.world, "time": time.time()})
            self._maybe_plot()
        self._barrier()

    def _maybe_plot(self) -> None:
        # matplotlib costs ~1 s: plot at the end, and at checkpoints at most once a minute.
        log = self.out / "log.jsonl"
        if log.exists() and (self.step >= self.cfg.steps or time.time() - self._last_plot > 60):
            plot_log(log, self.out / "loss.png")
            self._last_plot = time.time()

    def _save_fsdp(self) -> None:
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_optimizer_state_dict)

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        weights = self._full_state()
        osd = get_optimizer_state_dict(self.model, self.opt, options=opts)
        ema_full = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in self.ema.items()}
        if self.rank == 0:
            tensors = {f"{name}.{k}": v for name, st in osd["state"].items() for k, v in st.items() if torch.is_tensor(v)}
            save_checkpoint(self.out, self.step, weights, ema_full, tensors, {
                "optimizer": {"param_groups": osd["param_groups"], "fsdp": True}, "rng": _rng_state(),
                "data": {"samples_seen": self.step * self._global_batch(), "dataset_len": len(self.data)},
                "world_size": self.world, "time": time.time()})
            self._maybe_plot()
        self._barrier()

    def try_resume(self) -> bool:
        """Load the run's last checkpoint if there is one; True when resumed."""
        state_path = self.out / "train_state.json"
        if not state_path.exists():
            return False
        try:
            state = json.loads(state_path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{state_path}: not valid JSON ({e.msg})") from e
        step = int(state["step"])
        for name in ("model.safetensors", "ema.safetensors", "train_state.safetensors"):
            p = self.out / name
            if not p.exists():
                raise CheckpointError(f"{p}: missing, cannot resume step {step}")
            if _file_step(p) != step:
                raise CheckpointError(f"{p}: holds step {_file_step(p)} but train_state.json says {step}")
        weights = load_file(str(self.out / "model.safetensors"), device=str(self.device))
        opt_tensors = load_file(str(self.out / "train_state.safetensors"), device=str(self.device))
        ema = load_file(str(self.out / "ema.safetensors"), device=str(self.device))
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                                 set_optimizer_state_dict)

            opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
            set_model_state_dict(self.model, weights, options=opts)
            osd: dict = {"state": {}, "param_groups": state["optimizer"]["param_groups"]}
            for key, v in opt_tensors.items():
                name, k = key.rsplit(".", 1)
                osd["state"].setdefault(name, {})[k] = v
            set_optimizer_state_dict(self.model, self.opt, osd, options=opts)
        else:
            self.model.load_state_dict(weights)
            osd = {"state": {}, "param_groups": state["optimizer"]["param_groups"]}
            for key, v in opt_tensors.items():
                pid, k = key.split(".", 1)
                osd["state"].setdefault(int(pid), {})[k] = v
            for key, v in state["optimizer"]["scalars"].items():
                pid, k = key.split(".", 1)
                osd["state"].setdefault(int(pid), {})[k] = v
            self.opt.load_state_dict(osd)
        if self.fsdp:  # re-shard the full EMA like the live parameters
            from torch.distributed.tensor import distribute_tensor

            live = self.model.state_dict()
            ema = {k: distribute_tensor(v.float(), live[k].device_mesh, live[k].placements)
                   if hasattr(live[k], "device_mesh") else v.float() for k, v in ema.items()}
        self.ema = {k: v.float() for k, v in ema.items()}
        _set_rng_state(state["rng"])
        self.step = step
        self._truncate_log(step)
        return True

    def _truncate_log(self, step: int) -> None:
        """Steps logged after the checkpoint are recomputed on resume: drop them so the curve stays continuous."""
        log = self.out / "log.jsonl"
        if self.rank != 0 or not log.exists():
            return
        keep = [line for line in log.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        tmp = log.with_name(f".{log.name}.tmp{os.getpid()}")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, log)

    # -- the loop ------------------------------------------------------------------------------------------------
    def _global_batch(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum * self.world

    def _micro_indices(self, step: int, micro: int) -> tuple[int, list[int]]:
        """(global micro index, dataset indices) for this rank's micro-batch `micro` of optimizer step `step`."""
        g = micro * self.world + self.rank
        start = step * self._global_batch() + g * self.cfg.batch_size
        return g, sample_indices(len(self.data), self.cfg.seed, start, self.cfg.batch_size)

    def _batches(self, step: int):
        """Yield (global micro index, batch) for one optimizer step."""
        for m in range(self.cfg.grad_accum):
            g, idx = self._micro_indices(step, m)
            seed_micro(self.cfg.seed, step, g)
            if self._loader is None:
                yield g, self.collate([self.data[i] for i in idx])
            else:
                yield g, next(self._loader)

    def _make_loader(self):
        if self.cfg.num_workers <= 0:
            return None
        trainer = self

        class _StepSampler(torch.utils.data.Sampler):
            def __iter__(self):
                for s in range(trainer.step, trainer.cfg.steps):
                    for m in range(trainer.cfg.grad_accum):
                        yield trainer._micro_indices(s, m)[1]

            def __len__(self):
                return (trainer.cfg.steps - trainer.step) * trainer.cfg.grad_accum

        loader = torch.utils.data.DataLoader(self.data, batch_sampler=_StepSampler(), num_workers=self.cfg.num_workers,
                                             collate_fn=self.collate, pin_memory=self.device.type == "cuda",
                                             worker_init_fn=_seed_worker)
        return iter(loader)

    def _update_ema(self) -> None:
        if self.cfg.ema_decay <= 0:
            return
        # Warm the EMA up (decay grows from ~0.1 to cfg.ema_decay) so short runs are not dominated by the init.
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if k in self.ema:
                    self.ema[k].lerp_(v.detach().to(self.ema[k].device, torch.float32), 1 - d)

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        raise ValueError(f"precision {self.cfg.precision!r}: expected 'bf16' or 'fp32'")

    def train_step(self) -> dict:
        cfg = self.cfg
        lr = lr_at(self.step, cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for _, batch in self._batches(self.step):
            batch = to_device(batch, self.device)
            with self._autocast():
                loss, metrics = self.loss_fn(self.model, batch, self.step)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.out}: loss is {loss.item()} at step {self.step}")
            (loss / cfg.grad_accum).backward()
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) / cfg.grad_accum
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) / cfg.grad_accum
        if self.world > 1 and not self.fsdp:
            self._allreduce_grads()
        params = [p for _, p in self.trainable]
        if cfg.grad_clip > 0:
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        else:
            gnorm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
        self.opt.step()
        self.step += 1
        self._update_ema()
        out = self._mean_across_ranks(sums)
        out.update(lr=lr, grad_norm=gnorm)
        return out

    def fit(self, stop_after: int | None = None) -> dict:
        """Train to cfg.steps (resuming if the run dir holds a checkpoint). `stop_after` ends the process's work
        after that many total steps without a final checkpoint, as a preemption would (used by tests)."""
        cfg = self.cfg
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            save_json(self.model_config, self.out / "config.json")
            save_json(to_dict(cfg), self.out / "train.json")
        self._barrier()
        resumed = self.try_resume()
        if not resumed:
            self._truncate_log(0)   # a run killed before its first checkpoint starts its curve afresh
        self._loader = self._make_loader()
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        log_path = self.out / "log.jsonl"
        progress = _progress(self.show_progress and self.rank == 0)
        t_last, steps_since = time.perf_counter(), 0
        with progress:
            task = progress.add_task(f"train {self.out.name}", total=cfg.steps, completed=self.step, loss=float("nan"),
                                     rate=0.0)
            if resumed and self.rank == 0:
                progress.console.log(f"resumed {self.out} at step {self.step}")
            while self.step < end:
                metrics = self.train_step()
                steps_since += 1
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    rate = steps_since / max(now - t_last, 1e-9)
                    t_last, steps_since = now, 0
                    row = {"step": self.step, **{k: round(v, 8) if k != "loss" else v for k, v in metrics.items()},
                           "steps_per_s": round(rate, 4),
                           "samples_per_s": round(rate * self._global_batch(), 3)}
                    if self.rank == 0:
                        with open(log_path, "a") as f:
                            f.write(json.dumps(row) + "\n")
                    progress.update(task, loss=metrics["loss"], rate=rate)
                progress.update(task, completed=self.step)
                self.last_metrics = metrics
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save()
                    if self.eval_fn is not None and self.rank == 0 and not self.fsdp:
                        self._run_eval(log_path)
        self._barrier()
        return self.last_metrics

    def _run_eval(self, log_path: Path) -> None:
        # Evaluate the EMA weights, then put the raw weights back, leaving the RNG state untouched.
        rng = _rng_state()
        raw = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict({**raw, **{k: v.to(raw[k].dtype) for k, v in self.ema.items()}})
        self.model.eval()
        with torch.no_grad():
            metrics = self.eval_fn(self.model, self.step) or {}
        self.model.load_state_dict(raw)
        _set_rng_state(rng)
        with open(log_path, "a") as f:
            f.write(json.dumps({"step": self.step, **{f"eval/{k}": v for k, v in metrics.items()}}) + "\n")


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % (2**32)
    np.random.seed(s)
    random.seed(s)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.2f} step/s"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False)


def load_train_config(run_dir: str | os.PathLike) -> TrainConfig:
    data = json.loads((Path(run_dir) / "train.json").read_text())
    return from_dict(TrainConfig, data)


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, half: bool = True, dtype: str | None = None,
               metadata: dict | None = None) -> Path:
    """Copy a run's inference files (config.json, train.json, log.jsonl, loss.png, EMA weights as `dtype`, default
    float16 when `half` else float32) to a small shippable folder; written beside `out_dir` and renamed into place.
    Files already in `out_dir` that the export does not write (a hand-written README) are kept."""
    import shutil

    run, out = Path(run_dir), Path(out_dir)
    src = run / "ema.safetensors"
    if not src.exists():
        raise CheckpointError(f"{src}: no such file (was {run} trained?)")
    step = _file_step(src)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "train.json", "log.jsonl", "loss.png"):
        if (run / name).exists():
            shutil.copy2(run / name, tmp / name)
    want = getattr(torch, dtype or ("float16" if half else "float32"))
    weights = {k: (v.to(want) if v.is_floating_point() else v).contiguous() for k, v in load_file(str(src)).items()}
    save_file(weights, str(tmp / "ema.safetensors"), metadata={"step": str(step), **(metadata or {})})
    os.chmod(tmp / "ema.safetensors", 0o644)  # safetensors writes 0600; a shipped checkpoint is world-readable
    keep = [p for p in out.iterdir() if p.name not in {x.name for x in tmp.iterdir()}] if out.exists() else []
    for p in keep:   # e.g. a README written by hand
        shutil.copy2(p, tmp / p.name)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
