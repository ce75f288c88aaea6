"""Pixel-space compensation of the tokenizer's error (worldsmith.wfm.compensation)."""

import pytest
import torch

from worldsmith.wfm.compensation import CompensatedPredictor, aligned_context, compensate, unchanged_mask


def _frames(seed, t=1, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, t, size, size, generator=g) * 2 - 1


def test_unchanged_content_gets_the_real_frame_back():
    last, recon = _frames(0) * 0.9, _frames(1) * 0.9
    pred = recon.expand(-1, -1, 4, -1, -1)                 # the model predicts "nothing moves"
    out = compensate(pred, last, recon, tau=0.3)
    torch.testing.assert_close(out, last.expand_as(out))   # the decoder's error is fully undone


def test_changed_content_is_left_as_predicted():
    last, recon = _frames(0) * 0.5, torch.zeros(2, 3, 1, 16, 16)
    pred = torch.zeros(2, 3, 3, 16, 16)
    pred[..., 4:12, 4:12] = 0.9                            # an object moved here
    out = compensate(pred, last, recon, tau=0.05)
    inside, outside = (slice(None),) * 3 + (slice(6, 10), slice(6, 10)), (slice(None),) * 3 + (slice(0, 2),) * 2
    torch.testing.assert_close(out[inside], pred[inside], atol=1e-3, rtol=0)
    torch.testing.assert_close(out[outside], last.expand_as(out)[outside])
    mask = unchanged_mask(pred, recon, 0.05)
    assert mask.shape == (2, 1, 3, 16, 16) and mask[inside[:1] + (slice(None),) * 2 + inside[3:]].max() < 1e-3


def test_off_and_bad_shapes():
    pred, last = _frames(2, t=3), _frames(3)
    assert compensate(pred, last, last, tau=0) is pred
    with pytest.raises(ValueError, match="do not match"):
        compensate(pred, last, last[..., :8], tau=0.3)
    with pytest.raises(ValueError, match="tau"):
        CompensatedPredictor(object(), tau=0)


def test_aligned_context_takes_a_causal_tail():
    ctx = torch.arange(7.0).view(1, 1, 7, 1, 1).expand(1, 3, 7, 2, 2)
    assert aligned_context(ctx, 4)[0, 0, :, 0, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert aligned_context(ctx[:, :, :3], 4).shape[2] == 1


class _CopyThroughTokenizer:
    """A predictor that repeats the round trip of the last context frame, with a real (random-init) tokenizer."""

    st = 4
    context_frames = 5

    def __init__(self):
        from worldsmith.tokenizer.model import TokenizerConfig, VideoTokenizer

        torch.manual_seed(0)
        self.tok = VideoTokenizer(TokenizerConfig(width=16, channel_mult=[1, 1, 1], latent_channels=4)).eval()

    @torch.no_grad()
    def reconstruct(self, video):
        return self.tok.decode(self.tok.encode(video)).clamp(-1, 1)

    def predict(self, context, num_frames, prompt=None, seed=0):
        return self.reconstruct(context)[:, :, -1:].expand(-1, -1, num_frames, -1, -1)


def test_wrapped_predictor_compensates_and_keeps_the_raw_path():
    inner = _CopyThroughTokenizer()
    p = CompensatedPredictor(inner, tau=0.3)
    ctx = _frames(4, t=5, size=32) * 0.8
    raw = p.predict_raw(ctx, 3)
    assert p.context_frames == 5 and p.st == 4                       # the rest is the wrapped predictor's
    torch.testing.assert_close(raw, inner.predict(ctx, 3))
    out = p.predict(ctx, 3)
    # a static prediction is compensated back to the real last frame, which the raw round trip is far from
    torch.testing.assert_close(out, ctx[:, :, -1:].expand_as(out), atol=1e-5, rtol=0)
    assert (raw - ctx[:, :, -1:]).abs().mean() > 0.05
