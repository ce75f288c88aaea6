"""int8 CPU decoding: a quantised copy that leaves the trained model alone and decodes like it (approximately)."""

import torch

from worldsmith.wfm.ar_sampling import SamplingConfig, Stats, generate
from worldsmith.wfm.gpt import GPT, GPTConfig, grid_positions, quantize_int8, teacher_forcing_inputs

torch.set_num_threads(1)


def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(dim=64, depth=2, heads=4, kv_heads=2, grid=[3, 4, 4])).eval()


def test_int8_copy_keeps_the_state_dict_and_approximates_the_logits():
    m = tiny_model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    q = quantize_int8(m)
    after = m.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(type(mod) is torch.nn.Linear for mod in q.modules())          # every Linear swapped
    assert any(type(mod) is torch.nn.Linear for mod in m.modules())              # ... in the copy only
    inputs, _ = teacher_forcing_inputs(torch.randint(0, 64000, (2, 3, 4, 4)))
    pos = grid_positions(3, 4, 4)
    with torch.no_grad():
        a, b = m(inputs, pos), q(inputs, pos)
    fin = torch.isfinite(a)
    assert torch.equal(fin, torch.isfinite(b))
    a, b = a[fin], b[fin]
    assert not torch.equal(a, b)                                                  # it is quantised
    assert torch.nn.functional.cosine_similarity(a - a.mean(), b - b.mean(), dim=0) > 0.99


def test_int8_speculative_greedy_equals_int8_plain_greedy():
    q = quantize_int8(tiny_model())
    p = torch.randint(0, 64000, (2, 1, 4, 4)).repeat(1, 2, 1, 1)
    s = Stats()
    plain = generate(q, p, 2, SamplingConfig(temperature=0))
    spec = generate(q, p, 2, SamplingConfig(temperature=0, draft=8), stats=s)
    assert torch.equal(plain, spec) and s.tokens == 32
