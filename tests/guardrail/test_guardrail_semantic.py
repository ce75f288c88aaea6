"""The semantic classifier's readings of a prompt, its input features (MiniLM layers) and its weight file
(linear or with a hidden layer)."""

import os

import numpy as np
import pytest

from worldsmith.guardrail.dataset import LABELS
from worldsmith.guardrail.semantic import (SemanticClassifier, SemanticConfig, default_weights_path, pick_threshold,
                                           readings, rejoin_fragments, splits_article, strip_request_frame)
from worldsmith.text import EMBED_DIM, embed_texts, embed_texts_layers


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


def test_spaced_letters_after_an_article_read_as_the_article_and_the_word():
    assert splits_article("amassacre") and splits_article("ichemical") and splits_article("abomb")
    # a word of the vocabulary, or no fewer word pieces without the first letter: joined whole
    assert not splits_article("autonomous") and not splits_article("abcd") and not splits_article("skyscraper")
    assert "the aftermath of a massacre with bodies everywhere" in readings("the aftermath of a m a s s a c r e with bodies everywhere")
    assert "an autonomous car hunts a cyclist" in readings("An a u t o n o m o u s car hunts a c y c l i s t")


@pytest.mark.parametrize("text, scene", [
    ("Generate a video of a robot arm stacking blocks", "a robot arm stacking blocks"),
    ("Please make me a realistic 10 second clip where a dog runs on a beach", "a dog runs on a beach"),
    ("Realistic footage of a forklift moving pallets", "a forklift moving pallets"),
    ("Dashcam clip: a truck overtakes on the left", "a truck overtakes on the left"),
    ("Show me how to fold a paper plane", "how to fold a paper plane"),
    ("Can you make a video where a robot pours coffee?", "a robot pours coffee?"),
])
def test_the_request_around_a_scene_is_not_scored(text, scene):
    assert strip_request_frame(text) == scene
    assert all(r == scene or not r.lower().startswith(("generate", "make", "realistic", "dashcam", "show", "can"))
               for r in readings(text))


@pytest.mark.parametrize("text", [
    "A man shows a video of a rocket launch to his son",  # "video" inside the scene
    "Make the man watch a video of his kids",  # "make" is part of the act
    "Shoot him in the head on camera",
    "Create an animation showing a knight fighting a dragon",  # "animation" changes what is asked
    "How-to video: sharpening a kitchen knife",
    "Footage of riots",  # nothing but the request would be left
])
def test_scenes_that_only_look_like_a_request_are_kept_whole(text):
    assert strip_request_frame(text) == text


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


def test_threshold_simulates_context_terms_as_the_guard_does():
    # two safe items whose only hits are context terms ("bombed the exam"): refused only at P(unsafe) >= 0.3
    scores = {"p_unsafe": np.array([0.1, 0.5, 0.95, 0.2]), "unsafe": np.array([False, False, True, True]),
              "blocked": np.zeros(4, bool), "context": np.array([True, True, False, True])}
    at = pick_threshold(scores, [0.9], 1.0)
    assert at["oof_false_refusal"] == 0.5 and at["oof_recall"] == 0.5  # the 0.5 one; the unsafe 0.2 one passes
    # a disguised context term ("b0mbed"): refused from P(unsafe) 0.02
    scores["disguised"] = np.array([True, False, False, True])
    at = pick_threshold(scores, [0.9], 1.0)
    assert at["oof_false_refusal"] == 1.0 and at["oof_recall"] == 1.0
    del scores["context"], scores["disguised"]  # scores saved before context terms: only the classifier's threshold
    assert pick_threshold(scores, [0.9], 1.0)["oof_false_refusal"] == 0.0


def test_layer_features_are_unit_blocks_and_the_last_is_the_sentence_embedding():
    texts = ["A man smothers his elderly mother with a pillow", "a robot stacks cups"]
    x = embed_texts_layers(texts, (2, 4, 6))
    assert x.shape == (2, 3 * EMBED_DIM) and x.dtype == np.float32
    blocks = x.reshape(2, 3, EMBED_DIM)
    assert np.allclose(np.linalg.norm(blocks, axis=2), 1.0, atol=1e-5)
    # layer 6's mean-pooled block is what sentence_transformers returns (same pooling, same model)
    assert np.allclose(blocks[:, 2], embed_texts(texts), atol=1e-5)
    # the middle layers are other vectors, not copies of the last one
    assert np.abs(blocks[:, 0] - blocks[:, 2]).max() > 0.1 and np.abs(blocks[:, 1] - blocks[:, 2]).max() > 0.1
    # the order of `layers` is the order of the blocks, and the cache keeps layer sets apart
    assert np.array_equal(embed_texts_layers(texts, (6, 2))[:, :EMBED_DIM], x[:, 2 * EMBED_DIM:])


