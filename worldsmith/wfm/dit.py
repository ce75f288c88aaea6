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

Speed (CPU, measured against diffusers' CosmosTransformer3DModel in benchmarks/diffusion.py): the GEMMs and the
flash attention are the floor; what is left is passes over the activations, so the blocks make fewer of them.
Modulation and gated residuals are single addcmul passes, the q/k projections are one fused Linear (k/v for the
text too), RoPE tables are cached per token grid and applied without a negation pass, an all-valid text mask is
dropped (SDPA's unmasked path), and at inference the QK-RMSNorm weights are folded into the RoPE tables and the
tanh GELU goes through a sigmoid (torch's CPU tanh kernel is slow); the presets use the exact GELU, faster still.
`tests/wfm/test_dit_fast_paths.py` holds these paths to a plain reference forward.
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
    # MLP activation: "exact" (erf) GELU or its "tanh" approximation. The presets use "exact": on CPU torch's erf
    # kernels run ~3x faster than its tanh ones (forward and backward). The field's default stays "tanh" so that
    # configs saved before the field existed (checkpoints/diffusion-robot-tiny) load with what they trained with.
    gelu: str = "tanh"


PRESETS: dict[str, dict] = {
    # ~2.2M parameters, 2x2 latent patches: the shipped CPU checkpoint (~1 s per batch of 8 clips on one core).
    "nano": dict(width=128, depth=6, heads=4, adaln_lora_rank=32, patch=2, gelu="exact"),
    # ~13M parameters: CPU experiments.
    "tiny": dict(width=256, depth=10, heads=4, adaln_lora_rank=64, gelu="exact"),
    # ~120M / ~650M: one GPU / torchrun.
    "small": dict(width=768, depth=12, heads=12, adaln_lora_rank=128, patch=2, gelu="exact"),
    "base": dict(width=1280, depth=24, heads=20, adaln_lora_rank=256, patch=2, gelu="exact"),
}
GELUS = ("exact", "tanh")


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
    """(N, head_dim/2) angles -> cos, sin tables (N, head_dim) for the rotate-half form."""
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1).to(dtype), torch.cat([sin, sin], dim=-1).to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) over the two halves of the last dim."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, angles: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate pairs (i, i + head_dim/2) of the last dim of x (..., N, head_dim) by angles (N, head_dim/2)
    (or by precomputed `rope_tables`): x cos + rotate_half(x) sin. The reference form; the blocks use
    `normed_rope`, which computes the same thing with the QK-norm weight folded into the tables."""
    cos, sin = rope_tables(angles, x.dtype) if torch.is_tensor(angles) else angles
    return x * cos + rotate_half(x) * sin


def signed_rope_tables(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, head_dim/2) angles -> (cos, s) tables (N, head_dim) with s = (-sin, sin): rotate_half(x) sin equals
    swap_halves(x) s, so the rotation needs no negation pass."""
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def swap_halves(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x2, x1], dim=-1)


def rope_signed(x: torch.Tensor, cos: torch.Tensor, ssin: torch.Tensor) -> torch.Tensor:
    """apply_rope with `signed_rope_tables`: x cos + swap_halves(x) s, in one copy, one multiply, one addcmul."""
    return torch.addcmul(x * cos, swap_halves(x), ssin)


def normed_rope_tables(cos: torch.Tensor, ssin: torch.Tensor, weight: torch.Tensor):
    """Fold an RMSNorm weight w (..., head_dim) into the signed RoPE tables (N, head_dim):
    rope(n * w) = n (w cos) + swap(n) (swap(w) s). Tables (N, ..., head_dim); computed per forward per block on
    N x head_dim numbers, instead of one more full pass over the (B, N, heads, head_dim) queries and keys."""
    shape = (cos.shape[0],) + (1,) * (weight.dim() - 1) + (cos.shape[-1],)
    return weight * cos.view(shape), swap_halves(weight) * ssin.view(shape)


def normed_rope(x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor], eps: float) -> torch.Tensor:
    """rope(RMSNorm(x) * w) with the tables of `normed_rope_tables`: rms_norm without weight, then `rope_signed`."""
    return rope_signed(F.rms_norm(x, (x.shape[-1],), eps=eps), *tables)


# Tanh-approximated GELU written with a sigmoid: 0.5 x (1 + tanh(u)) = x sigmoid(2u) since tanh(u) = 2 sigmoid(2u) - 1,
# with u = sqrt(2/pi) (x + 0.044715 x^3) (Hendrycks & Gimpel 2016). Same function as F.gelu(approximate="tanh")
# (to float rounding); on CPU torch's tanh kernel is several times slower than its sigmoid kernel.
_GELU_A = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_B = _GELU_A * 0.044715


