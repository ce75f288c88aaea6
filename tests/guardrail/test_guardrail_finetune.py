"""The tuned member of the semantic check: zero-initialised adapters read MiniLM unchanged, training moves
them without touching the shared encoder, the weights round-trip, and the logit mean of the two members."""

from dataclasses import replace

import numpy as np
import pytest

from worldsmith.guardrail.dataset import LABELS
from worldsmith.guardrail.finetune import TunedMember, _adapted_copy, fit_tuned, lora_state
from worldsmith.guardrail.semantic import SemanticClassifier, SemanticConfig, logit_mean
from worldsmith.text import EMBED_DIM, embed_texts, embed_texts_layers

LAYERS = (2, 4, 6)
TEXTS = ["a robot arm stacks red cubes", "a man stabs a stranger in an alley",
         "a car parks by the kerb", "someone cuts her wrists in the bath"]


def _member(rank=2, from_layer=4, seed=0, scale=0.0):
    bert = _adapted_copy(rank, from_layer)
    rng = np.random.default_rng(seed)
    lora = {k: (v.numpy() if k.endswith("lora_a") else scale * rng.normal(size=v.shape)).astype(np.float32)
            for k, v in lora_state(bert).items()}
    head = (rng.normal(size=(len(LABELS), 8)).astype(np.float32), np.zeros(len(LABELS), np.float32),
            (rng.normal(size=(8, EMBED_DIM * len(LAYERS))).astype(np.float32), np.zeros(8, np.float32)))
    return TunedMember(lora, rank, from_layer, head)


def test_zero_adapters_read_minilm_unchanged_and_nonzero_ones_do_not():
    frozen = embed_texts_layers(TEXTS, LAYERS)
    zero = _member(scale=0.0)
    assert np.allclose(zero.features(TEXTS, LAYERS), frozen, atol=1e-5)
    moved = _member(scale=0.05)
    assert moved.cache_key != zero.cache_key
    x = moved.features(TEXTS, LAYERS)
    # adapters on layers 4 and 5 (0-based) leave layer 2's block alone and move the later ones
    assert np.allclose(x[:, :EMBED_DIM], frozen[:, :EMBED_DIM], atol=1e-5)
    assert np.abs(x[:, EMBED_DIM:] - frozen[:, EMBED_DIM:]).max() > 1e-2


def test_training_moves_the_adapters_and_leaves_the_shared_encoder_alone():
    before = embed_texts(TEXTS).copy()
    cfg = replace(SemanticConfig(), tune_rank=2, tune_from_layer=4, tune_epochs=6, tune_batch=4, hidden=8,
                  tune_lr=3e-3, tune_head_lr=1e-2)
    groups = [([t], LABELS.index(lab)) for t, lab in zip(TEXTS, ["safe", "violence", "safe", "self_harm"])]
    losses = []
    member, last_loss = fit_tuned(groups, cfg, seed=0, n_classes=len(LABELS),
                                  progress=lambda i, n, loss: losses.append(loss))
    assert len(losses) == 6 and last_loss == pytest.approx(np.mean(losses))
    assert losses[-1] < losses[0]  # four texts, six steps: the loss must fall
    assert max(np.abs(v).max() for k, v in member.lora.items() if k.endswith("lora_b")) > 0  # B left zero init
    from worldsmith.text import _model

    assert not any("lora" in n for n, _ in _model()[0].auto_model.named_parameters())
    embed_texts.__globals__["_cache"].clear()  # recompute: the shared model itself must be unchanged
    assert np.allclose(embed_texts(TEXTS), before, atol=1e-6)


