"""Frame metrics for world-model rollouts: PSNR and SSIM per frame, and their mean at each horizon.

Videos are float tensors (..., 3, T, H, W) in [-1, 1] (the models' space); both metrics are computed on [0, 1].
SSIM follows Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), C1 = (0.01)^2, C2 = (0.03)^2, averaged over
pixels and channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().clamp(-1, 1) + 1) / 2)


def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """(B, 3, T, H, W) x2 -> (B, T) PSNR in dB (identical frames give max_db)."""
    mse = (_unit(pred) - _unit(target)).pow(2).mean(dim=(1, 3, 4))
    return (10 * torch.log10(1.0 / mse.clamp(min=1e-12))).clamp(max=max_db)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float32) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) x2 -> (B, T) SSIM. Frames smaller than the window use a window of their size."""
    B, C, T, H, W = pred.shape
    x = _unit(pred).permute(0, 2, 1, 3, 4).reshape(B * T * C, 1, H, W)
    y = _unit(target).permute(0, 2, 1, 3, 4).reshape(B * T * C, 1, H, W)
    size = min(11, H, W)
    win = _gaussian_window(size).to(x.device)[None, None]
    mu_x, mu_y = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mu_x**2
    syy = F.conv2d(y * y, win) - mu_y**2
    sxy = F.conv2d(x * y, win) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3)).view(B, T, C).mean(-1)


def by_horizon(per_frame: torch.Tensor) -> list[float]:
    """(B, T) -> the mean over the batch at each horizon 1..T."""
    return [round(float(v), 4) for v in per_frame.mean(0)]
