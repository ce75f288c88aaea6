"""Video in, video out with the AR world model: encode the context with the run's DV tokenizer, generate the
following latent frames, decode. These are the library calls behind `worldsmith predict` and
`worldsmith eval rollout` for runs whose config.json says "kind": "ar".
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from worldsmith.wfm.ar_sampling import SamplingConfig, Stats, generate
from worldsmith.wfm.ar_train import ARError, load_ar_model
from worldsmith.wfm.gpt import quantize_int8

# greedy decoding by default; the speculative drafts return exactly the plain loop's tokens, faster
# (16 drafts per pass measured faster than 63 on the CPU: benchmarks/ar.py)
GREEDY = SamplingConfig(temperature=0, draft=16)


class ARPredictor:
    """A loaded AR run plus its tokenizer; `predict` maps context video to context + future video."""

    def __init__(self, run_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike | None = None, device="cpu",
                 int8: bool = False):
        """int8: decode with int8 dynamically quantised Linear layers (CPU only; faster, slightly different
        tokens: see gpt.quantize_int8 and benchmarks/ar.py for the measured speed and PSNR)."""
        from worldsmith.tokenizer.run import load_tokenizer

        self.model, self.run = load_ar_model(run_dir, device=device)
        if int8:
            if str(device) != "cpu":
                raise ARError("int8 decoding is a CPU path (torch dynamic quantisation)")
            self.model = quantize_int8(self.model)
        tok = tokenizer_dir or self.run.data.tokenizer
        if not tok:
            raise ARError(f"{run_dir}: the run names no tokenizer; pass one")
        try:
            if not tokenizer_dir:   # recorded as given at training time: find it from here, the run, the repo
                from worldsmith.wfm.rollout import resolve_tokenizer

                tok = resolve_tokenizer(tok, Path(run_dir))
            self.tokenizer = load_tokenizer(tok, device=device)
        except Exception as e:
            raise ARError(str(e)) from None
        self.st = self.tokenizer.config.temporal_compression
        self.device = device

    @torch.no_grad()
    def predict(self, video: torch.Tensor, frames: int, sampling: SamplingConfig = GREEDY,
                text: torch.Tensor | None = None, stats: Stats | None = None) -> torch.Tensor:
        """video (B, 3, 1 + k*s_t, H, W) in [-1, 1] -> (B, 3, 1 + k*s_t + frames, H, W): the context as the
        tokenizer reconstructs it, then `frames` generated frames."""
        b, _, t, h, w = video.shape
        if (t - 1) % self.st:
            raise ARError(f"context of {t} frames: need 1 + a multiple of {self.st}")
        prompt = self.tokenizer.encode(video.to(self.device))
        n_latent = math.ceil(frames / self.st)
        ids = generate(self.model, prompt, n_latent, sampling, text=text, stats=stats)
        out = self.tokenizer.decode(ids)
        return out[:, :, : t + frames].clamp(-1, 1)


def predict_ar(run_dir, video: torch.Tensor, frames: int, tokenizer_dir=None, prompt_text: str | None = None,
               sampling: SamplingConfig = GREEDY, device="cpu") -> torch.Tensor:
    """One-shot helper: see ARPredictor.predict. `prompt_text` is embedded with worldsmith.text."""
    p = ARPredictor(run_dir, tokenizer_dir, device=device)
    text = None
    if prompt_text is not None:
        from worldsmith.text import embed_texts

        text = torch.from_numpy(embed_texts([prompt_text] * video.shape[0]))
    return p.predict(video, frames, sampling, text=text)
