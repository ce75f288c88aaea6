"""The DiT's fast paths (folded QK-norm RoPE, sigmoid-form GELU, dropped all-valid mask, cached RoPE tables) against
a plain reference forward written here from the textbook formulas, and the shipped checkpoint against it."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from worldsmith.config import from_dict
from worldsmith.wfm.dit import (DiT, DiTConfig, apply_rope, dit_config, gelu_tanh, normed_rope, normed_rope_tables,
                                rope_angles, rope_tables, signed_rope_tables, timestep_features)

pytestmark = pytest.mark.usefixtures("one_thread")

CKPT = Path(__file__).resolve().parents[2] / "checkpoints" / "diffusion-robot-tiny"


def _attend(q, k, v, mask=None):
    """(B, N, h, d) queries against (B, L, h, d) keys: softmax(q k^T / sqrt d) v, written out."""
    s = torch.einsum("bnhd,blhd->bhnl", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask[:, None, None, :], float("-inf"))
    return torch.einsum("bhnl,blhd->bnhd", s.softmax(-1), v)


def _rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def reference_forward(net: DiT, x, c_noise, text=None, text_mask=None):
    """The DiT's forward from its docstring, one plain op at a time (no fused or folded paths)."""
    cfg, p = net.cfg, net.cfg.patch
    B, C1, T, H, W = x.shape
    h, w, D, nh = H // p, W // p, cfg.width, cfg.heads
    hd = D // nh
    tok = x.view(B, C1, T, h, p, w, p).permute(0, 2, 3, 5, 1, 4, 6).reshape(B, T, h * w, C1 * p * p)
    tok = net.patch_in(tok)
    if text is None:
        text, text_mask = torch.zeros(B, 1, cfg.text_dim), torch.ones(B, 1, dtype=torch.bool)
    if text_mask is None:
        text_mask = torch.ones(text.shape[:2], dtype=torch.bool)
    m = text_mask.float()[..., None]
    emb = net.t_embed(timestep_features(c_noise, D)) + net.text_pool((text * m).sum(1) / m.sum(1).clamp(min=1))[:, None]
    emb = F.silu(emb)
    shared = net.shared_mod(emb)
    ctx = net.text_proj(text)
    ang = rope_angles(T, h, w, hd, cfg.rope_theta, cfg.rope_split)
    S, N, L = h * w, T * h * w, ctx.shape[1]
    for blk in net.blocks:
        mod = (shared + blk.ada_up(blk.ada_down(emb)))[:, :, None]
        sh1, sc1, g1, sh2, sc2, g2, sh3, sc3, g3 = mod.chunk(9, dim=-1)
        a = (F.layer_norm(tok, (D,), eps=1e-6) * (1 + sc1) + sh1).reshape(B, N, D)
        q, k, v = (t.reshape(B, N, nh, hd) for t in blk.attn.qkv(a).chunk(3, dim=-1))
        rot = lambda t: apply_rope(t.transpose(1, 2), ang).transpose(1, 2)  # noqa: E731
        q, k = rot(_rms(q, blk.attn.q_norm.weight)), rot(_rms(k, blk.attn.k_norm.weight))
        tok = tok + g1 * blk.attn.proj(_attend(q, k, v).reshape(B, N, D)).view(B, T, S, D)
        a = (F.layer_norm(tok, (D,), eps=1e-6) * (1 + sc2) + sh2).reshape(B, N, D)
        q = _rms(blk.cross.q(a).view(B, N, nh, hd), blk.cross.q_norm.weight)
        k, v = (t.reshape(B, L, nh, hd) for t in blk.cross.kv(ctx).chunk(2, dim=-1))
        y = _attend(q, _rms(k, blk.cross.k_norm.weight), v, text_mask)
        tok = tok + g2 * blk.cross.proj(y.reshape(B, N, D)).view(B, T, S, D)
        a = F.layer_norm(tok, (D,), eps=1e-6) * (1 + sc3) + sh3
        act = F.gelu(blk.mlp[0](a), approximate="tanh" if cfg.gelu == "tanh" else "none")
        tok = tok + g3 * blk.mlp[2](act)
    shift, scale = net.mod_out(emb)[:, :, None].chunk(2, dim=-1)
    out = net.patch_out(F.layer_norm(tok, (D,), eps=1e-6) * (1 + scale) + shift)
    C = cfg.latent_channels
    return out.view(B, T, h, w, C, p, p).permute(0, 4, 1, 2, 5, 3, 6).reshape(B, C, T, H, W)


