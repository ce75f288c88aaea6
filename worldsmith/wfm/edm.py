"""EDM (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", arXiv 2206.00364)
as flat pure functions: preconditioning, noise sampling, loss weighting, the Karras sigma schedule, Euler and Heun
samplers, classifier-free guidance, and video2world conditioning on given latent frames.

Noise levels are per latent frame, shape (B, T): the first k frames of a video2world sample are given (clean plus a
small augmentation noise sigma_cond, flagged by a mask channel) and the rest are generated at the sampling sigma.
Everything below broadcasts sigma over (B, 1, T, 1, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # D(x, sigma (B,)) -> x0 estimate


@dataclass
class EDMConfig:
    sigma_data: float = 0.5         # latents are normalised to this std before diffusion
    p_mean: float = -0.4            # ln(sigma) ~ N(p_mean, p_std^2) in training (EDM Table 1 uses -1.2 for images;
    p_std: float = 1.2              # video latents are more redundant, so they need more noise (Cosmos shifts up too)
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    sigma_cond: float = 0.02        # augmentation noise on given frames at inference
    sigma_cond_max: float = 0.2     # training draws it log-uniformly from [sigma_cond/4, sigma_cond_max]
    text_dropout: float = 0.2       # probability of training without text (classifier-free guidance)


# ----------------------------------------------------------------------------------------------------------------
# preconditioning and training

def precondition(sigma: torch.Tensor, sigma_data: float):
    """EDM Table 1: D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)."""
    s2, d2 = sigma**2, sigma_data**2
    c_skip = d2 / (s2 + d2)
    c_out = sigma * sigma_data / (s2 + d2).sqrt()
    c_in = 1.0 / (s2 + d2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, which makes lambda c_out^2 = 1 (EDM eq. 8)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_sigma(n: int, cfg: EDMConfig, device=None, generator=None) -> torch.Tensor:
    """ln(sigma) ~ N(P_mean, P_std^2) (EDM Table 1, training)."""
    return torch.exp(cfg.p_mean + cfg.p_std * torch.randn(n, device=device, generator=generator))


def frame_sigmas(sigma: torch.Tensor, n_frames: int, n_given: torch.Tensor | int, sigma_cond) -> torch.Tensor:
    """(B,) generation sigma, k given frames -> (B, T) per-frame sigma (given frames carry sigma_cond)."""
    B = sigma.shape[0]
    k = torch.as_tensor(n_given, device=sigma.device).expand(B)
    given = torch.arange(n_frames, device=sigma.device)[None] < k[:, None]
    sc = torch.as_tensor(sigma_cond, device=sigma.device, dtype=sigma.dtype).expand(B)
    return torch.where(given, sc[:, None], sigma[:, None].expand(B, n_frames)), given


def denoise(net, x: torch.Tensor, sigma_t: torch.Tensor, given: torch.Tensor, sigma_data: float, **net_kw):
    """D(x; sigma) with per-frame sigma_t (B, T) and the given-frame mask (B, T) fed as an extra channel."""
    s = sigma_t[:, None, :, None, None].to(x.dtype)
    c_skip, c_out, c_in, c_noise = precondition(s, sigma_data)
    mask = given[:, None, :, None, None].to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
    f = net(torch.cat([c_in * x, mask], dim=1), c_noise[:, 0, :, 0, 0], **net_kw)
    return c_skip * x + c_out * f.to(x.dtype)


def edm_loss(net, x0: torch.Tensor, cfg: EDMConfig, n_given: torch.Tensor | int = 0, **net_kw):
    """Weighted denoising loss (EDM eq. 2 with lambda(sigma)) on the generated frames of clean latents x0."""
    B, _, T = x0.shape[:3]
    sigma = sample_sigma(B, cfg, device=x0.device)
    lo, hi = math.log(cfg.sigma_cond / 4), math.log(cfg.sigma_cond_max)
    sigma_cond = torch.exp(lo + (hi - lo) * torch.rand(B, device=x0.device))
    sigma_t, given = frame_sigmas(sigma, T, n_given, sigma_cond)
    x = x0 + torch.randn_like(x0) * sigma_t[:, None, :, None, None]
    d = denoise(net, x, sigma_t, given, cfg.sigma_data, **net_kw)
    w = loss_weight(sigma_t, cfg.sigma_data)[:, None, :, None, None]
    per = (w * (d.float() - x0.float()) ** 2)
    gen = (~given)[:, None, :, None, None].expand_as(per)
    return per[gen].mean(), {"sigma_mean": float(sigma.mean())}


# ----------------------------------------------------------------------------------------------------------------
# sampling

def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                  device=None) -> torch.Tensor:
    """EDM eq. 5: n noise levels from sigma_max to sigma_min spaced in sigma^(1/rho), then a final 0."""
    i = torch.arange(n, dtype=torch.float64, device=device)
    ramp = i / max(n - 1, 1)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64, device=device)]).float()


def sample_euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """First-order probability-flow ODE solver: dx/dsigma = (x - D(x, sigma)) / sigma."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoiser(x, s.expand(x.shape[0]))) / s
        x = x + (s_next - s) * d
    return x


