import math

import pytest
import torch

from worldsmith.wfm.dit import DiT, DiTConfig
from worldsmith.wfm.edm import (EDMConfig, edm_loss, generate, karras_sigmas, loss_weight, precondition,
                                sample_euler, sample_heun)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_preconditioning_identities():
    sd = 0.5
    sigma = torch.logspace(-3, 2, 50, dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = precondition(sigma, sd)
    # c_in scales the noisy input x = y + n (std sqrt(sigma^2 + sd^2)) to unit variance.
    torch.testing.assert_close(c_in**2 * (sigma**2 + sd**2), torch.ones_like(sigma))
    # The effective training target (y - c_skip (y + n)) / c_out has unit variance (EDM eq. 8 derivation).
    target_var = ((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2
    torch.testing.assert_close(target_var, torch.ones_like(sigma))
    # lambda(sigma) c_out^2 = 1: equal loss weight at every noise level.
    torch.testing.assert_close(loss_weight(sigma, sd) * c_out**2, torch.ones_like(sigma))
    # Limits: the denoiser passes x through at sigma -> 0, predicts from F alone at large sigma.
    assert c_skip[0] > 0.9999 and c_out[0] < 0.0021 and c_skip[-1] < 3e-5
    torch.testing.assert_close(c_noise, sigma.log() / 4)


def test_karras_schedule():
    s = karras_sigmas(10, 0.002, 80.0, 7.0)
    assert len(s) == 11 and s[-1] == 0
    assert s[0] == pytest.approx(80.0) and s[-2] == pytest.approx(0.002)
    assert torch.all(s[:-1] > s[1:])


def _gaussian_case():
    # Data N(mu, s^2): the exact denoiser is E[y | x] = mu + s^2/(s^2 + sigma^2) (x - mu), so the probability-flow
    # ODE must carry N(mu, s^2 + sigma_max^2) onto N(mu, s^2).
    mu, s, smax = 1.5, 0.3, 80.0
    den = lambda x, sigma: mu + s**2 / (s**2 + sigma[:, None] ** 2) * (x - mu)  # noqa: E731
    z = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = mu + (z - z.mean()) / z.std() * math.sqrt(s**2 + smax**2)
    return den, x, mu, s, smax


@pytest.mark.parametrize("sampler,steps,tol", [(sample_euler, 256, 0.02), (sample_heun, 64, 0.01)])
def test_samplers_converge_on_a_gaussian(sampler, steps, tol):
    den, x, mu, s, smax = _gaussian_case()
    out = sampler(den, x, karras_sigmas(steps, 0.002, smax, 7.0).double())
    assert out.mean().item() == pytest.approx(mu, abs=1e-3)
    assert out.std().item() == pytest.approx(s, rel=tol)


def test_heun_beats_euler_at_equal_evaluations():
    den, x, mu, s, smax = _gaussian_case()
    err = lambda f, n: abs(f(den, x, karras_sigmas(n, 0.002, smax, 7.0).double()).std().item() - s)  # noqa: E731
    assert err(sample_heun, 32) < 0.5 * err(sample_euler, 63)


def _tiny_net():
    torch.manual_seed(0)
    net = DiT(DiTConfig(latent_channels=4, width=32, depth=2, heads=2, adaln_lora_rank=8))
    for p in net.parameters():  # leave the zero init so outputs depend on every layer
        torch.nn.init.normal_(p, std=0.05)
    return net.eval()


def test_given_frames_are_reproduced_in_the_output():
    net, cfg = _tiny_net(), EDMConfig()
    context = torch.randn(2, 4, 4, 4, 4) * 0.5
    out = generate(net, context.shape, cfg, context=context, n_given=2, steps=3, sampler="euler")
    assert torch.equal(out[:, :, :2], context[:, :, :2])
    assert not torch.allclose(out[:, :, 2:], context[:, :, 2:])
    assert torch.isfinite(out).all()


def test_generated_frames_depend_on_the_given_frames():
    net, cfg = _tiny_net(), EDMConfig()
    a = torch.randn(1, 4, 3, 4, 4)
    b = a.clone()
    b[:, :, 0] += 1.0
    torch.manual_seed(5)
    out_a = generate(net, a.shape, cfg, context=a, n_given=1, steps=2, sampler="euler")
    torch.manual_seed(5)
    out_b = generate(net, b.shape, cfg, context=b, n_given=1, steps=2, sampler="euler")
    assert not torch.allclose(out_a[:, :, 1:], out_b[:, :, 1:])


def test_loss_trains_down_on_a_fixed_latent():
    torch.manual_seed(0)
    net = DiT(DiTConfig(latent_channels=4, width=32, depth=2, heads=2, adaln_lora_rank=8))
    x0 = torch.randn(1, 4, 3, 4, 4).expand(4, -1, -1, -1, -1) * 0.5
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def losses():
        out = []
        for seed in range(2):  # the same 2 noise draws every time: a loss the net can fit
            torch.manual_seed(seed)
            out.append(edm_loss(net, x0, EDMConfig(), n_given=1)[0])
        return out

    with torch.no_grad():
        before = sum(l.item() for l in losses())
    for _ in range(30):
        loss = sum(losses())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = sum(l.item() for l in losses())
    assert after < 0.5 * before


def _spread_between_seeds(temperature: float) -> float:
    net, cfg = _tiny_net(), EDMConfig()
    context = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.5
    outs = []
    for seed in range(2):
        torch.manual_seed(7)  # the given frames' augmentation noise: the same for both seeds
        outs.append(generate(net, context.shape, cfg, context=context, n_given=1, steps=3, sampler="heun",
                             temperature=temperature, generator=torch.Generator().manual_seed(seed)))
    return (outs[0] - outs[1])[:, :, 1:].abs().mean().item()


def test_temperature_scales_how_much_samples_differ():
    full, low, zero = (_spread_between_seeds(t) for t in (1.0, 0.2, 0.0))
    assert zero == 0.0                  # a deterministic forecast: the seed no longer moves the generated frames
    assert 0.0 < low < 0.5 * full


def test_negative_temperature_is_refused():
    net, cfg = _tiny_net(), EDMConfig()
    with pytest.raises(ValueError, match="temperature"):
        generate(net, (1, 4, 2, 4, 4), cfg, steps=2, temperature=-0.1)