def _random_net(gelu: str, **kw) -> DiT:
    torch.manual_seed(0)
    net = DiT(DiTConfig(latent_channels=4, width=32, depth=2, heads=2, adaln_lora_rank=8, gelu=gelu, **kw))
    for prm in net.parameters():
        torch.nn.init.normal_(prm, std=0.1)
    return net


@pytest.mark.parametrize("gelu", ["tanh", "exact"])
def test_fast_paths_match_the_reference_with_and_without_autograd(gelu):
    net = _random_net(gelu, patch=2)
    x, c = torch.randn(2, 5, 3, 4, 6), torch.randn(2, 3)
    text = torch.randn(2, 5, 384)
    for mask in (None, torch.ones(2, 5, dtype=torch.bool), torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]).bool()):
        ref = reference_forward(net, x, c, text, mask)
        with torch.no_grad():                                   # inference path: folded tables, sigmoid GELU
            torch.testing.assert_close(net(x, c, text=text, text_mask=mask), ref, rtol=1e-4, atol=1e-5)
        out = net(x, c, text=text, text_mask=mask)              # training path
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # Gradients of the training path equal those of the reference.
    g_fast = torch.autograd.grad(out.square().sum(), list(net.parameters()))
    g_ref = torch.autograd.grad(reference_forward(net, x, c, text, mask).square().sum(), list(net.parameters()))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net(x, c), reference_forward(net, x, c))   # no text at all


def test_rope_tables_are_cached_per_grid_and_usable_after_inference_mode():
    net = _random_net("exact")
    x, c = torch.randn(1, 5, 2, 4, 4), torch.zeros(1, 2)
    with torch.inference_mode():
        net(x, c)
    net(x, c).sum().backward()                 # tables built under inference_mode still work with autograd
    net(torch.randn(1, 5, 3, 4, 4), torch.zeros(1, 3))
    assert sorted(k[:3] for k in net._rope_cache) == [(2, 4, 4), (3, 4, 4)]
    assert "_rope_cache" not in str(list(net.state_dict()))


def test_gelu_tanh_and_normed_rope_pieces():
    x = torch.linspace(-8, 8, 2001, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gelu_tanh(x), F.gelu(x, approximate="tanh"))
    torch.manual_seed(0)
    hd, N = 16, 12
    ang = rope_angles(2, 2, 3, hd, 10000.0)
    cos, sin = rope_tables(ang)
    scos, ssin = signed_rope_tables(ang)
    torch.testing.assert_close(scos, cos)
    v, w = torch.randn(3, N, 2, 4, hd), torch.randn(2, 1, hd)
    ref = apply_rope(_rms(v, w).transpose(1, 3), ang).transpose(1, 3)
    torch.testing.assert_close(normed_rope(v, normed_rope_tables(scos, ssin, w), 1e-6), ref, rtol=1e-5, atol=1e-5)


def test_gelu_config():
    assert DiTConfig().gelu == "tanh"                  # configs saved before the field existed keep their GELU
    assert all(dit_config(p).gelu == "exact" for p in ("nano", "tiny", "small", "base"))
    with pytest.raises(ValueError, match="unknown gelu"):
        DiT(DiTConfig(width=32, depth=1, heads=2, adaln_lora_rank=4, gelu="relu"))


@pytest.mark.skipif(not (CKPT / "ema.safetensors").exists(), reason="shipped checkpoint not present")
def test_shipped_checkpoint_loads_and_matches_the_reference():
    from safetensors.torch import load_file

    cfg = from_dict(DiTConfig, json.loads((CKPT / "config.json").read_text())["model"])
    net = DiT(cfg)
    net.load_state_dict(load_file(str(CKPT / "ema.safetensors")), strict=True)
    torch.manual_seed(0)
    x, c = torch.randn(1, cfg.latent_channels + 1, 3, 8, 8), torch.randn(1, 3) * 0.5
    text = torch.randn(1, 4, cfg.text_dim)
    with torch.no_grad():
        torch.testing.assert_close(net(x, c, text=text), reference_forward(net, x, c, text), rtol=1e-4, atol=1e-4)
