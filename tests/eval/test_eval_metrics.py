import math

import pytest
import torch

from worldsmith.eval.metrics import by_horizon, psnr_per_frame, ssim_per_frame


def test_psnr_matches_the_formula_and_caps_identical_frames():
    a = torch.zeros(1, 3, 2, 8, 8)
    b = a.clone()
    b[:, :, 1] += 0.2                     # 0.1 in [0, 1] units -> MSE 0.01 -> 20 dB
    p = psnr_per_frame(b, a)
    assert p[0, 0] == 100.0 and p[0, 1].item() == pytest.approx(20.0, abs=1e-4)


def test_ssim_is_one_for_equal_frames_and_drops_with_noise_and_structure():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim_per_frame(a, a), torch.ones(2, 3), atol=1e-5)
    noisy = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    s_noisy = ssim_per_frame(noisy, a)
    assert (s_noisy < 0.9).all()
    flat = torch.zeros_like(a)
    assert (ssim_per_frame(flat, a) < s_noisy).all()


def test_by_horizon_means_over_the_batch():
    assert by_horizon(torch.tensor([[1.0, 3.0], [3.0, 5.0]])) == [2.0, 4.0]
    assert not any(math.isnan(v) for v in by_horizon(torch.rand(3, 4)))
