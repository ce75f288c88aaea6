"""Diffusion transformer (DiT) on CV-tokenizer latents, after Cosmos (arXiv 2501.03575, Sec. 5.1).

The network is the raw F of EDM: it sees preconditioned latents plus a mask channel (1 on the given frames of
video2world) and the per-frame noise level c_noise, and returns F; `edm.py` wraps it into the denoiser D.

    latents (B, C+1, T, H, W) --patchify (1, p, p)--> tokens (B, T, S, D)
    per block:  x += g1 * SelfAttn(mod(norm x))        3D RoPE over (t, h, w), per-head RMSNorm on q and k
                x += g2 * CrossAttn(mod(norm x), text)  MiniLM token embeddings (384-d), projected to D
                x += g3 * MLP(mod(norm x))
    modulation (shift, scale, gate) per block and per latent frame: AdaLN-LoRA, i.e. a shared full-rank projection
    of the embedding plus a rank-r correction per block (Cosmos Sec. 5.1.1), which saves ~36% of the parameters
    of plain AdaLN at equal width.

The embedding that drives the modulation is per latent frame: noise level (frames given as context carry their
small augmentation noise level, generated frames the sampling one) + pooled text + an optional per-frame `cond`
vector (cond_dim > 0): the slot that action-, camera- and trajectory-conditioned post-training fills. Its
projection is zero-initialised, so adding it to a trained model leaves the model's output unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiTConfig:
    latent_channels: int = 16          # C of the CV tokenizer
    patch: int = 1                     # spatial patch (p x p) over latents; temporal patch is 1
    width: int = 256
    depth: int = 8
    heads: int = 4
    mlp_ratio: float = 4.0
    adaln_lora_rank: int = 64
    text_dim: int = 384                # all-MiniLM-L6-v2
    cond_dim: int = 0                  # per-frame conditioning vector (actions, camera, trajectory); 0 = none
    rope_theta: float = 10000.0
    rope_split: tuple[int, int, int] = field(default=(0, 0, 0))  # head-dim share of (t, h, w); zeros = auto


PRESETS: dict[str, dict] = {
    # ~2.2M parameters, 2x2 latent patches: the shipped CPU checkpoint (~1 s per batch of 8 clips on one core).
    "nano": dict(width=128, depth=6, heads=4, adaln_lora_rank=32, patch=2),
    # ~13M parameters: CPU experiments.
    "tiny": dict(width=256, depth=10, heads=4, adaln_lora_rank=64),
    # ~120M / ~650M: one GPU / torchrun.
    "small": dict(width=768, depth=12, heads=12, adaln_lora_rank=128, patch=2),
    "base": dict(width=1280, depth=24, heads=20, adaln_lora_rank=256, patch=2),
}


def dit_config(preset: str, **overrides) -> DiTConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown DiT preset {preset!r} (have {sorted(PRESETS)})")
    return DiTConfig(**{**PRESETS[preset], **overrides})


# ----------------------------------------------------------------------------------------------------------------
# 3D rotary position embedding

def rope_split(head_dim: int, split: tuple[int, int, int] = (0, 0, 0)) -> tuple[int, int, int]:
    """Share of the head dim rotated by (t, h, w) positions; each even. Auto: h and w get 3/8 each, t the rest."""
    if any(split):
        if sum(split) != head_dim or any(s % 2 for s in split):
            raise ValueError(f"rope_split {split} must be even parts summing to head_dim {head_dim}")
        return split
    hw = (head_dim * 3 // 8) // 2 * 2
    return head_dim - 2 * hw, hw, hw


def rope_angles(t: int, h: int, w: int, head_dim: int, theta: float, split=(0, 0, 0),
                offset: tuple[int, int, int] = (0, 0, 0), device=None) -> torch.Tensor:
    """(t*h*w, head_dim/2) rotation angles; position (i, j, k) rotates each axis' share of the pairs."""
    parts = rope_split(head_dim, split)
    grids = torch.meshgrid(torch.arange(t, device=device) + offset[0], torch.arange(h, device=device) + offset[1],
                           torch.arange(w, device=device) + offset[2], indexing="ij")
    angles = []
    for pos, dim in zip(grids, parts):
        if dim == 0:
            continue
        freqs = theta ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)
        angles.append(pos.reshape(-1, 1).double() * freqs)
    return torch.cat(angles, dim=-1).float()


