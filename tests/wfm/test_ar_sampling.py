"""AR sampling: seed determinism, filtering, speculative == plain, exact residual draws, sliding window."""

import torch

from worldsmith.wfm.ar_sampling import SamplingConfig, Stats, filtered_probs, generate, residual_sample
from worldsmith.wfm.gpt import GPT, GPTConfig, grid_positions, previous_frame_ids

torch.set_num_threads(1)


def tiny_model(seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(dim=64, depth=2, heads=4, kv_heads=2, grid=[3, 4, 4])).eval()


def static_prompt(b=2):
    """A prompt whose frames repeat, so copy-last-frame drafts have something to hit."""
    g = torch.Generator().manual_seed(3)
    frame = torch.randint(0, 64000, (b, 1, 4, 4), generator=g)
    return frame.repeat(1, 2, 1, 1)


def test_same_seed_same_video_other_seed_differs():
    m = tiny_model()
    p = static_prompt()
    a = generate(m, p, 2, SamplingConfig(temperature=1.0, top_k=4, seed=5))
    b = generate(m, p, 2, SamplingConfig(temperature=1.0, top_k=4, seed=5))
    c = generate(m, p, 2, SamplingConfig(temperature=1.0, top_k=4, seed=6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, :2], p)                      # the conditioning frames are kept as given
    assert a.shape == (2, 4, 4, 4) and int(a.min()) >= 0 and int(a.max()) < 64000


def test_batched_generation_matches_single_greedy():
    m = tiny_model()
    p = static_prompt(b=3)
    both = generate(m, p, 1, SamplingConfig(temperature=0))
    one = generate(m, p[1:2], 1, SamplingConfig(temperature=0))
    assert torch.equal(both[1:2], one)


def still_model() -> GPT:
    """A model briefly trained on still videos of one token (the loss path, and drafts that get accepted)."""
    from worldsmith.wfm.ar_train import ar_loss

    m = tiny_model()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for step in range(25):
        loss, _ = ar_loss(m, {"tokens": torch.full((4, 3, 4, 4), 12345)}, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 5.0                       # from ~11 nats at init
    return m.eval()


def test_speculative_greedy_equals_plain_greedy_with_fewer_passes():
    m = still_model()
    p = torch.full((2, 2, 4, 4), 12345)
    p[1, :, 0, 0] = 7                              # one token the drafts (copies) get wrong
    s_plain = Stats()
    plain = generate(m, p, 1, SamplingConfig(temperature=0, draft=0), stats=s_plain)
    for jacobi in (False, True):
        s_spec = Stats()
        spec = generate(m, p, 1, SamplingConfig(temperature=0, draft=8, jacobi=jacobi), stats=s_spec)
        assert torch.equal(plain, spec)
        assert s_plain.tokens == s_spec.tokens == 16
        assert s_spec.accepted > 8 and s_spec.passes < s_plain.passes / 2
    # sampling through the same model accepts drafts too and stays seeded
    cfg = SamplingConfig(temperature=1.0, draft=8, seed=4)
    s1 = Stats()
    a, b = generate(m, p, 1, cfg, stats=s1), generate(m, p, 1, cfg)
    assert torch.equal(a, b) and s1.accepted > 0


def test_greedy_tokens_are_the_argmax_of_uncached_logits():
    """The cached greedy loop (plain and speculative) picks, at every generated position, the argmax of a
    full uncached pass over the finished sequence (teacher forcing)."""
    m = tiny_model()
    p = static_prompt()
    for draft in (0, 5):
        out = generate(m, p, 1, SamplingConfig(temperature=0, draft=draft))
        targets = out.reshape(2, -1)
        inputs = torch.cat([torch.zeros_like(targets[:, :1]), targets[:, :-1]], dim=1)
        with torch.no_grad():
            logits = m(inputs, grid_positions(3, 4, 4), prev_ids=previous_frame_ids(targets, 16))
        assert torch.equal(m.codec.ids(logits.argmax(-1))[:, 32:], targets[:, 32:])


def test_speculative_sampling_keeps_prompt_and_is_seeded():
    m = tiny_model()
    p = static_prompt()
    cfg = SamplingConfig(temperature=0.7, top_p=0.9, draft=6, seed=2)
    a, b = generate(m, p, 3, cfg), generate(m, p, 3, cfg)
    assert torch.equal(a, b) and torch.equal(a[:, :2], p) and a.shape == (2, 5, 4, 4)


def test_filtered_probs_top_k_top_p_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    p = filtered_probs(logits, SamplingConfig(top_k=2))
    assert (p[0, 2:] == 0).all() and abs(float(p.sum()) - 1) < 1e-6
    p = filtered_probs(logits, SamplingConfig(top_p=0.5))
    assert p[0, 0] == 1.0                                  # the top entry alone holds > 0.5 of the mass
    p = filtered_probs(logits, SamplingConfig(temperature=0))
    assert p.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    hot, cold = filtered_probs(logits, SamplingConfig(temperature=2)), filtered_probs(logits, SamplingConfig(temperature=0.5))
    assert hot[0, 0] < cold[0, 0]


def test_residual_sample_is_the_target_without_the_draft():
    """Exact distribution check by enumeration on 2 digits x 3 classes."""
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.25, 0.25]])          # (G=2, K=3)
    draft = torch.tensor([0, 0])                                          # the most likely token
    n = 40000
    out = residual_sample(probs.expand(n, 2, 3).contiguous(), draft.expand(n, 2), g)
    assert not ((out[:, 0] == 0) & (out[:, 1] == 0)).any()
    joint = probs[0][:, None] * probs[1][None, :]
    joint[0, 0] = 0
    joint /= joint.sum()
    counts = torch.zeros(3, 3)
    counts.index_put_((out[:, 0], out[:, 1]), torch.ones(n), accumulate=True)
    assert (counts / n - joint).abs().max() < 0.01


def test_sliding_window_re_encodes_with_positions_from_zero():
    m = tiny_model()
    p = static_prompt()
    cfg = SamplingConfig(temperature=0)
    long = generate(m, p, 4, cfg, window=3, shift=1)                      # 6 frames through a 3-frame window
    short = generate(m, p, 1, cfg, window=3)
    assert torch.equal(long[:, :3], short)                                # identical while the window is not full
    # the first token after the slide is what a fresh pass over the kept frames [1, 2] predicts
    kept = long[:, 1:3].reshape(2, -1)
    inputs = torch.cat([torch.zeros_like(kept[:, :1]), kept], dim=1)
    prev = previous_frame_ids(torch.cat([kept, kept[:, :1]], dim=1), 16)   # the last target is unknown
    with torch.no_grad():
        logits = m(inputs, grid_positions(3, 4, 4)[:33], prev_ids=prev)
    assert torch.equal(m.codec.ids(logits[:, -1].argmax(-1)), long[:, 3, 0, 0])


def test_text2world_from_no_prompt():
    m = tiny_model()
    out = generate(m, torch.zeros(1, 0, 4, 4, dtype=torch.long), 2, SamplingConfig(seed=1),
                   text=torch.randn(1, 384))
    assert out.shape == (1, 2, 4, 4)
