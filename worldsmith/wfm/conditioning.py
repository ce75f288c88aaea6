"""Conditioning inputs of the world models: text now; per-frame vectors (actions, camera, trajectory) later.

Text. The DiT cross-attends to the token embeddings of all-MiniLM-L6-v2 (384-d, offline through
`worldsmith.text`), at most `MAX_TEXT_TOKENS` per caption, padded, with a boolean mask. Captions repeat a lot
(one task per episode), so embeddings are cached per caption: in memory, and in `TextCache` files beside the
latent cache so a training run never loads the language model at all.

Per-frame conditioning. `FrameCond` is the slot post-training fills: a (B, T_latent, cond_dim) tensor that the
DiT projects into its AdaLN modulation (`DiTConfig.cond_dim`). `frame_cond_from_columns` shows the intended
reduction from per-video-frame columns (e.g. "action" (T, 7)) to per-latent-frame vectors: latent frame 0 covers
video frame 0 and latent frame j >= 1 covers video frames 4j-3 .. 4j (causal tokenizer), so the columns of each
group are concatenated (first frame repeated to fill its group).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from worldsmith.text import EMBED_DIM

MAX_TEXT_TOKENS = 16
_token_cache: dict[str, np.ndarray] = {}


def text_tokens(texts: list[str], max_tokens: int = MAX_TEXT_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions -> token embeddings (N, max_tokens, 384) float32 and mask (N, max_tokens) bool.

    An empty caption is one all-zero token (the same input as text dropout: the unconditional model)."""
    missing = [t for t in dict.fromkeys(texts) if t and t not in _token_cache]
    if missing:
        from worldsmith.text import _model

        outs = _model().encode(missing, output_value="token_embeddings", convert_to_numpy=False,
                               show_progress_bar=False)
        for t, o in zip(missing, outs):
            _token_cache[t] = o[:max_tokens].float().cpu().numpy()
    emb = torch.zeros(len(texts), max_tokens, EMBED_DIM)
    mask = torch.zeros(len(texts), max_tokens, dtype=torch.bool)
    for i, t in enumerate(texts):
        if not t:
            mask[i, 0] = True
            continue
        e = torch.from_numpy(_token_cache[t][:max_tokens])
        emb[i, : len(e)] = e
        mask[i, : len(e)] = True
    return emb, mask


def drop_text(text: torch.Tensor, p: float) -> torch.Tensor:
    """Text dropout for classifier-free guidance: zero each sample's tokens with probability p (global RNG)."""
    if p <= 0:
        return text
    keep = (torch.rand(text.shape[0], device=text.device) >= p).to(text.dtype)
    return text * keep[:, None, None]


@dataclass
class FrameCond:
    """Per-latent-frame conditioning for post-training (actions, camera poses, trajectories)."""
    name: str            # the episode column it comes from, e.g. "action"
    dim: int             # per-video-frame size of the column
    temporal_compression: int = 4

    @property
    def cond_dim(self) -> int:
        return self.dim * self.temporal_compression


def frame_cond_from_columns(values: torch.Tensor, temporal_compression: int = 4) -> torch.Tensor:
    """(B, 1 + k*s_t, D) per video frame -> (B, 1 + k, s_t*D) per latent frame (see the module docstring)."""
    B, T, D = values.shape
    if (T - 1) % temporal_compression:
        raise ValueError(f"{T} frames is not 1 + k*{temporal_compression}")
    first = values[:, :1].expand(B, temporal_compression, D)
    rest = values[:, 1:].reshape(B, (T - 1) // temporal_compression, temporal_compression, D)
    return torch.cat([first[:, None], rest], dim=1).reshape(B, -1, temporal_compression * D)


def cache_dir() -> str:
    """Where derived data (latents, text embeddings) is cached: $WORLDSMITH_CACHE or ~/.cache/worldsmith."""
    return os.environ.get("WORLDSMITH_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "worldsmith"))
