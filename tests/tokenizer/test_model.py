"""Tokenizer model: Haar patcher, FSQ, shapes of every preset, causality, streaming equality."""

import pytest
import torch

from worldsmith.tokenizer.fsq import FSQ
from worldsmith.tokenizer.haar import haar_forward, haar_inverse
from worldsmith.tokenizer.model import PRESETS, build_tokenizer, preset_config


def _jitter(model, scale=0.05, seed=0):
    """Perturb every weight (zero-initialised output projections included) so each path really matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def test_haar_exact_inverse_float64_and_float32():
    x = torch.randn(2, 3, 17, 32, 48, dtype=torch.float64)
    y = haar_forward(x)
    assert y.shape == (2, 192, 5, 8, 12)
    assert torch.allclose(haar_inverse(y), x, atol=1e-12, rtol=0)
    x32 = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    assert (haar_inverse(haar_forward(x32)) - x32).abs().max() < 1e-6
    img = torch.randn(1, 3, 1, 8, 8, dtype=torch.float64)  # a single image is a valid video
    assert haar_forward(img).shape == (1, 192, 1, 2, 2)
    assert torch.allclose(haar_inverse(haar_forward(img)), img, atol=1e-12, rtol=0)


def test_haar_is_orthonormal_energy_preserving():
    x = torch.randn(1, 3, 4, 8, 8, dtype=torch.float64)  # a non-first chunk: no duplicated frame
    y = haar_forward(x, first=False)
    assert torch.allclose(y.pow(2).sum(), x.pow(2).sum())


def test_haar_rejects_bad_lengths():
    with pytest.raises(ValueError, match="1 \\+ k\\*4"):
        haar_forward(torch.zeros(1, 3, 8, 16, 16))


def test_fsq_bijection_over_full_vocabulary():
    fsq = FSQ([8, 8, 8, 5, 5, 5])
    assert fsq.vocab_size == 64_000
    ids = torch.arange(fsq.vocab_size).view(1, -1)
    codes = fsq.ids_to_codes(ids)
    assert codes.shape == (1, 6, 64_000)
    assert torch.equal(fsq.codes_to_ids(codes), ids)
    assert torch.unique(codes, dim=2).shape[2] == 64_000  # distinct codes
    # quantising a code gives itself: codes are fixed points of bound+round
    z = torch.randn(4, 6, 3, 5, 5) * 3
    q = fsq.quantize(z)
    assert torch.equal(fsq.ids_to_codes(fsq.codes_to_ids(q)), q)
    for i, lv in enumerate(fsq.levels):
        assert torch.unique(fsq.quantize(torch.linspace(-20, 20, 5001).view(1, 1, -1).repeat(1, 6, 1))[0, i]).numel() == lv


def test_fsq_straight_through_gradients():
    fsq = FSQ([8, 5])
    z = torch.randn(2, 2, 7, requires_grad=True)
    fsq.quantize(z).sum().backward()
    zz = z.detach().clone().requires_grad_(True)
    (fsq.bound(zz) / torch.tensor([4.0, 2.0]).view(1, 2, 1)).sum().backward()
    assert torch.allclose(z.grad, zz.grad)  # gradient of bound/half_width: rounding is skipped
    assert z.grad.abs().min() > 0


def test_fsq_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="token ids"):
        FSQ([8, 8]).ids_to_codes(torch.tensor([[64]]))


@pytest.mark.parametrize("preset", PRESETS)
def test_shapes_of_every_preset(preset):
    model = build_tokenizer(preset).eval()
    cfg = model.config
    st, s = cfg.temporal_compression, cfg.spatial_compression
    for t in (1, 1 + st):
        video = torch.rand(1, 3, t, 32, 32) * 2 - 1
        with torch.no_grad():
            z = model.encode(video)
            recon = model.decode(z)
        lat = (1, 1 + (t - 1) // st, 32 // s, 32 // s)
        if cfg.kind == "dv":
            assert z.dtype == torch.int64 and tuple(z.shape) == lat
            assert int(z.min()) >= 0 and int(z.max()) < cfg.vocab_size == 64_000
            assert model.encode_codes(video).shape == (1, 6, *lat[1:])
        else:
            assert z.dtype == torch.float32 and tuple(z.shape) == (1, 16, *lat[1:])
            assert cfg.vocab_size is None
        assert recon.shape == video.shape


def test_base_width_is_wider():
    assert preset_config("cv-4x8x8-base").width > preset_config("cv-4x8x8").width
    with pytest.raises(ValueError, match="unknown tokenizer preset"):
        preset_config("cv-3x8x8")


def test_bad_frame_count_is_a_clear_error():
    model = build_tokenizer("cv-4x8x8")
    with pytest.raises(ValueError, match="1 \\+ k\\*4"):
        model.encode(torch.zeros(1, 3, 8, 32, 32))


@pytest.mark.parametrize("preset", ["cv-4x8x8", "dv-8x8x8"])
def test_causality_future_frames_do_not_change_past_latents(preset):
    model = _jitter(build_tokenizer(preset))
    st = model.config.temporal_compression
    video = torch.rand(1, 3, 1 + 3 * st, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, :, 1 + st:] = torch.rand_like(changed[:, :, 1 + st:])  # frames after latent 1's window
    with torch.no_grad():
        a, b = model._encode_raw(video), model._encode_raw(changed)
        ra, rb = model.decode(model.quantize(a)), model.decode(model.quantize(b))
    assert torch.equal(a[:, :, :2], b[:, :, :2])  # exactly: latents 0 and 1 see frames <= s_t
    assert not torch.allclose(a[:, :, 2:], b[:, :, 2:])
    assert torch.equal(ra[:, :, :1 + st], rb[:, :, :1 + st])  # the decoder is causal too


@pytest.mark.parametrize("preset", ["cv-4x8x8", "dv-8x8x8"])
def test_chunked_equals_single_pass(preset):
    """Chunked streaming computes the same sums as one pass; differences are float rounding only (<= 1e-5)."""
    model = _jitter(build_tokenizer(preset))
    st = model.config.temporal_compression
    video = torch.rand(1, 3, 1 + 5 * st, 32, 32) * 2 - 1
    with torch.no_grad():
        single = model.encode(video)
        recon = model.decode(single)
    chunked = model.encode_long(video, chunk_latents=2)
    if model.config.kind == "dv":  # ids: equal unless a value sits within 1e-5 of a rounding boundary
        assert (chunked != single).float().mean() < 0.01
    else:
        assert (chunked - single).abs().max() <= 1e-5
    pieces = list(model.decode_long(single, chunk_latents=2))
    assert len(pieces) == 3
    assert (torch.cat(pieces, 2) - recon).abs().max() <= 1e-5
    # any input chunking (here odd-sized pieces) gives the same latents
    pieces_in = [video[:, :, :3], video[:, :, 3:10], video[:, :, 10:]]
    assert torch.equal(model.encode_long(iter(pieces_in), chunk_latents=2), chunked)


def test_long_video_tail_padding_and_trim():
    model = _jitter(build_tokenizer("cv-4x8x8"))
    video = torch.rand(1, 3, 11, 32, 32) * 2 - 1  # 11 = 1 + 4*2 + 2: the tail is padded to 13
    z = model.encode_long(video, chunk_latents=1)
    assert z.shape[2] == 4
    out = torch.cat(list(model.decode_long(z, chunk_latents=1, num_frames=11)), 2)
    assert out.shape == video.shape


def test_tiles_cover_large_frames_with_blended_seams():
    model = _jitter(build_tokenizer("cv-4x8x8"))
    model.config.tile_size, model.config.tile_overlap = 32, 16
    video = torch.rand(1, 3, 5, 48, 64) * 2 - 1
    z = model.encode_long(video)
    assert z.shape == (1, 16, 2, 6, 8)
    out = torch.cat(list(model.decode_long(z)), 2)
    assert out.shape == video.shape and torch.isfinite(out).all()
    # a frame that fits one tile takes the untiled path exactly
    small = video[..., :32, :32]
    with torch.no_grad():
        assert torch.allclose(model.encode_long(small), model.encode(small), atol=1e-5)
