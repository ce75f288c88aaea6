"""Layer-level numerics of the tokenizer."""

import torch

from worldsmith.tokenizer.layers import FrameGroupNorm


def test_frame_group_norm_normalises_in_fp32_and_returns_the_input_dtype():
    norm = FrameGroupNorm(32, groups=8)
    g = torch.Generator().manual_seed(0)
    x = (100 + torch.randn(2, 32, 3, 8, 8, generator=g)).to(torch.bfloat16)  # a large offset: bf16 mean is coarse
    with torch.no_grad():
        out, ref = norm(x), norm(x.float())
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05   # bf16 rounding of the output only
    assert abs(float(ref.mean())) < 1e-3 and abs(float(ref.std()) - 1) < 1e-2


def test_frame_group_norm_statistics_are_per_frame():
    norm = FrameGroupNorm(8, groups=4)
    x = torch.randn(1, 8, 4, 6, 6)
    y = x.clone()
    y[:, :, 3] *= 50   # change only the last frame
    with torch.no_grad():
        assert torch.equal(norm(x)[:, :, :3], norm(y)[:, :, :3])
