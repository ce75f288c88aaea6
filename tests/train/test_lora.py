import pytest
import torch
from torch import nn

from worldsmith.train.lora import LoRALinear, apply_lora, lora_state_dict, merge_lora, unmerge_lora


pytestmark = pytest.mark.usefixtures("one_thread")


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Sequential(nn.Linear(16, 16)), nn.Linear(16, 4))


def test_zero_init_leaves_outputs_unchanged_and_freezes_the_base():
    net, x = _net(), torch.randn(5, 8)
    before = net(x)
    assert apply_lora(net, rank=4, alpha=8) == 3
    assert torch.equal(net(x), before)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    assert set(lora_state_dict(net)) == trainable


def test_merge_and_unmerge_round_trip():
    net, x = _net(), torch.randn(5, 8)
    base_w = net[0].weight.detach().clone()
    apply_lora(net, rank=4, targets=["0"])
    assert isinstance(net[0], LoRALinear) and isinstance(net[3], nn.Linear)
    with torch.no_grad():
        net[0].lora_b.normal_()
    adapted = net(x)
    merge_lora(net)
    torch.testing.assert_close(net(x), adapted, rtol=1e-5, atol=1e-5)
    unmerge_lora(net)
    torch.testing.assert_close(net[0].base.weight, base_w, rtol=0, atol=1e-6)
    torch.testing.assert_close(net(x), adapted, rtol=1e-5, atol=1e-5)


def test_no_match_is_an_error():
    with pytest.raises(ValueError, match="no nn.Linear"):
        apply_lora(_net(), targets=["attention"])
