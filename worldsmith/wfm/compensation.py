"""Pixel-space compensation of the tokenizer's reconstruction error in video2world predictions.

A world model that works in a tokenizer's latent space shows at best what the decoder can draw: on the robot
source the tiny 4x8x8 CV round trip was ~20.7 dB (the CPU-trained CV; the H100-trained one of 2026-11-27: 23.2),
while copying the last real frame scores ~18 dB, so much of what the world model could gain over copy-last is eaten
by the decoder blurring static texture and edges.

But the context frames are known exactly in pixels. The decoder's error on the last context frame,
e = x_last - D(E(x))_last, is mostly a fixed pattern of the static scene. Where a predicted frame still shows
the content of the decoded last context frame, that same error applies and is added back; where the content
moved (the arm, a pushed object), the prediction is left as decoded:

    y_t = yhat_t + m_t * e,    m_t = exp(-avgpool_k(|yhat_t - xhat_last|, channel mean) / tau)

(a soft "unchanged" mask; the k x k average keeps single-pixel noise from switching it). tau -> inf adds e
everywhere; tau -> 0 turns compensation off. The default tau was picked on a calibration set (robot episodes
of a seed used neither for training nor for evaluation; figures at DEFAULT_TAU), not on the evaluation
episodes. The decoder is causal, so D(E(context)) reproduces exactly the context part of what the
predictor decodes for its first window.

Any predictor with `reconstruct(video)` and `context_frames` (the diffusion and the AR model) can be wrapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported where used: the CLI imports DEFAULT_TAU for its --help, and stays quick to start.
# Picked on 40 clips of robot seed 7 (`worldsmith data generate robot --out runs/eval/robot-s7 --episodes 40
# --frames 33 --size 64 --seed 7`; never trained or evaluated on) with the stage-1 diffusion model, no captions,
# one set of samples compensated at each tau; gain over copy-last in dB: 0.05 +0.10, 0.1 +0.41, 0.2 +0.60,
# 0.3 +0.63, 0.5 +0.62, 1.0 +0.53, inf +0.30 (raw -0.73). The AR model peaked at 0.3 too (+0.97, raw -0.56).
# To redo: `worldsmith eval rollout --data runs/eval/robot-s7 --all-episodes --no-captions --compensate TAU`
# (same seed, same samples at every tau).
DEFAULT_TAU = 0.3
POOL = 5


def unchanged_mask(pred: torch.Tensor, ref: torch.Tensor, tau: float, pool: int = POOL) -> torch.Tensor:
    """(B, 1, T, H, W) in (0, 1]: ~1 where pred (B, 3, T, H, W) still looks like ref (B, 3, 1, H, W)."""
    import torch
    import torch.nn.functional as F

    diff = (pred - ref).abs().mean(1)                                           # (B, T, H, W)
    B, T, H, W = diff.shape
    if pool > 1:
        diff = F.avg_pool2d(diff.reshape(B * T, 1, H, W), pool, 1, pool // 2, count_include_pad=False)
    return torch.exp(-diff.reshape(B, 1, T, H, W) / tau)


def compensate(pred: torch.Tensor, last_frame: torch.Tensor, last_recon: torch.Tensor, tau: float,
               pool: int = POOL) -> torch.Tensor:
    """pred (B, 3, T, H, W) decoded prediction; last_frame / last_recon (B, 3, 1, H, W): the real last context
    frame and its tokenizer round trip. Returns the compensated prediction, clamped to [-1, 1]."""
    if tau <= 0:
        return pred
    if last_frame.shape != last_recon.shape or last_frame.shape[:2] != pred.shape[:2] \
            or last_frame.shape[3:] != pred.shape[3:]:
        raise ValueError(f"compensate: pred {tuple(pred.shape)}, last frame {tuple(last_frame.shape)} and its "
                         f"reconstruction {tuple(last_recon.shape)} do not match")
    error = last_frame - last_recon
    return (pred + unchanged_mask(pred, last_recon, tau, pool) * error).clamp(-1, 1)


def aligned_context(context: torch.Tensor, st: int) -> torch.Tensor:
    """The last 1 + k*st frames of context (B, 3, Tc, H, W): the longest tail a causal tokenizer encodes."""
    Tc = context.shape[2]
    return context[:, :, Tc - (1 + st * ((Tc - 1) // st)):]


class CompensatedPredictor:
    """A predictor whose `predict` adds the compensation; everything else is the wrapped predictor's.
    `predict_raw` gives the uncompensated prediction and `apply` compensates one (evaluation reports both)."""

    def __init__(self, inner, tau: float = DEFAULT_TAU):
        if tau <= 0:
            raise ValueError(f"compensation tau must be > 0, got {tau}")
        self.inner, self.tau = inner, float(tau)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def apply(self, pred: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        import torch

        ctx = aligned_context(context, getattr(self.inner, "st", 4))
        with torch.no_grad():
            last_recon = self.inner.reconstruct(ctx).float()[:, :, -1:].to(pred.device)
        return compensate(pred, ctx[:, :, -1:].to(pred.device).float(), last_recon, self.tau)

    def predict_raw(self, context, num_frames, prompt=None, seed=0, **kw):
        return self.inner.predict(context, num_frames, prompt=prompt, seed=seed, **kw)

    def predict(self, context, num_frames, prompt=None, seed=0, **kw):
        return self.apply(self.predict_raw(context, num_frames, prompt=prompt, seed=seed, **kw), context)