def test_tuned_member_round_trips_and_is_averaged_in_logit_space(tmp_path):
    rng = np.random.default_rng(3)
    d = EMBED_DIM * len(LAYERS)
    frozen = (rng.normal(size=(len(LABELS), 8)), np.zeros(len(LABELS)), (rng.normal(size=(8, d)), np.zeros(8)))
    member = _member(scale=0.05, seed=4)
    clf = SemanticClassifier(*frozen[:2], LABELS, 0.3, {"threshold": 0.7}, frozen[2], LAYERS, (), member)
    clf.save(tmp_path / "tuned.safetensors")
    back = SemanticClassifier.load(tmp_path / "tuned.safetensors")
    assert back.tuned is not None and back.tuned.cache_key == member.cache_key and "tuned" not in back.meta
    texts = ["a robot arm stacks red cubes"]
    (p_back, cat_back), (p_clf, cat_clf) = back.score(texts)[0], clf.score(texts)[0]
    assert p_back == pytest.approx(p_clf, rel=1e-5) and cat_back == cat_clf
    alone = SemanticClassifier(*frozen[:2], LABELS, 0.3, {}, frozen[2], LAYERS)
    p_frozen = alone.probs(alone.features(texts))[0, 1:].sum()
    p_tuned = alone._head_probs(member.features(texts, LAYERS), *member.head)[0, 1:].sum()
    assert clf.score(texts)[0][0] == pytest.approx(float(logit_mean(np.array([p_frozen]), np.array([p_tuned]))[0]),
                                                   rel=1e-4)
    with pytest.raises(ValueError, match="layered features"):
        SemanticClassifier(*frozen[:2], LABELS, 0.3, {}, frozen[2], None, (), member)


def test_tuned_member_alone_round_trips_and_scores_as_its_head(tmp_path):
    member = _member(scale=0.05, seed=4)
    clf = SemanticClassifier(None, None, LABELS, 0.3, {"threshold": 0.6}, None, LAYERS, (), member)
    assert clf.frozen_weight == 0.0
    clf.save(tmp_path / "alone.safetensors")
    back = SemanticClassifier.load(tmp_path / "alone.safetensors")
    assert back.weight is None and back.tuned is not None and back.threshold == 0.6 and back.frozen_weight == 0.0
    texts = ["a robot arm stacks red cubes"]
    p_tuned = back._head_probs(member.features(texts, LAYERS), *member.head)[0, 1:].sum()
    assert back.score(texts)[0][0] == pytest.approx(float(p_tuned), rel=1e-4)
    with pytest.raises(ValueError, match="no frozen-feature heads"):
        back.probs(np.zeros((1, EMBED_DIM * len(LAYERS)), np.float32))
    with pytest.raises(ValueError, match="heads, a tuned member or both"):
        SemanticClassifier(None, None, LABELS, 0.3)


def test_frozen_weight_sets_the_heads_share_in_logit_space():
    rng = np.random.default_rng(5)
    frozen = (rng.normal(size=(len(LABELS), 8)), np.zeros(len(LABELS)),
              (rng.normal(size=(8, EMBED_DIM * len(LAYERS))), np.zeros(8)))
    member = _member(scale=0.05, seed=6)
    texts = ["a robot arm stacks red cubes"]
    alone = SemanticClassifier(*frozen[:2], LABELS, 0.3, {}, frozen[2], LAYERS)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    zf = logit(alone.probs(alone.features(texts))[0, 1:].sum())
    zt = logit(alone._head_probs(member.features(texts, LAYERS), *member.head)[0, 1:].sum())
    for meta, w in (({}, 0.5), ({"frozen_weight": "0.25"}, 0.25), ({"frozen_weight": "1.0"}, 1.0)):
        clf = SemanticClassifier(*frozen[:2], LABELS, 0.3, meta, frozen[2], LAYERS, (), member)
        assert clf.frozen_weight == w  # weights saved before the field existed: 0.5, the plain logit mean
        assert clf.score(texts)[0][0] == pytest.approx(1 / (1 + np.exp(-(w * zf + (1 - w) * zt))), rel=1e-4)


