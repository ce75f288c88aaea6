"""video2world with the diffusion world model: encode context frames, sample the future latents, decode,
and slide the window for rollouts longer than the training window.

Window arithmetic with a causal 4x8x8 tokenizer and 17-frame training clips (5 latent frames): k given latent
frames are the encoding of the last 1 + 4(k-1) video frames (k = 2: 5 frames); the model samples the other
5 - k latent frames, the decoder turns the whole window back into 17 frames, and the 4(5-k) frames after the
context are new. The next window takes the last 1 + 4(k-1) frames of the video so far (real or generated) as
its context, as Cosmos does for long video2world.

A predictor (also the AR model's, dispatched by `worldsmith.predict.load_predictor` on config.json's "kind")
exposes: `context_frames`, `predict(context (B,3,Tc,H,W) in [-1,1], num_frames, prompt=None, seed=0)` ->
(B, 3, num_frames, H, W), and `reconstruct(video)` (the tokenizer round trip, the quality ceiling).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from worldsmith.config import from_dict
from worldsmith.train.trainer import CheckpointError, load_weights, read_run_config
from worldsmith.wfm.dit import DiT, DiTConfig
from worldsmith.wfm.edm import EDMConfig, generate


def resolve_tokenizer(path: str, run_dir: Path) -> Path:
    """A run records its tokenizer as given at training time; find it from here, the run dir, or the repo root."""
    p = Path(path)
    candidates = [p] if p.is_absolute() else [p, run_dir / p, run_dir.parent / p,
                                               Path(__file__).resolve().parents[2] / p]
    for c in candidates:
        if (c / "config.json").exists():
            return c
    raise CheckpointError(f"{run_dir / 'config.json'}: tokenizer {path!r} not found (pass --tokenizer RUN)")


# Starting-noise temperature of the predictor (`edm.generate`). Picked on the calibration set (robot seed 7, 40 clips,
# 12 Heun steps, compensated, gain over copy-last): 1.0 +1.62 dB, 0.7 +1.82, 0.4 +2.06, 0.2 +2.11, 0 +2.13. 0.2 keeps
# most of the gain of a deterministic forecast and still gives distinct samples per seed.
DEFAULT_TEMPERATURE = 0.2


class DiffusionPredictor:
    kind = "diffusion"

    def __init__(self, run_dir: str | os.PathLike, device: str | torch.device = "cpu", tokenizer: str | None = None,
                 ema: bool = True, steps: int = 12, sampler: str = "heun", guidance: float = 1.0,
                 given: int | None = None, temperature: float = DEFAULT_TEMPERATURE):
        from worldsmith.tokenizer.run import load_tokenizer

        self.run = Path(run_dir)
        saved = read_run_config(self.run)
        if saved.get("kind") != "diffusion":
            raise CheckpointError(f"{self.run / 'config.json'}: not a diffusion run (kind {saved.get('kind')!r})")
        self.device = torch.device(device)
        self.model_cfg = from_dict(DiTConfig, saved["model"])
        self.edm = from_dict(EDMConfig, saved["edm"])
        self.data = saved["data"]
        self.net = DiT(self.model_cfg)
        self.step = load_weights(self.run, self.net, ema=ema)
        self.net.to(self.device).eval()
        self.tokenizer = load_tokenizer(resolve_tokenizer(tokenizer or saved["tokenizer"], self.run), device=self.device)
        self.mean = torch.tensor(saved["latent_mean"], device=self.device)[None, :, None, None, None]
        self.std = torch.tensor(saved["latent_std"], device=self.device)[None, :, None, None, None]
        self.st = self.tokenizer.config.temporal_compression
        self.window = int(self.data["clip_frames"])                      # video frames per window
        self.window_latents = 1 + (self.window - 1) // self.st
        self.given = max(1, int(given if given is not None else self.data["max_given"]))
        self.steps, self.sampler, self.guidance = steps, sampler, guidance
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.temperature = temperature

    @property
    def context_frames(self) -> int:
        return 1 + self.st * (self.given - 1)

    # -- latent space -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 1+k*s_t, H, W) -> normalised latents."""
        z = self.tokenizer.encode(video.to(self.device))
        return (z - self.mean) / self.std * self.edm.sigma_data

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.decode(z / self.edm.sigma_data * self.std + self.mean).clamp(-1, 1)

    @torch.no_grad()
    def reconstruct(self, video: torch.Tensor) -> torch.Tensor:
        """Tokenizer round trip of (B, 3, 1+k*s_t, H, W): what a perfect world model could at best show."""
        return self.tokenizer.decode(self.tokenizer.encode(video.to(self.device))).clamp(-1, 1)

    def _text(self, prompt: str | None, batch: int):
        if not prompt:
            return None, None
        from worldsmith.wfm.conditioning import text_tokens

        text, mask = text_tokens([prompt])
        return text.expand(batch, -1, -1).to(self.device), mask.expand(batch, -1).to(self.device)

    # -- video2world ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_window(self, context: torch.Tensor, prompt: str | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """One window: context (B, 3, 1+s_t(k-1), H, W) -> the window's new frames (B, 3, s_t(W_l-k), H, W)."""
        B, _, Tc, H, W = context.shape
        k = 1 + (Tc - 1) // self.st
        z_ctx = self.encode(context)
        s = self.tokenizer.config.spatial_compression
        shape = (B, self.model_cfg.latent_channels, self.window_latents, H // s, W // s)
        ctx = torch.zeros(shape, device=self.device)
        ctx[:, :, :k] = z_ctx
        text, mask = self._text(prompt, B)
        z = generate(self.net, shape, self.edm, context=ctx, n_given=k, steps=self.steps, sampler=self.sampler,
                     guidance=self.guidance, text=text, text_mask=mask, generator=generator, device=self.device,
                     temperature=self.temperature)
        return self.decode(z)[:, :, Tc:]

    @torch.no_grad()
    def predict(self, context: torch.Tensor, num_frames: int, prompt: str | None = None, seed: int = 0,
                progress=None) -> torch.Tensor:
        """Roll out `num_frames` frames after `context` (B, 3, Tc, H, W), sliding the window as needed."""
        if context.ndim != 5 or context.shape[1] != 3:
            raise ValueError(f"context must be (B, 3, T, H, W), got {tuple(context.shape)}")
        Tc = context.shape[2]
        given = min(self.given, 1 + (Tc - 1) // self.st)
        c = 1 + self.st * (given - 1)
        g = torch.Generator(device=self.device).manual_seed(seed)
        torch.manual_seed(seed)  # the augmentation noise on given frames
        history = context.to(self.device).float()
        made: list[torch.Tensor] = []
        n = 0
        while n < num_frames:
            new = self.predict_window(history[:, :, -c:], prompt, generator=g)
            made.append(new)
            history = torch.cat([history, new], dim=2)
            n += new.shape[2]
            if progress is not None:
                progress(min(n, num_frames))
        return torch.cat(made, dim=2)[:, :, :num_frames]


def load_diffusion_predictor(run_dir: str | os.PathLike, device: str = "cpu", **kw) -> DiffusionPredictor:
    return DiffusionPredictor(run_dir, device=device, **kw)
