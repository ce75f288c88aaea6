"""The labelled prompt set and its splits: held-out prompts never reach training or calibration."""

import pytest

from worldsmith.guardrail import dataset
from worldsmith.guardrail.dataset import (LABELS, PROMPTS, SEALED_PROMPTS, Prompt, folds, load_prompts, split,
                                        split_draw)


def test_calibration_never_sees_heldout_prompts():
    """The threshold's out-of-fold prompts are the train split, disjoint from held-out."""
    train, held = split(load_prompts(), 0.3, 0)
    held_texts = {p.text for p in held}
    assert not held_texts & {p.text for p in train}
    assert {p.text for p in load_prompts()} == held_texts | {p.text for p in train}


def test_folds_partition_the_train_split_by_text_and_are_balanced():
    train, _ = split(load_prompts(), 0.3, 0)
    k = 5
    fold = folds(train, k, 1)
    assert folds(train, k, 1) == fold and set(fold) == set(range(k))
    sizes = [fold.count(f) for f in range(k)]
    assert min(sizes) > 0.6 * len(train) / k and max(sizes) < 1.4 * len(train) / k
    # a prompt's fold is its own text's: reordering or growing the set moves no prompt between folds
    assert folds(train[::-1], k, 1) == fold[::-1]
    assert fold != folds(train, k, 2)


def test_split_is_deterministic_and_close_to_the_fraction_per_label():
    prompts = load_prompts()
    train, held = split(prompts, 0.3, 0)
    assert split(prompts, 0.3, 0) == (train, held)
    for label in LABELS:
        n = sum(p.label == label for p in prompts)
        k = sum(p.label == label for p in held)
        assert abs(k - 0.3 * n) <= 3 * (0.21 * n) ** 0.5 + 1  # within 3 binomial standard deviations


def test_adding_prompts_never_moves_existing_ones_between_splits():
    """The side of a prompt is a hash of its own text: a grown prompt set keeps every old prompt
    where it was (a seeded shuffle would move many and leak held-out prompts into training)."""
    prompts = load_prompts()
    _, held = split(prompts, 0.3, 0)
    extra = [Prompt(f"A robot arm stacks {n} cups on a tray", "safe") for n in range(200)]
    mixed = extra[:100] + prompts[::-1] + extra[100:]
    _, held_grown = split(mixed, 0.3, 0)
    assert {p.text for p in held} == {p.text for p in held_grown if p not in extra}
    assert split_draw("some prompt", 0) == split_draw("some prompt", 0) != split_draw("some prompt", 1)


def test_the_sealed_set_is_disjoint_from_the_training_prompts_and_covers_every_label():
    """The sealed prompts estimate the guard on text nothing was fitted to: none may appear in prompts.txt, where
    training, calibration or error analysis could see it (compared case-folded, spaces squeezed)."""
    norm = lambda t: " ".join(t.casefold().split())  # noqa: E731
    sealed = load_prompts(SEALED_PROMPTS)
    assert len(sealed) == 1200 and len({norm(p.text) for p in sealed}) == 1200
    assert not {norm(p.text) for p in sealed} & {norm(p.text) for p in load_prompts()}
    assert {p.label for p in sealed} == set(LABELS) and sum(p.unsafe for p in sealed) == 600


def test_a_bad_line_names_its_file_and_line(monkeypatch):
    monkeypatch.setattr(dataset, "prompts_text", lambda name=PROMPTS: "# header\nsafe\ta cat\nunsafe\tthis label is wrong\n")
    with pytest.raises(ValueError, match=r"^sealed_prompts\.txt:3: expected"):
        load_prompts(SEALED_PROMPTS)