def test_the_text_as_written_counts_only_when_the_weights_say_so():
    from worldsmith.guardrail.semantic import readings

    member = _member(scale=0.05, seed=7)
    text = "a man s.t.a.b.s a stranger in an a-l-l-e-y"
    rs = readings(text)
    assert len(rs) > 1 and rs[0] == text  # as written first, then the normalised readings
    alone = SemanticClassifier(None, None, LABELS, 0.3, {}, None, LAYERS, (), member)
    per_reading = alone._head_probs(member.features(rs, LAYERS), *member.head)[:, 1:].sum(1)
    assert alone.score_as_written  # weights saved before the field existed score every reading
    assert alone.score([text])[0][0] == pytest.approx(float(per_reading.max()), rel=1e-4)
    without = SemanticClassifier(None, None, LABELS, 0.3, {"score_as_written": "False"}, None, LAYERS, (), member)
    assert without.score([text])[0][0] == pytest.approx(float(per_reading[1:].max()), rel=1e-4)
    plain = "a robot arm stacks red cubes"  # one reading: it counts either way
    assert len(readings(plain)) == 1 and without.score([plain]) == alone.score([plain])


def test_fit_leaves_the_heads_out_when_their_weight_is_zero():
    from worldsmith.guardrail.semantic import _fit

    groups = [([t], LABELS.index(y)) for t, y in zip(TEXTS, ["safe", "violence", "safe", "self_harm"])]
    cfg = SemanticConfig(epochs=3, heads=1, tune_rank=2, tune_from_layer=4, tune_epochs=1, tune_batch=4,
                         frozen_weight=0.0, score_as_written=False)
    alone = _fit(groups, cfg, {})
    assert alone.weight is None and alone.tuned is not None and "frozen_weight" not in alone.meta
    assert alone.meta["score_as_written"] is False and not alone.score_as_written
    both = _fit(groups, replace(cfg, frozen_weight=0.3), {})
    assert SemanticConfig().frozen_weight == 0.0 and not SemanticConfig().score_as_written  # the shipped recipe
    assert both.weight is not None and both.meta["frozen_weight"] == 0.3 and both.frozen_weight == 0.3
    assert len(alone.meta["final_loss"].split()) == 2 and len(both.meta["final_loss"].split()) == 3


def test_logit_mean():
    p = np.array([0.1, 0.5, 0.9])
    assert np.allclose(logit_mean(p, p), p)
    assert np.allclose(logit_mean(np.array([0.999]), np.array([0.001])), 0.5)
    assert np.allclose(logit_mean(p, p[::-1]), logit_mean(p[::-1], p))
    # a confident member pulls harder than with a probability mean: 0.99 and 0.3 -> 0.87 (mean 0.645)
    assert logit_mean(np.array([0.99]), np.array([0.3]))[0] > 0.85
    assert np.allclose(logit_mean(p), p) and np.allclose(logit_mean(p, p[::-1], weights=[1, 0]), p)


def test_length_grouped_batches_keep_every_text_once_and_pad_less():
    import random

    from worldsmith.guardrail.finetune import length_grouped_batches

    rng = random.Random(0)
    pool = [(f"text {i}", i % 3) for i in range(1000)]
    lengths = [rng.randint(5, 60) for _ in pool]
    length_of = dict(zip(pool, lengths))
    batches = length_grouped_batches(pool, lengths, 32, random.Random(1))
    assert sorted(x for b in batches for x in b) == sorted(pool)  # every text once
    assert len(batches) == -(-len(pool) // 32)  # as many steps as plain batches
    padded = sum(max(length_of[x] for x in b) * len(b) for b in batches)
    plain = sum(max(lengths[s:s + 32]) * len(lengths[s:s + 32]) for s in range(0, len(pool), 32))
    assert padded < 0.7 * plain
    assert batches == length_grouped_batches(pool, lengths, 32, random.Random(1))  # seeded
    assert [len(b) for b in batches].count(32) >= len(batches) - 2  # one short batch per chunk at most
