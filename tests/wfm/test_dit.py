import pytest
import torch

from worldsmith.wfm.dit import DiT, DiTConfig, apply_rope, dit_config, rope_angles


pytestmark = pytest.mark.usefixtures("one_thread")


def test_rope_scores_depend_only_on_relative_position():
    hd = 16
    torch.manual_seed(0)
    q, k = torch.randn(hd), torch.randn(hd)
    T, H, W = 4, 5, 6
    ang = rope_angles(T, H, W, hd, 10000.0)
    grid = lambda t, h, w: (t * H + h) * W + w  # noqa: E731

    def score(pq, pk):
        return (apply_rope(q[None], ang[grid(*pq)][None]) * apply_rope(k[None], ang[grid(*pk)][None])).sum()

    base = score((0, 1, 2), (2, 3, 1))
    shifted = score((1, 2, 4), (3, 4, 3))           # both moved by (1, 1, 2)
    torch.testing.assert_close(base, shifted, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(base, score((0, 1, 2), (2, 3, 2)), atol=1e-3)  # a different offset differs
    # Rotation preserves the norm.
    torch.testing.assert_close(apply_rope(q[None], ang[:1]).norm(), q.norm())


def _net(**kw):
    torch.manual_seed(0)
    return DiT(DiTConfig(latent_channels=4, width=32, depth=2, heads=2, adaln_lora_rank=8, **kw))


def test_shapes_patchify_and_zero_init_output():
    net = _net(patch=2)
    x = torch.randn(2, 5, 3, 4, 6)
    out = net(x, torch.zeros(2, 3))
    assert out.shape == (2, 4, 3, 4, 6)
    assert torch.count_nonzero(out) == 0  # adaLN-zero style init: F starts at 0, D starts as c_skip x


def test_text_and_cond_change_the_output_once_trained_weights_are_nonzero():
    net = _net(cond_dim=3)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, c = torch.randn(1, 5, 2, 4, 4), torch.zeros(1, 2)
    base = net(x, c)
    text = torch.randn(1, 3, 384)
    assert not torch.allclose(net(x, c, text=text), base)
    cond = torch.randn(1, 2, 3)
    assert not torch.allclose(net(x, c, cond=cond), base)
    # Masked-out text tokens do not matter.
    mask = torch.tensor([[True, True, False]])
    text2 = text.clone()
    text2[:, 2] = 100.0
    torch.testing.assert_close(net(x, c, text=text, text_mask=mask), net(x, c, text=text2, text_mask=mask))


def test_new_cond_slot_leaves_a_model_unchanged():
    net = _net()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    with_cond = _net(cond_dim=7)
    missing, unexpected = with_cond.load_state_dict(net.state_dict(), strict=False)
    assert set(missing) == {"cond_proj.weight", "cond_proj.bias"} and not unexpected
    x, c = torch.randn(1, 5, 2, 4, 4), torch.zeros(1, 2)
    torch.testing.assert_close(with_cond(x, c, cond=torch.randn(1, 2, 7)), net(x, c))


def test_presets_and_errors():
    assert 5e6 < DiT(dit_config("tiny", latent_channels=16)).num_params() < 25e6
    with pytest.raises(ValueError, match="unknown DiT preset"):
        dit_config("huge")
    with pytest.raises(ValueError, match="channels"):
        _net()(torch.randn(1, 3, 2, 4, 4), torch.zeros(1, 2))