def rope_tables(angles: torch.Tensor, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, head_dim/2) angles -> cos, sin tables (N, head_dim) for the rotate-half form, computed once per forward."""
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1).to(dtype), torch.cat([sin, sin], dim=-1).to(dtype)


def apply_rope(x: torch.Tensor, angles: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate pairs (i, i + head_dim/2) of the last dim of x (..., N, head_dim) by angles (N, head_dim/2)
    (or by precomputed `rope_tables`): x cos + rotate_half(x) sin, with rotate_half(x1, x2) = (-x2, x1)."""
    cos, sin = rope_tables(angles, x.dtype) if torch.is_tensor(angles) else angles
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


# ----------------------------------------------------------------------------------------------------------------
# building blocks

def timestep_features(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of c_noise = ln(sigma)/4 (EDM Table 1), (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c_noise.device, dtype=torch.float32) / half)
    args = (c_noise.float() * 250.0)[..., None] * freqs  # ln(sigma)/4 spans ~[-1.6, 1.1]; spread it out
    return torch.cat([args.cos(), args.sin()], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)  # per-head QK norm keeps logits bounded (Cosmos, SD3)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(self.q_norm(q), angles), apply_rope(self.k_norm(k), angles)
        y = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype))
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class CrossAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.q = nn.Linear(width, width, bias=False)
        self.kv = nn.Linear(width, 2 * width, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor | None) -> torch.Tensor:
        B, N, D = x.shape
        L = ctx.shape[1]
        q = self.q_norm(self.q(x).view(B, N, self.heads, self.head_dim).transpose(1, 2))
        k, v = self.kv(ctx).view(B, L, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k = self.k_norm(k)
        mask = None if ctx_mask is None else ctx_mask[:, None, None, :].to(torch.bool)
        y = F.scaled_dot_product_attention(q, k, v.to(q.dtype), attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        D = cfg.width
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(D, cfg.heads)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.cross = CrossAttention(D, cfg.heads)
        self.norm3 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        hidden = int(D * cfg.mlp_ratio)
        # No biases inside the blocks (as Cosmos): the modulation shifts already give every sub-block an offset.
        self.mlp = nn.Sequential(nn.Linear(D, hidden, bias=False), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, D, bias=False))
        # AdaLN-LoRA: this block's low-rank correction to the shared modulation (9 = 3 sub-blocks x shift/scale/gate)
        self.ada_down = nn.Linear(D, cfg.adaln_lora_rank, bias=False)
        self.ada_up = nn.Linear(cfg.adaln_lora_rank, 9 * D, bias=False)
        nn.init.zeros_(self.ada_up.weight)

    def forward(self, x, emb, shared_mod, angles, text, text_mask):
        """x (B, T, S, D); emb (B, T, D) SiLU-activated; shared_mod (B, T, 9D)."""
        B, T, S, D = x.shape
        mod = (shared_mod + self.ada_up(self.ada_down(emb)))[:, :, None]          # (B, T, 1, 9D)
        sh1, sc1, g1, sh2, sc2, g2, sh3, sc3, g3 = mod.chunk(9, dim=-1)
        h = self.norm1(x) * (1 + sc1) + sh1
        x = x + g1 * self.attn(h.reshape(B, T * S, D), angles).view(B, T, S, D)
        h = self.norm2(x) * (1 + sc2) + sh2
        x = x + g2 * self.cross(h.reshape(B, T * S, D), text, text_mask).view(B, T, S, D)
        h = self.norm3(x) * (1 + sc3) + sh3
        return x + g3 * self.mlp(h)


# ----------------------------------------------------------------------------------------------------------------
# the network

class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        if cfg.width % cfg.heads:
            raise ValueError(f"width {cfg.width} is not divisible by heads {cfg.heads}")
        self.cfg = cfg
        D, p = cfg.width, cfg.patch
        self.patch_in = nn.Linear((cfg.latent_channels + 1) * p * p, D)        # +1: the context-frame mask channel
        self.t_embed = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), nn.RMSNorm(D, eps=1e-6))
        self.text_pool = nn.Linear(cfg.text_dim, D)
        self.cond_proj = nn.Linear(cfg.cond_dim, D) if cfg.cond_dim > 0 else None
        if self.cond_proj is not None:
            nn.init.zeros_(self.cond_proj.weight)
            nn.init.zeros_(self.cond_proj.bias)
        self.shared_mod = nn.Linear(D, 9 * D)
        nn.init.zeros_(self.shared_mod.weight)
        nn.init.zeros_(self.shared_mod.bias)                                     # gates start at 0: blocks = identity
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.mod_out = nn.Linear(D, 2 * D)
        nn.init.zeros_(self.mod_out.weight)
        nn.init.zeros_(self.mod_out.bias)
        self.patch_out = nn.Linear(D, cfg.latent_channels * p * p)
        nn.init.zeros_(self.patch_out.weight)
        nn.init.zeros_(self.patch_out.bias)

    def fsdp_units(self):
        return list(self.blocks)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C+1, T, H, W) preconditioned latents + mask channel; c_noise (B, T) per latent frame;
        text (B, L, text_dim) token embeddings with text_mask (B, L) (None = no text); cond (B, T, cond_dim).
        Returns F (B, C, T, H, W)."""
        cfg, p = self.cfg, self.cfg.patch
        B, C1, T, H, W = x.shape
        if C1 != cfg.latent_channels + 1:
            raise ValueError(f"DiT expects {cfg.latent_channels}+1 channels, got {C1}")
        if H % p or W % p:
            raise ValueError(f"latent size {H}x{W} is not divisible by the patch {p}")
        h, w = H // p, W // p
        tokens = x.view(B, C1, T, h, p, w, p).permute(0, 2, 3, 5, 1, 4, 6).reshape(B, T, h * w, C1 * p * p)
        tokens = self.patch_in(tokens)

        emb = self.t_embed(timestep_features(c_noise, cfg.width))                 # (B, T, D)
        if text is None:
            text = torch.zeros(B, 1, cfg.text_dim, device=x.device, dtype=x.dtype)
            text_mask = torch.ones(B, 1, dtype=torch.bool, device=x.device)
        if text_mask is None:
            text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=x.device)
        m = text_mask.to(text.dtype)[..., None]
        pooled = (text * m).sum(1) / m.sum(1).clamp(min=1)
        emb = emb + self.text_pool(pooled)[:, None]
        if cond is not None:
            if self.cond_proj is None:
                raise ValueError("this DiT was built with cond_dim=0 and takes no per-frame cond")
            emb = emb + self.cond_proj(cond)
        emb = F.silu(emb)
        shared = self.shared_mod(emb)
        ctx = self.text_proj(text)
        angles = rope_tables(rope_angles(T, h, w, cfg.width // cfg.heads, cfg.rope_theta, cfg.rope_split,
                                         device=x.device))

        for block in self.blocks:
            tokens = block(tokens, emb, shared, angles, ctx, text_mask)

        shift, scale = self.mod_out(emb)[:, :, None].chunk(2, dim=-1)
        out = self.patch_out(self.norm_out(tokens) * (1 + scale) + shift)         # (B, T, S, C*p*p)
        C = cfg.latent_channels
        return out.view(B, T, h, w, C, p, p).permute(0, 4, 1, 2, 5, 3, 6).reshape(B, C, T, H, W)
