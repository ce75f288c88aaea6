"""The AR world model: cached == uncached, causality, 3D RoPE on the grid, conditioning slots."""

import pytest
import torch

from worldsmith.wfm.gpt import (GPT, GPTConfig, Rope3D, grid_positions, preset_config, previous_frame_ids,
                                teacher_forcing_inputs)

torch.set_num_threads(1)


def tiny_model(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(dim=64, depth=2, heads=4, kv_heads=2, grid=[3, 4, 4], cross_attn_every=1, cond_dim=5, **kw)
    m = GPT(cfg).eval()
    with torch.no_grad():   # zero-initialised output projections would hide the text and cond paths
        for blk in m.blocks:
            blk.cross.proj.weight.normal_(std=0.05)
        m.cond_proj.weight.normal_(std=0.05)
    return m


def finite(x: torch.Tensor) -> torch.Tensor:
    return x.masked_fill(~torch.isfinite(x), 0.0)


def test_cached_logits_equal_uncached():
    m = tiny_model()
    tokens = torch.randint(0, 64000, (2, 3, 4, 4))
    text, cond = torch.randn(2, 384), torch.randn(2, 3, 5)
    inputs, targets = teacher_forcing_inputs(tokens)
    prev = previous_frame_ids(targets, 16)
    pos = grid_positions(3, 4, 4)
    with torch.no_grad():
        full = m(inputs, pos, text=text, cond=cond, prev_ids=prev)
        cache = m.new_cache(2, capacity=8)          # small on purpose: exercises growing
        kv = m.text_kv(text, 2)
        parts = [m(inputs[:, :10], pos[:10], cache=cache, text_kv=kv, cond=cond, prev_ids=prev[:, :10])]
        for i in range(10, 30):                     # one token at a time
            parts.append(m(inputs[:, i:i + 1], pos[i:i + 1], cache=cache, text_kv=kv, cond=cond,
                           prev_ids=prev[:, i:i + 1]))
        parts.append(m(inputs[:, 30:], pos[30:], cache=cache, text_kv=kv, cond=cond, prev_ids=prev[:, 30:]))
    assert cache.length == 48
    torch.testing.assert_close(finite(torch.cat(parts, 1)), finite(full), atol=2e-5, rtol=1e-4)


def test_cache_truncate_rolls_back():
    m = tiny_model()
    inputs, _ = teacher_forcing_inputs(torch.randint(0, 64000, (1, 3, 4, 4)))
    pos = grid_positions(3, 4, 4)
    with torch.no_grad():
        cache = m.new_cache(1, 48)
        m(inputs[:, :20], pos[:20], cache=cache)
        a = m(inputs[:, 20:21], pos[20:21], cache=cache)
        m(torch.randint(0, 64000, (1, 5)), pos[21:26], cache=cache)   # rejected drafts
        cache.truncate(20)
        b = m(inputs[:, 20:21], pos[20:21], cache=cache)
    torch.testing.assert_close(finite(a), finite(b))


def test_causal_masking_later_tokens_do_not_change_earlier_logits():
    """Perturb token j: the logits of targets 0..j (which may only see tokens < their own) stay put,
    through both paths a token reaches later logits (the input stream and the copy prior)."""
    m = tiny_model()
    tokens = torch.randint(0, 64000, (1, 48))
    j = 20

    def logits(tok):
        inputs, targets = teacher_forcing_inputs(tok.view(1, 3, 4, 4))
        with torch.no_grad():
            return m(inputs, grid_positions(3, 4, 4), prev_ids=previous_frame_ids(targets, 16))

    changed = tokens.clone()
    changed[0, j] = (changed[0, j] + 777) % 64000
    a, b = logits(tokens), logits(changed)
    torch.testing.assert_close(finite(a[:, :j + 1]), finite(b[:, :j + 1]), atol=0, rtol=0)
    assert (finite(a[:, j + 1]) - finite(b[:, j + 1])).abs().max() > 1e-4     # the next target reacts
    assert (finite(a[:, j + 16]) - finite(b[:, j + 16])).abs().max() > 1e-4   # and the one a frame later


def test_copy_prior_favours_the_previous_frame_token():
    m = tiny_model()
    tokens = torch.randint(0, 64000, (1, 48))
    inputs, targets = teacher_forcing_inputs(tokens.view(1, 3, 4, 4))
    prev = previous_frame_ids(targets, 16)
    assert (prev[:, :16] == -1).all() and torch.equal(prev[:, 16:], targets[:, :-16])
    with torch.no_grad():
        with_prior = m(inputs, grid_positions(3, 4, 4), prev_ids=prev)
        without = m(inputs, grid_positions(3, 4, 4))
    nll_with, nll_without = m.codec.nll(with_prior, prev.clamp(min=0)), m.codec.nll(without, prev.clamp(min=0))
    assert torch.equal(finite(with_prior[:, :16]), finite(without[:, :16]))     # frame 0 has no previous frame
    assert (nll_with[:, 16:] < nll_without[:, 16:] - 1.0).all()


def test_grid_positions_follow_raster_order():
    pos = grid_positions(2, 3, 4)
    assert pos.shape == (24, 3)
    for i, (t, h, w) in enumerate(pos.tolist()):
        assert i == t * 12 + h * 4 + w
    assert grid_positions(2, 3, 4, t0=5)[:, 0].min() == 5


def test_rope3d_angles_are_per_axis_and_relative():
    rope = Rope3D(head_dim=48)
    nt, nh, nw = rope.split
    assert nt + nh + nw == 24 and nh == nw
    pos = grid_positions(3, 4, 4)
    ang = rope.angles(pos)
    for i, (t, h, w) in enumerate(pos.tolist()):
        torch.testing.assert_close(ang[i, :nt], t * rope.inv_freq[:nt])
        torch.testing.assert_close(ang[i, nt:nt + nh], h * rope.inv_freq[nt:nt + nh])
        torch.testing.assert_close(ang[i, nt + nh:], w * rope.inv_freq[nt + nh:])
    # scores depend only on the offset: shifting the whole grid in t, h and w leaves q.k unchanged
    q, k = torch.randn(1, 1, 48, 48), torch.randn(1, 1, 48, 48)

    def scores(p):
        cos, sin = rope.cos_sin(p)
        return Rope3D.rotate(q, cos, sin) @ Rope3D.rotate(k, cos, sin).transpose(-1, -2)

    torch.testing.assert_close(scores(pos), scores(pos + torch.tensor([7, 3, 5])), atol=1e-4, rtol=1e-4)
    # ...and they do depend on the offset along each axis
    for axis in range(3):
        moved = pos.clone()
        moved[:, axis] *= 2
        assert (scores(moved) - scores(pos)).abs().max() > 1e-3


def test_rotate_full_tables_equal_the_half_pair_rotation():
    """The decode path's full-width tables (one roll, one addcmul) rotate exactly like `rotate`."""
    rope = Rope3D(head_dim=48)
    pos = grid_positions(2, 3, 4)
    x = torch.randn(2, 24, 5, 48)                                  # (B, L, heads, hd)
    cos, sin = rope.cos_sin(pos)
    ref = Rope3D.rotate(x.transpose(1, 2), cos, sin).transpose(1, 2)
    torch.testing.assert_close(Rope3D.rotate_full(x, *rope.tables(pos)), ref, atol=1e-6, rtol=1e-6)


def test_model_positions_are_the_target_grid():
    """Input i holds token i-1 and sits at the grid position of token i: a frame's conditioning reaches
    exactly the inputs that predict that frame's tokens."""
    m = tiny_model()
    inputs, _ = teacher_forcing_inputs(torch.randint(0, 64000, (1, 3, 4, 4)))
    pos = grid_positions(3, 4, 4)
    cond = torch.randn(1, 3, 5)
    changed = cond.clone()
    changed[0, 1] += 1.0                      # frame 1's vector
    with torch.no_grad():
        a, b = m(inputs, pos, cond=cond), m(inputs, pos, cond=changed)
    diff = (finite(a) - finite(b)).abs().amax(dim=(0, 2, 3))
    assert diff[:16].max() == 0               # frame 0 targets untouched
    assert diff[16:32].min() > 0              # every frame-1 target sees it


def test_text_cross_attention_changes_logits():
    m = tiny_model()
    inputs, _ = teacher_forcing_inputs(torch.randint(0, 64000, (1, 3, 4, 4)))
    pos = grid_positions(3, 4, 4)
    with torch.no_grad():
        a = m(inputs, pos, text=torch.randn(1, 384))
        b = m(inputs, pos, text=torch.randn(1, 384))
        c = m(inputs, pos)                     # null text
        text = torch.randn(1, 384)
        one = m(inputs, pos, text=text)        # the single-vector shortcut ...
        two = m(inputs, pos, text=text[:, None].expand(1, 2, 384))   # ... equals real attention over copies
    assert (finite(a) - finite(b)).abs().max() > 1e-4 and (finite(a) - finite(c)).abs().max() > 1e-4
    torch.testing.assert_close(finite(one), finite(two), atol=1e-5, rtol=1e-4)


def test_digit_codec_matches_fsq_ids_and_nll_is_a_distribution():
    from worldsmith.tokenizer.fsq import FSQ

    m = tiny_model()
    ids = torch.randint(0, 64000, (50,))
    digits = m.codec.digits(ids)
    codes = FSQ().ids_to_codes(ids.view(1, 50))           # (1, 6, 50): the tokenizer's own digits
    half = torch.tensor([8, 8, 8, 5, 5, 5]).view(1, 6, 1) // 2
    torch.testing.assert_close(digits.T.unsqueeze(0), torch.round(codes * half + half).long())
    assert torch.equal(m.codec.ids(digits), ids)
    # the product of digit softmaxes sums to one over all 64,000 ids
    with torch.no_grad():
        logits = m.codec.logits(torch.randn(1, 1, 64))
        nll = m.codec.nll(logits.expand(1, 64000, -1, -1), torch.arange(64000).view(1, -1))
    assert abs(float(torch.exp(-nll).sum()) - 1.0) < 1e-4


def test_full_head_and_presets():
    torch.manual_seed(0)
    m = GPT(GPTConfig(dim=32, depth=1, heads=2, kv_heads=1, head="full", text_dim=0, grid=[2, 2, 2]))
    out = m(torch.randint(0, 64000, (1, 8)), grid_positions(2, 2, 2))
    assert out.shape == (1, 8, 1, 64000)
    assert preset_config("tiny").vocab_size == 64000
    # the CPU preset stays small enough to ship as float16 under the repository's 20 MB per file
    assert 2 * GPT(preset_config("nano")).num_params() < 20 * 2**20
    with pytest.raises(ValueError, match="unknown AR preset"):
        preset_config("huge")
    with pytest.raises(ValueError, match="head"):
        GPT(GPTConfig(dim=32, depth=1, heads=2, kv_heads=1, head="bogus"))
