"""LoRA adapters on nn.Linear layers (Hu et al. 2021, arXiv 2106.09685), for post-training.

y = W x + b + (alpha / r) * B A x, with A (r, in) random and B (out, r) zero at init, so a freshly adapted model
computes exactly what the base model did. Only A and B train; `merge_lora` folds B A into W for inference and
`unmerge_lora` takes it back out.

    n = apply_lora(model, rank=8, alpha=16, targets=("qkv", "proj"))   # wraps matching Linear layers
    ... train (the Trainer optimises only parameters with requires_grad) ...
    save_file(lora_state_dict(model), "lora.safetensors")
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        self.rank, self.scale = rank, alpha / rank
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=dev, dtype=dt))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=dev, dtype=dt))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # same init as nn.Linear's weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        for p in self.base.parameters():
            p.requires_grad_(False)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # modules that read `.weight` (e.g. dtype checks) keep working
        return self.base.weight

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_b @ self.lora_a) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:
            return y
        return y + (self.dropout(x) @ self.lora_a.t().to(x.dtype)) @ self.lora_b.t().to(x.dtype) * self.scale

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0, targets: Iterable[str] | None = None,
               dropout: float = 0.0, freeze_rest: bool = True) -> int:
    """Wrap every nn.Linear whose qualified name contains one of `targets` (all when None); returns how many.

    With freeze_rest, every other parameter stops requiring grad, so only the adapters train."""
    targets = tuple(targets) if targets is not None else None
    if freeze_rest:
        for p in model.parameters():
            p.requires_grad_(False)
    wrapped = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and (targets is None or any(t in full for t in targets)):
                setattr(module, child_name, LoRALinear(child, rank, alpha, dropout))
                wrapped += 1
    if wrapped == 0:
        raise ValueError(f"apply_lora: no nn.Linear matched targets {targets}")
    return wrapped


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    for m in lora_layers(model):
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in lora_layers(model):
        m.unmerge()


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (small enough to ship apart from the base checkpoint)."""
    return {k: v for k, v in model.state_dict().items() if ".lora_a" in k or ".lora_b" in k}
