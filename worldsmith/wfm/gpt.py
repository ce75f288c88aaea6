"""Autoregressive world model: a decoder-only (Llama-style) transformer over DV token ids.

A video's DV tokens form a grid (T latent frames, H, W). They are read in raster order (t, then h, then w)
and the model predicts each token from all earlier ones, like a language model (Cosmos-Predict1 AR,
arXiv 2501.03575 §5.2). Building blocks: RMSNorm (Zhang & Sennrich 2019), SwiGLU (Shazeer 2020),
grouped-query attention (Ainslie et al. 2023), per-head RMSNorm on queries and keys (QK-norm,
Dehghani et al. 2023), 3D rotary position embedding over (t, h, w) (Su et al. 2021, extended per axis),
optional cross-attention to text embeddings (384-d all-MiniLM-L6-v2) and a start-of-video token.

Input layout. The input at sequence index i is the *previous* token (index 0 holds the start-of-video
token) and it sits at the grid position of the token it predicts, x_i. So position ids are exactly the
(t, h, w) grid in raster order, and a per-frame conditioning vector for frame t (action, camera,
trajectory: the slot post-training uses) is added to every input whose target lies in frame t.

Vocabulary. An FSQ token id is a mixed-radix number whose digits are per-channel level indices
(levels [8, 8, 8, 5, 5, 5] -> 64,000 ids). With `head="digits"` (default) the token embedding is the sum of
six digit embeddings (39 rows instead of 64,000) and the output is six digit softmaxes whose product is
the token distribution: a valid distribution over all 64,000 ids that assumes the FSQ channels are
conditionally independent given the context. `head="full"` keeps a 64k-row table and softmax, tied between
input and output (that saves 64k x dim parameters). The digit head is not tied: it would save only 39 x dim
parameters, and in a short CPU run the tied, small-norm table learnt markedly slower.

Copy prior. Consecutive latent frames of a mostly static scene share most tokens, so the logits get a
learnt bonus (one scalar per digit group, initialised to `copy_prior`) on the digits of the token at the
same (h, w) one latent frame earlier. The model then starts from "copy the last frame" and learns the
changes: on a CPU budget of a few hundred steps that is the difference between noise and a usable rollout.
The previous-frame ids are a function of earlier tokens only (causality holds), passed in as `prev_ids`.

Logits come out as (B, L, G, K): G digit groups of K = max(levels) classes (padded with -inf), or G=1,
K=vocab for the full head. Sampling code treats both the same way (see ar_sampling.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from worldsmith.wfm.kv_cache import KVCache


@dataclass
class GPTConfig:
    levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])   # FSQ levels of the DV tokenizer
    head: str = "digits"            # "digits" (factorised FSQ digits, tied) or "full" (64k table, tied)
    dim: int = 512
    depth: int = 7
    heads: int = 8
    kv_heads: int = 4               # grouped-query attention: `heads` query heads share `kv_heads` K/V heads
    mlp_ratio: float = 8 / 3        # SwiGLU hidden = mlp_ratio * dim, rounded up to a multiple of 64
    text_dim: int = 384             # cross-attention to text embeddings; 0 disables it
    cross_attn_every: int = 2       # cross-attention in every k-th block (the last block of each group)
    cond_dim: int = 0               # per-latent-frame conditioning vector (actions, camera, ...); 0 disables
    copy_prior: float = 2.0         # initial logit bonus for the previous frame's token at (t-1, h, w); 0 disables
    rope_base: float = 10000.0
    grid: list[int] = field(default_factory=lambda: [5, 8, 8])  # (T, H, W) latent grid of a training clip
    dropout: float = 0.0
    norm_eps: float = 1e-6

    @property
    def vocab_size(self) -> int:
        return math.prod(self.levels)

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[1] * self.grid[2]


PRESETS: dict[str, GPTConfig] = {
    # CPU: 64x64 clips of 17 frames -> dv-4x8x8 grid (5, 8, 8); ~5.4M parameters, trainable on a laptop CPU in
    # about two hours (the shipped checkpoints/ar-robot-tiny).
    "nano": GPTConfig(dim=256, depth=6, heads=4, kv_heads=2),
    # the same grid, ~23M parameters: a GPU-minute's training, real-time decoding on 2 cores.
    "tiny": GPTConfig(),
    # one GPU: 128x128, 33 frames -> (9, 16, 16)
    "small": GPTConfig(dim=768, depth=12, heads=12, kv_heads=4, grid=[9, 16, 16]),
    # GPUs: 256x256, 33 frames -> (9, 32, 32); the full 64k head once there is compute for it
    "base": GPTConfig(dim=1024, depth=24, heads=16, kv_heads=8, head="full", grid=[9, 32, 32]),
}


def preset_config(name: str, **overrides) -> GPTConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown AR preset {name!r} (have {sorted(PRESETS)})")
    return replace(PRESETS[name], **overrides)


def grid_positions(t: int, h: int, w: int, t0: int = 0, device=None) -> torch.Tensor:
    """(t*h*w, 3) int64 (t, h, w) coordinates in raster order, frames starting at t0."""
    tt, hh, ww = torch.meshgrid(torch.arange(t0, t0 + t, device=device), torch.arange(h, device=device),
                                torch.arange(w, device=device), indexing="ij")
    return torch.stack([tt, hh, ww], dim=-1).reshape(-1, 3)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class Rope3D(nn.Module):
    """Rotary embedding with the head's frequency pairs split over the t, h and w axes.

    Each axis gets its own geometric ladder of frequencies (base^(-j/n_axis)), so the score between a query
    at p and a key at p' depends only on p - p' per axis: relative in time and in both image directions.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        pairs = head_dim // 2
        n_hw = pairs // 3
        self.split = (pairs - 2 * n_hw, n_hw, n_hw)      # time gets the remainder
        freqs = [base ** (-torch.arange(n, dtype=torch.float64) / max(n, 1)) for n in self.split]
        self.register_buffer("inv_freq", torch.cat(freqs).float(), persistent=False)
        axis = torch.cat([torch.full((n,), a) for a, n in enumerate(self.split)])
        self.register_buffer("axis", axis, persistent=False)

    def angles(self, pos: torch.Tensor) -> torch.Tensor:
        """(L, 3) positions -> (L, head_dim/2) rotation angles."""
        return pos.float()[:, self.axis] * self.inv_freq

    def cos_sin(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ang = self.angles(pos)
        return ang.cos(), ang.sin()

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: (B, heads, L, head_dim); rotate (x1, x2) half-pairs by the angles."""
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    def tables(self, pos: torch.Tensor, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, 3) positions -> full-width (L, 1, head_dim) tables (cos|cos, -sin|sin) for `rotate_full`:
        computed once per forward (or once per rollout window) instead of per layer."""
        cos, sin = self.cos_sin(pos)
        return (torch.cat([cos, cos], -1)[:, None].to(dtype).contiguous(),
                torch.cat([-sin, sin], -1)[:, None].to(dtype).contiguous())

    @staticmethod
    def rotate_full(x: torch.Tensor, cos2: torch.Tensor, sin2: torch.Tensor) -> torch.Tensor:
        """The same rotation as `rotate` for x (B, L, heads, head_dim): x * (cos|cos) + (x2|x1) * (-sin|sin),
        with the half swap as one roll (3 ops instead of 8)."""
        return torch.addcmul(x * cos2, x.roll(x.shape[-1] // 2, -1), sin2)


class SelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.dim % cfg.heads or cfg.heads % cfg.kv_heads:
            raise ValueError(f"dim {cfg.dim} / heads {cfg.heads} / kv_heads {cfg.kv_heads} do not divide")
        self.heads, self.kv_heads, self.hd = cfg.heads, cfg.kv_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.dim, (cfg.heads + 2 * cfg.kv_heads) * self.hd, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.q_norm = RMSNorm(self.hd, cfg.norm_eps)
        self.k_norm = RMSNorm(self.hd, cfg.norm_eps)
        self.dropout = cfg.dropout

    def forward(self, x, rope, cache: KVCache | None, layer: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """rope: (cos2, sin2) tables of `Rope3D.tables`; mask: the (L, cache) boolean mask of a block of new
        queries against the cache (built once per forward by the caller; None for one query or no cache)."""
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, -1, self.hd)
        nqk = self.heads + self.kv_heads
        # queries and keys are adjacent heads of the qkv output: one RMSNorm over both, then each side's
        # weight, then one rotation (same arithmetic as q_norm(q), k_norm(k); one norm call per layer fewer)
        w = torch.cat([self.q_norm.weight.expand(self.heads, -1), self.k_norm.weight.expand(self.kv_heads, -1)])
        qk = F.rms_norm(qkv[:, :, :nqk], (self.hd,), None, self.q_norm.eps) * w
        q, k = Rope3D.rotate_full(qk, *rope).transpose(1, 2).split([self.heads, self.kv_heads], dim=1)
        v = qkv[:, :, nqk:].transpose(1, 2)
        if cache is None:
            causal = True
        else:
            k, v = cache.update(layer, k, v)
            causal = False          # one new query sees the whole cache; a block of them uses `mask`
        # query heads share K/V heads inside SDPA (no copy of the cache per step)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0,
                                           enable_gqa=self.kv_heads != self.heads)
        return self.proj(y.transpose(1, 2).reshape(b, n, -1))


class CrossAttention(nn.Module):
    """Queries from the video tokens, keys/values from text embeddings (no positions on the text side)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.heads, self.hd = cfg.heads, cfg.head_dim
        self.q = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.kv = nn.Linear(cfg.text_dim, 2 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.q_norm = RMSNorm(self.hd, cfg.norm_eps)
        self.k_norm = RMSNorm(self.hd, cfg.norm_eps)
        nn.init.zeros_(self.proj.weight)      # starts as identity of the residual stream

    def text_kv(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(K, V, constant): with one text vector (a sentence embedding) the softmax over a single key is 1
        and the block's output is proj(V) whatever the query, so it is computed here once per sequence
        (exact) and Block adds it without the norm, the query and the projection at every step."""
        b, m, _ = text.shape
        k, v = self.kv(text).view(b, m, 2, self.heads, self.hd).unbind(2)
        k, v = self.k_norm(k).transpose(1, 2), v.transpose(1, 2)
        const = self.proj(v.transpose(1, 2).reshape(b, 1, -1)) if m == 1 else None
        return k, v, const

    def forward(self, x, kv: tuple) -> torch.Tensor:
        b, n, _ = x.shape
        if kv[1].shape[2] == 1:
            # one text vector: the constant of `text_kv` (kept here for callers that pass only (K, V))
            return self.proj(kv[1].transpose(1, 2).reshape(b, 1, -1)).expand(b, n, -1)
        q = self.q_norm(self.q(x).view(b, n, self.heads, self.hd)).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(y.transpose(1, 2).reshape(b, n, -1))


class SwiGLU(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        hidden = 64 * math.ceil(cfg.mlp_ratio * cfg.dim / 64)
        self.gate_up = nn.Linear(cfg.dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, cfg.dim, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, cross: bool):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = SelfAttention(cfg)
        self.cross_norm = RMSNorm(cfg.dim, cfg.norm_eps) if cross else None
        self.cross = CrossAttention(cfg) if cross else None
        self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, rope, cache, layer, text_kv, mask=None):
        x = x + self.attn(self.attn_norm(x), rope, cache, layer, mask)
        if self.cross is not None:
            kv = text_kv[layer]
            const = kv[2] if len(kv) > 2 else None   # see CrossAttention.text_kv
            x = x + (const if const is not None else self.cross(self.cross_norm(x), kv))
        return x + self.mlp(self.mlp_norm(x))


class TokenCodec(nn.Module):
    """Token ids <-> (embedding, logits). Digit mode follows the FSQ mixed radix: id = sum_g d_g * basis_g."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.mode = cfg.head
        if cfg.head == "digits":
            levels = list(cfg.levels)
        elif cfg.head == "full":
            levels = [cfg.vocab_size]
        else:
            raise ValueError(f"GPTConfig.head must be 'digits' or 'full', got {cfg.head!r}")
        self.levels = levels
        self.k = max(levels)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1]), 0)
        offsets = torch.cumsum(torch.tensor([0] + levels[:-1]), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("levels_t", torch.tensor(levels), persistent=False)
        self.register_buffer("offsets", offsets, persistent=False)
        # column g*K + j of the padded logits reads table row offsets[g] + j (or -inf beyond levels[g])
        gather = torch.zeros(len(levels), self.k, dtype=torch.long)
        valid = torch.zeros(len(levels), self.k, dtype=torch.bool)
        for g, n in enumerate(levels):
            gather[g, :n] = offsets[g] + torch.arange(n)
            valid[g, :n] = True
        self.register_buffer("gather", gather, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self.table = nn.Embedding(sum(levels), cfg.dim)
        nn.init.normal_(self.table.weight, std=0.02)
        self.sov = nn.Parameter(torch.randn(cfg.dim) * 0.02)   # start-of-video input
        self.out_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        # digits: an untied (sum(levels) x dim) output table; full: the input table itself (tied)
        self.out_table = nn.Parameter(torch.randn(sum(levels), cfg.dim) * 0.02) if cfg.head == "digits" else None
        self.copy_gain = nn.Parameter(torch.full((len(levels),), float(cfg.copy_prior))) if cfg.copy_prior else None

    def digits(self, ids: torch.Tensor) -> torch.Tensor:
        """(...,) ids -> (..., G) digits."""
        return (ids.unsqueeze(-1) // self.basis) % self.levels_t

    def ids(self, digits: torch.Tensor) -> torch.Tensor:
        return (digits * self.basis).sum(-1)

    def embed(self, ids: torch.Tensor, sov: torch.Tensor | None) -> torch.Tensor:
        """ids (B, L) with `sov` (B, L) bool marking start-of-video inputs (None: none) -> (B, L, dim)."""
        rows = self.digits(ids.clamp(min=0)) + self.offsets
        e = self.table(rows).sum(-2)
        if sov is None:
            return e
        return torch.where(sov.unsqueeze(-1), self.sov.to(e.dtype), e)

    def logits(self, h: torch.Tensor, prev_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, dim) -> (B, L, G, K), classes beyond a digit's level set to -inf. prev_ids (B, L): the
        token one latent frame before each target (-1: none), which gets the copy-prior bonus."""
        table = self.out_table if self.out_table is not None else self.table.weight
        flat = F.linear(self.out_norm(h), table)                               # (B, L, sum(levels))
        out = flat[..., self.gather]                                            # (B, L, G, K)
        if self.copy_gain is not None and prev_ids is not None:
            has = (prev_ids >= 0).unsqueeze(-1).to(out.dtype)                   # (B, L, 1)
            onehot = F.one_hot(self.digits(prev_ids.clamp(min=0)), self.k).to(out.dtype)   # (B, L, G, K)
            out = out + onehot * (self.copy_gain.to(out.dtype)[:, None] * has.unsqueeze(-1))
        return out.masked_fill(~self.valid, float("-inf"))

    def nll(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Per-token negative log-likelihood in nats: the sum of the digit cross-entropies."""
        d = self.digits(ids)
        logp = logits.float().log_softmax(-1)
        return -logp.gather(-1, d.unsqueeze(-1)).squeeze(-1).sum(-1)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.codec = TokenCodec(cfg)
        self.rope = Rope3D(cfg.head_dim, cfg.rope_base)
        every = cfg.cross_attn_every
        self.cross_layers = [i for i in range(cfg.depth) if cfg.text_dim and every and (i + 1) % every == 0]
        self.blocks = nn.ModuleList(Block(cfg, i in self.cross_layers) for i in range(cfg.depth))
        if cfg.text_dim:
            self.null_text = nn.Parameter(torch.zeros(1, 1, cfg.text_dim))   # "no prompt" (and CFG dropout)
        if cfg.cond_dim:
            self.cond_proj = nn.Linear(cfg.cond_dim, cfg.dim)
            nn.init.zeros_(self.cond_proj.weight)
            nn.init.zeros_(self.cond_proj.bias)
        self._init_weights()

    def _init_weights(self):
        std = 0.02
        for name, p in self.named_parameters():
            if p.ndim == 2 and "codec" not in name and "cross.proj" not in name and "cond_proj" not in name:
                nn.init.normal_(p, std=std)
            if name.endswith("attn.proj.weight") or name.endswith("mlp.down.weight"):
                nn.init.normal_(p, std=std / math.sqrt(2 * self.cfg.depth))   # GPT-2 residual scaling

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - sum(p.numel() for name, p in self.codec.named_parameters() if "table" in name) if non_embedding else n

    # ---- conditioning ----
    def text_kv(self, text: torch.Tensor | None, batch: int) -> dict[int, tuple]:
        """Per cross-attention layer (K, V) of the text; computed once per sequence and reused by the cache."""
        if not self.cross_layers:
            return {}
        if text is None:
            text = self.null_text.expand(batch, 1, -1)
        elif text.ndim == 2:
            text = text[:, None]
        text = text.to(self.null_text.dtype)
        return {i: self.blocks[i].cross.text_kv(text) for i in self.cross_layers}

    # ---- forward ----
    def forward(self, inputs: torch.Tensor, pos: torch.Tensor, *, sov: torch.Tensor | None = None,
                text: torch.Tensor | None = None, cond: torch.Tensor | None = None,
                cache: KVCache | None = None, text_kv: dict | None = None,
                prev_ids: torch.Tensor | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """inputs (B, L) token ids (the previous token of each target); pos (L, 3) target grid positions;
        sov (B, L) bool, True where the input is the start-of-video token (default: index 0 when the
        sequence starts fresh); text (B, 384) or (B, M, 384); cond (B, T, cond_dim) per latent frame.
        prev_ids (B, L): the token one latent frame before each target, -1 where there is none (see
        `previous_frame_ids`); without it the copy prior is off.
        With a cache, the new K/V are appended and only the new positions are computed.
        rope: `self.rope.tables(pos)` when the caller has them already (a rollout computes them once).
        Returns logits (B, L, G, K)."""
        b, n = inputs.shape
        if sov is None:
            x = self.codec.embed(inputs, None)
            if cache is None or cache.length == 0:
                x[:, 0] = self.codec.sov.to(x.dtype)
        else:
            x = self.codec.embed(inputs, sov)
        if cond is not None:
            if not self.cfg.cond_dim:
                raise ValueError("this model has no conditioning slot (cond_dim=0)")
            x = x + self.cond_proj(cond.to(x.dtype))[:, pos[:, 0].clamp(max=cond.shape[1] - 1)]
        if rope is None:
            rope = self.rope.tables(pos, x.dtype)
        mask = None
        if cache is not None and n > 1:
            # a block of new queries sees the whole cache and is causal among itself
            start = cache.length
            mask = (torch.arange(start + n, device=x.device)[None, :]
                    <= start + torch.arange(n, device=x.device)[:, None])
        if text_kv is None:
            text_kv = self.text_kv(text, b)
        for i, blk in enumerate(self.blocks):
            x = blk(x, rope, cache, i, text_kv, mask)
        if cache is not None:
            cache.advance(n)
        return self.codec.logits(x, prev_ids)

    def new_cache(self, batch: int, capacity: int, device=None, dtype=torch.float32) -> KVCache:
        c = self.cfg
        return KVCache(c.depth, batch, c.kv_heads, c.head_dim, capacity, device=device, dtype=dtype)


def teacher_forcing_inputs(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, H, W) token grid -> (inputs (B, N), targets (B, N)) with inputs shifted right by one
    (index 0 is the start-of-video slot, its id value is ignored)."""
    targets = tokens.reshape(tokens.shape[0], -1)
    inputs = torch.cat([torch.zeros_like(targets[:, :1]), targets[:, :-1]], dim=1)
    return inputs, targets


def previous_frame_ids(tokens: torch.Tensor, frame_tokens: int) -> torch.Tensor:
    """(B, N) raster token ids -> (B, N) the id one latent frame earlier at the same (h, w), -1 in frame 0."""
    prev = torch.full_like(tokens, -1)
    prev[:, frame_tokens:] = tokens[:, :-frame_tokens]
    return prev


def quantize_int8(model: GPT) -> GPT:
    """A copy of `model` for CPU decoding with int8 weights in every nn.Linear: dynamic quantisation
    (torch.ao quantize_dynamic; weights int8 per output channel, activations quantised per call, int32
    accumulation; Jacob et al. 2018). One decoded token reads all weights once, so on a CPU the step is
    bound by memory traffic: a quarter of the bytes (the 23M-parameter tiny model fits the L3 cache as
    int8) is the gain. The digit tables and norms stay float. Outputs change slightly (benchmarks/ar.py
    reports the rollout PSNR of both); the original model is untouched and stays the one to train and save."""
    import copy
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    # (folding the pre-norm weights into the next Linear before quantising saved ~2% of a step but cost
    # 0.1 dB of rollout PSNR on 8 held-out clips in one measurement, perhaps noise: left out, not worth it)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.ao deprecation notices; the API is still the CPU int8 path
        q = quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear: per_channel_dynamic_qconfig})
    return q
