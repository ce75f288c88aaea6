"""The labelled prompt set and its splits: held-out prompts never reach training or calibration."""

from worldsmith.guardrail.dataset import LABELS, load_prompts, split


def test_calibration_never_sees_heldout_prompts():
    """The threshold's validation prompts are a part of the train split, disjoint from held-out."""
    train, held = split(load_prompts(), 0.3, 0)
    fit, val = split(train, 0.25, 1)
    held_texts = {p.text for p in held}
    assert not held_texts & {p.text for p in train}
    assert {p.text for p in fit} | {p.text for p in val} == {p.text for p in train}
    assert not {p.text for p in val} & held_texts


def test_split_is_stratified_and_deterministic():
    prompts = load_prompts()
    train, held = split(prompts, 0.3, 0)
    assert split(prompts, 0.3, 0) == (train, held)
    for label in LABELS:
        n = sum(p.label == label for p in prompts)
        assert sum(p.label == label for p in held) == round(0.3 * n)
