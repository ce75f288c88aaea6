"""Causal video tokenizers: CV (continuous latents) and DV (FSQ token ids).

    from worldsmith.tokenizer import load_tokenizer
    tok = load_tokenizer("checkpoints/cv-4x8x8-tiny")
    z = tok.encode(video)          # video (B, 3, 1+k*s_t, H, W) in [-1, 1]
    recon = tok.decode(z)
    z = tok.encode_long(long_video); frames = torch.cat(list(tok.decode_long(z, num_frames=T)), 2)
"""

import importlib

# Imported lazily so that `worldsmith --help` (which imports the tokenizer's CLI module) does not load torch.
_HOME = {"PRESETS": "model", "TokenizerConfig": "model", "VideoTokenizer": "model", "build_tokenizer": "model",
         "preset_config": "model", "TokenizerError": "run", "load_tokenizer": "run"}
__all__ = list(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"worldsmith.tokenizer.{_HOME[name]}"), name)
    raise AttributeError(f"module 'worldsmith.tokenizer' has no attribute {name!r}")
