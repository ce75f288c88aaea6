"""Causal video tokenizers: CV (continuous latents) and DV (FSQ token ids).

    from worldsmith.tokenizer import load_tokenizer
    tok = load_tokenizer("checkpoints/cv-4x8x8-tiny")
    z = tok.encode(video)          # video (B, 3, 1+k*s_t, H, W) in [-1, 1]
    recon = tok.decode(z)
    z = tok.encode_long(long_video); frames = torch.cat(list(tok.decode_long(z, num_frames=T)), 2)
"""

from worldsmith.tokenizer.model import PRESETS, TokenizerConfig, VideoTokenizer, build_tokenizer, preset_config
from worldsmith.tokenizer.run import TokenizerError, load_tokenizer

__all__ = ["PRESETS", "TokenizerConfig", "VideoTokenizer", "build_tokenizer", "preset_config", "TokenizerError",
           "load_tokenizer"]