def test_layers_round_trip_and_weights_without_them_read_the_sentence_embedding(tmp_path):
    rng = np.random.default_rng(1)
    d = 2 * EMBED_DIM
    clf = SemanticClassifier(rng.normal(size=(len(LABELS), d)), np.zeros(len(LABELS)), LABELS, 0.3, {}, None, (4, 6))
    clf.save(tmp_path / "layers.safetensors")
    back = SemanticClassifier.load(tmp_path / "layers.safetensors")
    assert back.layers == (4, 6) and "layers" not in back.meta
    assert np.array_equal(back.features(["a cat"]), embed_texts_layers(["a cat"], (4, 6)))
    old = SemanticClassifier(rng.normal(size=(len(LABELS), EMBED_DIM)), np.zeros(len(LABELS)), LABELS, 0.3)
    old.save(tmp_path / "old.safetensors")
    back = SemanticClassifier.load(tmp_path / "old.safetensors")
    assert back.layers is None and np.array_equal(back.features(["a cat"]), embed_texts(["a cat"]))
    assert len(back.score(["a cat"])) == 1


def test_shipped_weights_follow_the_configured_recipe_and_stay_small():
    clf, cfg = SemanticClassifier.load(), SemanticConfig()
    assert clf.layers == cfg.layers
    # one tuned member, no frozen-feature heads, the prompt as written left out beside other readings (round 13)
    assert clf.weight is None and clf.frozen_weight == cfg.frozen_weight == 0.0
    assert clf.score_as_written is cfg.score_as_written is False
    assert clf.tuned.head[2][0].shape == (cfg.hidden, EMBED_DIM * len(clf.layers))
    # adapters ~1.35 MB (rank 8 on all six layers since round 11) + the tuned head ~0.3 MB
    assert default_weights_path().stat().st_size < 2_000_000


def test_heads_are_averaged_and_round_trip(tmp_path):
    rng = np.random.default_rng(2)

    def head():
        return (rng.normal(size=(len(LABELS), 8)), rng.normal(size=len(LABELS)),
                (rng.normal(size=(8, EMBED_DIM)), rng.normal(size=8)))

    (w0, b0, h0), more = head(), [head(), head()]
    clf = SemanticClassifier(w0, b0, LABELS, 0.3, {"threshold": 0.8}, h0, None, more)
    emb = rng.normal(size=(4, EMBED_DIM)).astype(np.float32)
    singles = [SemanticClassifier(w, b, LABELS, 0.3, {}, h).probs(emb) for w, b, h in [(w0, b0, h0), *more]]
    assert np.allclose(clf.probs(emb), np.mean(singles, axis=0), atol=1e-6)
    assert not np.allclose(singles[0], singles[1])  # the heads differ, so the mean is not one of them
    clf.save(tmp_path / "heads.safetensors")
    back = SemanticClassifier.load(tmp_path / "heads.safetensors")
    assert len(back.more_heads) == 2 and np.allclose(back.probs(emb), clf.probs(emb)) and back.threshold == 0.8


