"""Reconstruction losses and metrics that need no downloaded network: L1, SSIM, temporal consistency, PSNR.

All take videos (B, 3, T, H, W) in [-1, 1]. SSIM follows Wang et al. 2004 (Gaussian window 11, sigma 1.5,
C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L the data range), computed per frame and channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    l1: float = 1.0
    ssim: float = 0.2             # weight of (1 - SSIM)
    temporal: float = 0.0         # weight of L1 between frame differences (flicker)
    ssim_window: int = 11


def _gaussian(window: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(window, device=device, dtype=dtype) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 2.0,
         reduce: bool = True) -> torch.Tensor:
    """Mean SSIM of two videos (B, C, T, H, W) (or images (B, C, H, W)); per-sample (B,) if not reduce."""
    bsz = a.shape[0]
    if a.ndim == 5:
        a = a.transpose(1, 2).flatten(0, 1)
        b = b.transpose(1, 2).flatten(0, 1)
    with torch.autocast(a.device.type, enabled=False):
        return _ssim_fp32(a.float(), b.float(), bsz, window, sigma, data_range, reduce)


def _ssim_fp32(a, b, bsz, window, sigma, data_range, reduce):
    # fp32 outside autocast: the variances are differences of blurred squares (E[x^2] - E[x]^2), and bf16
    # convolutions (8-bit mantissa, ~0.4% error on values near 1) leave errors of ~4e-3, the size of C2 = 3.6e-3,
    # so under bf16 autocast the SSIM term and its gradient were noise (likely why a GPU bf16 run
    # collapsed to ~14 dB; docs/architecture.md).
    c = a.shape[1]
    window = min(window, a.shape[-1], a.shape[-2])
    g = _gaussian(window, sigma, a.device, a.dtype)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x):
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    per = s.flatten(1).mean(1).view(bsz, -1).mean(1)
    return per.mean() if reduce else per


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """PSNR in dB of two tensors in [-1, 1] (data range 2) over all elements."""
    mse = F.mse_loss(a.float().clamp(-1, 1), b.float())
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, cfg: LossConfig) -> tuple[torch.Tensor, dict]:
    recon = recon.float()
    l1 = (recon - target).abs().mean()
    loss = cfg.l1 * l1
    metrics = {"l1": float(l1.detach())}
    if cfg.ssim > 0:
        s = ssim(recon, target, cfg.ssim_window)
        loss = loss + cfg.ssim * (1 - s)
        metrics["ssim"] = float(s.detach())
    if cfg.temporal > 0 and target.shape[2] > 1:
        tc = ((recon[:, :, 1:] - recon[:, :, :-1]) - (target[:, :, 1:] - target[:, :, :-1])).abs().mean()
        loss = loss + cfg.temporal * tc
        metrics["temporal"] = float(tc.detach())
    metrics["psnr"] = float(psnr(recon.detach(), target))
    return loss, metrics
