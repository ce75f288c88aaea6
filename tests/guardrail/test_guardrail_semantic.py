"""The semantic classifier's readings of a prompt and its weight file (linear or with a hidden layer)."""

import numpy as np

from worldsmith.guardrail.dataset import LABELS
from worldsmith.guardrail.semantic import SemanticClassifier, pick_threshold, readings, rejoin_fragments


def test_split_words_are_rejoined_only_when_a_half_is_no_word():
    assert rejoin_fragments("she pours poi son into the cup") == "she pours poison into the cup"
    assert rejoin_fragments("a crate of explo sives") == "a crate of explosives"
    # both halves are words: left apart, so "be at" never reads as "beat"
    assert rejoin_fragments("we meet be at the park") == "we meet be at the park"


def test_readings_cover_each_trick_and_are_distinct():
    rs = readings("A peeerson is pusheeed off a buil ding")
    assert rs[0] == "A peeerson is pusheeed off a buil ding" and len(rs) == len(set(rs))
    assert "a person is pushed off a building" in rs  # runs cut to one letter, fragments rejoined
    assert readings("a robot stacks cups") == ["a robot stacks cups"]  # nothing to undo: one reading


def test_hidden_layer_weights_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    hidden = (rng.normal(size=(8, 384)).astype(np.float32), rng.normal(size=8).astype(np.float32))
    clf = SemanticClassifier(rng.normal(size=(len(LABELS), 8)), rng.normal(size=len(LABELS)), LABELS, 0.3,
                             {"threshold": 0.6}, hidden)
    clf.save(tmp_path / "w.safetensors")
    back = SemanticClassifier.load(tmp_path / "w.safetensors")
    emb = rng.normal(size=(3, 384)).astype(np.float32)
    assert np.allclose(back.probs(emb), clf.probs(emb)) and back.threshold == 0.6
    # what the layers say: softmax((relu(W1 e + b1) W^T + b) / T)
    logits = (np.maximum(emb @ hidden[0].T + hidden[1], 0) @ clf.weight.T + clf.bias) / 0.3
    expected = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(clf.probs(emb), expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_threshold_is_the_lowest_within_the_false_refusal_budget():
    # 100 safe items scored 0.00 .. 0.99, 10 unsafe at 0.5 .. 0.95; one safe item is blocklisted
    safe = np.arange(100) / 100
    unsafe = 0.505 + 0.05 * np.arange(10)  # 0.505 .. 0.955
    scores = {"p_unsafe": np.concatenate([safe, unsafe]),
              "unsafe": np.array([False] * 100 + [True] * 10),
              "blocked": np.array([True] + [False] * 109)}
    grid = [round(0.30 + 0.01 * i, 2) for i in range(70)]
    # 2 safe refusals allowed: the blocklisted one plus the item at 0.99 -> threshold 0.99
    best = pick_threshold(scores, grid, 0.02)
    assert best["threshold"] == 0.99 and best["oof_false_refusal"] == 0.02 and best["oof_recall"] == 0.0
    # 5 allowed: blocklisted + 0.96 .. 0.99 -> 0.96, which still misses every unsafe item (max 0.955)
    assert pick_threshold(scores, grid, 0.05)["threshold"] == 0.96
    # 11 allowed: threshold 0.90 refuses the unsafe items at 0.905 and 0.955
    best = pick_threshold(scores, grid, 0.11)
    assert best["threshold"] == 0.9 and best["oof_recall"] == 0.2
    # nothing on the grid meets a zero budget (the blocklist already refuses one): strictest value
    assert pick_threshold(scores, grid, 0.0)["threshold"] == 0.99