def sample_heun(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """EDM Algorithm 1 (deterministic, S_churn = 0): Heun's 2nd-order step, Euler for the last step to sigma = 0."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoiser(x, s.expand(x.shape[0]))) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:
            d2 = (x_next - denoiser(x_next, s_next.expand(x.shape[0]))) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d2)
        x = x_next
    return x


SAMPLERS = {"euler": sample_euler, "heun": sample_heun}


def guided(cond: Denoiser, uncond: Denoiser, scale: float) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022): D_u + w (D_c - D_u); scale 1 is the conditional model."""
    if scale == 1.0:
        return cond

    def d(x, sigma):
        u = uncond(x, sigma)
        return u + scale * (cond(x, sigma) - u)
    return d


def video2world_denoiser(net, context: torch.Tensor, n_given: int, cfg: EDMConfig, **net_kw) -> Denoiser:
    """A D(x, sigma) for sample_*: the first n_given latent frames are pinned to `context` (+ sigma_cond noise,
    drawn once so that every solver step sees the same given frames) and returned exactly."""
    B, _, T = context.shape[:3]
    noise = torch.randn_like(context[:, :, :n_given]) * cfg.sigma_cond

    def d(x, sigma):
        sigma_t, given = frame_sigmas(sigma.to(x.dtype), T, n_given, cfg.sigma_cond)
        x = x.clone()
        x[:, :, :n_given] = context[:, :, :n_given] + noise
        out = denoise(net, x, sigma_t, given, cfg.sigma_data, **net_kw)
        out[:, :, :n_given] = context[:, :, :n_given]
        return out
    return d


@torch.no_grad()
def generate(net, shape, cfg: EDMConfig, context: torch.Tensor | None = None, n_given: int = 0, steps: int = 20,
             sampler: str = "heun", guidance: float = 1.0, text=None, text_mask=None, cond=None,
             generator: torch.Generator | None = None, device=None, temperature: float = 1.0) -> torch.Tensor:
    """Sample latents (B, C, T, H, W) in the normalised space; text2world when n_given = 0.

    `temperature` scales the starting noise x_T = temperature * sigma_max * z (the "temperature" of Kingma &
    Dhariwal's Glow, 2018, applied to the probability-flow ODE's start): 1 samples the model's distribution, lower
    values draw the ODE's start towards the centre of the prior, so samples vary less and sit nearer the
    conditional mean; 0 is a deterministic forecast (the seed then only moves the given frames' small
    augmentation noise)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r} (have {sorted(SAMPLERS)})")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    device = device or next(net.parameters()).device
    if context is None:
        context = torch.zeros(shape, device=device)
    kw = dict(cond=cond) if cond is not None else {}
    d_cond = video2world_denoiser(net, context, n_given, cfg, text=text, text_mask=text_mask, **kw)
    d = d_cond
    if guidance != 1.0 and text is not None:
        d_uncond = video2world_denoiser(net, context, n_given, cfg, text=torch.zeros_like(text),
                                        text_mask=text_mask, **kw)
        d = guided(d_cond, d_uncond, guidance)
    sigmas = karras_sigmas(steps, cfg.sigma_min, cfg.sigma_max, cfg.rho, device=device)
    x = torch.randn(shape, device=device, generator=generator) * (sigmas[0] * temperature)
    out = SAMPLERS[sampler](d, x, sigmas)
    out[:, :, :n_given] = context[:, :, :n_given]
    return out