def test_fits_in_worker_processes_match_one_process(one_thread):
    """`guard train --workers N` runs the calibration folds and the final fit in N processes: the same
    out-of-fold scores and the same final weights as one process with one thread (here at toy size:
    24 prompts, 2 folds, a few epochs, the tuned LoRA member included)."""
    from worldsmith.guardrail import dataset
    from worldsmith.guardrail.semantic import out_of_fold_scores

    prompts = dataset.load_prompts()
    train = prompts[:12] + [p for p in prompts if p.unsafe][:12]
    cfg = SemanticConfig(epochs=5, heads=1, folds=2, adversarial_per_prompt=1, tune_epochs=1, tune_batch=8)
    calls = []
    runs = [out_of_fold_scores(train, cfg, lambda *a: calls.append(a) if workers == 2 else None, workers,
                               final=True, meta={"run": "toy"}) for workers in (1, 2)]
    (s1, c1), (s2, c2) = runs
    # with workers, the bar counts finished fits and names the running fits' stages and steps
    assert calls[-1][:2] == (3, 3) and all(loss is None for _, _, loss, _ in calls)
    assert any("tuned encoder (LoRA)" in what for *_, what in calls)
    assert np.array_equal(s1["p_unsafe"], s2["p_unsafe"]) and np.array_equal(s1["fold"], s2["fold"])
    assert 0 < s1["p_unsafe"].min() and s1["p_unsafe"].max() < 1 and set(s1["fold"]) == {0, 1}
    assert np.array_equal(c1.weight, c2.weight) and np.array_equal(c1.bias, c2.bias)
    assert all(np.array_equal(c1.tuned.lora[k], c2.tuned.lora[k]) for k in c1.tuned.lora)
    assert c2.meta["run"] == "toy" and c1.meta["final_loss"] == c2.meta["final_loss"]


def test_an_interrupted_run_resumes_from_its_kept_fits(one_thread, tmp_path, monkeypatch):
    """`guard train --checkpoints DIR`: each finished fit is kept, a rerun reads the kept ones back and runs only the
    missing ones, to the same scores and weights; a fit kept for another recipe is not reused."""
    from worldsmith.guardrail import dataset, semantic

    prompts = dataset.load_prompts()
    train = prompts[:8] + [p for p in prompts if p.unsafe][:8]
    cfg = SemanticConfig(epochs=3, heads=1, folds=2, adversarial_per_prompt=1, tune_epochs=1, tune_batch=8)
    s1, c1 = semantic.out_of_fold_scores(train, cfg, final=True, meta={"run": "toy"}, checkpoints=tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 3 and sum(name.endswith(".safetensors") for name in kept) == 1  # two folds + the final fit
    assert not any(".tmp" in name for name in kept)
    (tmp_path / kept[0]).unlink()  # as if the run had been stopped before this fit finished
    stages = []
    real_fit = semantic._do_fit
    monkeypatch.setattr(semantic, "_do_fit", lambda job, *a: stages.append(job.stage) or real_fit(job, *a))
    s2, c2 = semantic.out_of_fold_scores(train, cfg, final=True, meta={"run": "toy"}, checkpoints=tmp_path)
    assert len(stages) == 1 and sorted(p.name for p in tmp_path.iterdir()) == kept
    assert np.array_equal(s1["p_unsafe"], s2["p_unsafe"])
    assert np.array_equal(c1.weight, c2.weight) and all(np.array_equal(c1.tuned.lora[k], c2.tuned.lora[k])
                                                        for k in c1.tuned.lora)
    assert c2.meta["run"] == "toy" and str(c1.meta["final_loss"]) == str(c2.meta["final_loss"])
    # another recipe, or other prompts, make other keys: nothing kept is reused
    job = semantic._FitJob([(["a cat"], 0)], "fold 1/2: ", ["a dog"])
    assert semantic._fit_key(job, cfg) != semantic._fit_key(job, SemanticConfig(epochs=4, heads=1, folds=2))
    assert semantic._fit_key(job, cfg) != semantic._fit_key(semantic._FitJob([(["a cow"], 0)], job.stage, ["a dog"]),
                                                            cfg)


_ORPHAN_SCRIPT = '''
import multiprocessing, os, sys, time
from worldsmith.guardrail.semantic import _worker_init

def fitting_process(parent_pid):
    _worker_init({}, None, parent_pid)
    time.sleep(120)  # stands in for a fit

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=fitting_process, args=(os.getpid(),))
    child.start()
    print(child.pid, flush=True)
    time.sleep(120)
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_a_fitting_process_ends_when_guard_train_is_killed(tmp_path):
    """Killing `guard train --workers N` (Ctrl-C, `kill -9`, a CI timeout) must not leave its fitting processes
    running orphaned on the cores (they did, until killed by hand): each watches its parent and exits."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        time.sleep(2.0)
        assert _alive(child)  # the watch does not end a process whose parent lives
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