def _gelu_gate(x: torch.Tensor) -> torch.Tensor:
    """sigmoid(2u) = sigmoid(x (A + B x^2)) in three passes over x (one addcmul, two in-place ops)."""
    return torch.addcmul(x.new_tensor(_GELU_A), x, x, value=_GELU_B).mul_(x).sigmoid_()


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """F.gelu(x, approximate="tanh"). Without autograd through the sigmoid identity (measured faster here); with
    autograd torch's own single-pass kernels (a hand-written backward needs several more passes over the MLP's
    hidden activations, which costs more than the tanh kernel saves)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return F.gelu(x, approximate="tanh")
    return _gelu_gate(x).mul_(x)


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

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """x (B, N, D); rope = (cos, sin) tables (N, head_dim)."""
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim)
        q, k, v = qkv.unbind(2)   # one unbind: its backward stacks the three grads (three selects would zero-fill)
        cos, ssin = (r.to(qkv.dtype) for r in rope)
        if torch.is_grad_enabled() and self.q_norm.weight.requires_grad:
            # Training: the fused RMSNorm kernels with their weights (whose backward reduces the weight gradient
            # efficiently), then RoPE with constant tables.
            cos, ssin = cos[:, None], ssin[:, None]
            q, k = rope_signed(self.q_norm(q), cos, ssin), rope_signed(self.k_norm(k), cos, ssin)
        else:
            # Inference: q and k normed and rotated together, (B, N, 2, heads, head_dim), the norm weights folded
            # into the tables (folding them costs a slow broadcast reduction in backward, hence not in training).
            w = torch.stack([self.q_norm.weight, self.k_norm.weight])[:, None].to(qkv.dtype)   # (2, 1, head_dim)
            q, k = normed_rope(qkv[:, :, :2], normed_rope_tables(cos, ssin, w), self.q_norm.eps).unbind(2)
        # (B, N, heads, hd) -> (B, heads, N, hd) as strided views: the CPU flash kernel reads strides, and its
        # output is laid out (B, N, heads, hd), so the transpose back below costs no copy either.
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
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

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, N, D); ctx (B, L, D); attn_mask (B, 1, 1, L) bool, or None when every text token is valid (None
        keeps SDPA on its unmasked path)."""
        B, N, D = x.shape
        L = ctx.shape[1]
        q = self.q_norm(self.q(x).view(B, N, self.heads, self.head_dim)).transpose(1, 2)
        k, v = self.kv(ctx).view(B, L, 2, self.heads, self.head_dim).unbind(2)
        k = self.k_norm(k).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k.to(q.dtype), v.transpose(1, 2).to(q.dtype), attn_mask=attn_mask)
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
        # `mlp[1]` is the GELU module of the config (documentation and state-dict layout); `forward` calls the
        # faster `gelu_tanh` in its place for the tanh form.
        self.tanh_gelu = cfg.gelu == "tanh"
        self.mlp = nn.Sequential(nn.Linear(D, hidden, bias=False),
                                 nn.GELU(approximate="tanh" if self.tanh_gelu else "none"),
                                 nn.Linear(hidden, D, bias=False))
        # AdaLN-LoRA: this block's low-rank correction to the shared modulation (9 = 3 sub-blocks x shift/scale/gate)
        self.ada_down = nn.Linear(D, cfg.adaln_lora_rank, bias=False)
        self.ada_up = nn.Linear(cfg.adaln_lora_rank, 9 * D, bias=False)
        nn.init.zeros_(self.ada_up.weight)

    def forward(self, x, emb, shared_mod, rope, text, text_mask):
        """x (B, T, S, D); emb (B, T, D) SiLU-activated; shared_mod (B, T, 9D); text_mask (B, 1, 1, L) or None."""
        B, T, S, D = x.shape
        mod = (shared_mod + self.ada_up(self.ada_down(emb)))[:, :, None]          # (B, T, 1, 9D)
        sh1, sc1, g1, sh2, sc2, g2, sh3, sc3, g3 = mod.chunk(9, dim=-1)
        # modulate: norm(x) (1 + scale) + shift, and the gated residual x + g y, each as one addcmul pass
        h = torch.addcmul(sh1, self.norm1(x), 1 + sc1)
        x = torch.addcmul(x, g1, self.attn(h.view(B, T * S, D), rope).view(B, T, S, D))
        h = torch.addcmul(sh2, self.norm2(x), 1 + sc2)
        x = torch.addcmul(x, g2, self.cross(h.view(B, T * S, D), text, text_mask).view(B, T, S, D))
        h = torch.addcmul(sh3, self.norm3(x), 1 + sc3)
        up, act, down = self.mlp
        u = up(h)
        return torch.addcmul(x, g3, down(gelu_tanh(u) if self.tanh_gelu else act(u)))


# ----------------------------------------------------------------------------------------------------------------
# the network

class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        if cfg.width % cfg.heads:
            raise ValueError(f"width {cfg.width} is not divisible by heads {cfg.heads}")
        if cfg.gelu not in GELUS:
            raise ValueError(f"unknown gelu {cfg.gelu!r} (have {GELUS})")
        self.cfg = cfg
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
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

    def _rope_tables(self, t: int, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed RoPE tables (`signed_rope_tables`) of a (t, h, w) token grid, built once per grid and device and
        then reused (they depend on nothing learned). Kept outside the state dict."""
        key = (t, h, w, str(device))
        if key not in self._rope_cache:
            cfg = self.cfg
            with torch.inference_mode(False), torch.no_grad():  # usable later by autograd whatever mode built them
                self._rope_cache[key] = signed_rope_tables(rope_angles(t, h, w, cfg.width // cfg.heads, cfg.rope_theta,
                                                                cfg.rope_split, device=device))
        return self._rope_cache[key]

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
        rope = self._rope_tables(T, h, w, x.device)
        # An all-valid text mask is dropped: SDPA without a mask takes its faster unmasked path, same result.
        attn_mask = None if bool(text_mask.all()) else text_mask[:, None, None, :].to(torch.bool)

        for block in self.blocks:
            tokens = block(tokens, emb, shared, rope, ctx, attn_mask)

        shift, scale = self.mod_out(emb)[:, :, None].chunk(2, dim=-1)
        out = self.patch_out(self.norm_out(tokens) * (1 + scale) + shift)         # (B, T, S, C*p*p)
        C = cfg.latent_channels
        return out.view(B, T, h, w, C, p, p).permute(0, 4, 1, 2, 5, 3, 6).reshape(B, C, T, H, W)
