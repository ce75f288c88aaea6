"""Reconstruction losses: SSIM stays fp32 under bf16 autocast (the GPU training precision)."""

import torch

from worldsmith.tokenizer.losses import ssim


def _pair():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 5, 32, 32, generator=g).flatten(1, 2), 3, 1, 1)
    a = (a.view(2, 3, 5, 32, 32) * 2 - 1)
    return a, (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(-1, 1)


def test_ssim_is_exact_fp32_under_bf16_autocast():
    a, b = _pair()
    ref = ssim(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = ssim(a, b)
    assert low.dtype == torch.float32
    assert abs(float(low) - float(ref)) < 1e-6   # bf16 blurs of x^2 gave errors ~1e-3 here
