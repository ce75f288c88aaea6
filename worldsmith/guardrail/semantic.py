"""Semantic check: a small classifier on all-MiniLM-L6-v2 (LoRA-tuned), mean-pooled layers 2, 4 and 6.

Catches unsafe prompts that use no blocklisted word ("make him stop breathing for good"). The shipped
weights score each prompt with one tuned member (`finetune.py`: LoRA adapters on all six MiniLM layers plus a
head, trained end to end); weights may also hold heads on the frozen MiniLM features, whose P(unsafe) is then
averaged with the tuned member's in logit space (`SemanticConfig.frozen_weight`; rounds 6-12 shipped both). Each
member has one class per label in `dataset.LABELS`; P(unsafe) = 1 - P(safe), and the category reported is the
most probable unsafe class. Each prompt is scored in several `readings` (normalised, letter runs cut, split
words rejoined; as written too only when `score_as_written`) and the highest P(unsafe) counts, so a respelling
cannot hide a prompt from the model either. A reading leaves out the request around the scene ("Generate a
realistic video of"), which says nothing about what happens in it.

Reproduce the shipped weights (`semantic.safetensors`, ~1.6 MB, never pickle; 139 min with `--workers 2` on two
cores for the 10801 prompts of round 17, all of it the six fits of the tuned member, five for the out-of-fold
calibration and the final one; those fits are independent, and on the 2516 prompts of round 6 `--workers 2` ran
them in two processes in 68 min to the same tensors and metadata values as 96 min on one thread):
    worldsmith guard train            # or: python -m worldsmith.guardrail.semantic
It trains on the seeded train split of `prompts.txt` plus adversarial respellings of it, and stores
the refusal threshold calibrated on K-fold out-of-fold scores of that train split in the weights' metadata
(the policy's `semantic_threshold: null` uses it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from worldsmith.guardrail import dataset
from worldsmith.guardrail.finetune import TunedMember, fit_tuned, to_numpy
from worldsmith.guardrail.normalize import normalize_text


@dataclass
class SemanticConfig:
    seed: int = 0
    heldout_fraction: float = 0.3
    adversarial_per_prompt: int = 4  # respellings of each training prompt (of the 8 tricks in dataset.TRICKS)
    epochs: int = 300
    lr: float = 0.05
    l2: float = 1e-3  # penalty on the weights: without it the model memorises the few hundred prompts
    temperature: float = 0.3  # each embedding block is a unit vector: logits = (W e + b) / temperature
    # MiniLM layers whose mean-pooled hidden states (each L2-normalised) are concatenated as the input
    # (`worldsmith.text.embed_texts_layers`; layer 6 alone is the sentence embedding). Middle layers keep
    # the one harmful verb that the last layer averages away in a long scene ("A man smothers his elderly
    # mother with a pillow"). 5-fold out-of-fold recall at <= 0.02 false refusals, one head (issue 7,
    # round 4): (6,) 0.825 / 0.812 / 0.833 over three init seeds; (2, 4, 6) 0.879 / 0.883 / 0.877 over
    # three seeds, but 0.854 and 0.807 with the blocks in another order or float-level embedding
    # differences: one head's operating point at 0.02 is that noisy (full-batch Adam at lr 0.05), hence
    # `heads`. Tried and not kept (one seed each): (2, 6) 0.850, (4, 6) 0.859, (1, 3, 5, 6) 0.813,
    # (0, 6) 0.825, (3, 6) 0.816; max-pooled token embeddings next to the mean 0.832 (alone 0.617); the
    # max over 4- and 6-token windows of contextual token embeddings 0.789 / 0.737 (a window scored
    # alone looks unsafe too often); a hashed uni+bigram logistic regression on `normalize_tokens`
    # skeletons averaged in at 0.2 weight: +0.02 on (6,) but +0.002 .. +0.011 on (2, 4, 6), and
    # concatenated to the embedding 0.656 (the hidden layer memorises the hashed n-grams).
    layers: tuple[int, ...] = (2, 4, 6)
    # one ReLU hidden layer of this width before the softmax (0: linear). 64 units: 5-fold out-of-fold
    # recall at <= 0.02 false refusals 0.832 (threshold 0.88) vs 0.811 linear (0.78), on 2646 train
    # prompts + respellings (issue 7, round 3, layer 6 only); 128 units or l2 3e-4 / 3e-3 or
    # temperature 0.5 moved it by no more than seed noise (0.82 .. 0.845). ~300 KB of weights a head
    hidden: int = 64
    # independently initialised heads (seeds seed, seed + 1, ...) whose class probabilities are averaged,
    # which steadies the operating point. `guard train` itself, 5-fold out-of-fold recall at <= 0.02
    # false refusals: 0.832 (threshold 0.88) layer 6 + 1 head (round 3); 0.835 (0.92) layers (2, 4, 6)
    # + 1 head; 0.871 (0.84, false refusals 0.019) layers (2, 4, 6) + 3 heads (issue 7, round 4; in the
    # experiment script the 3 heads gave 0.890 vs 0.877 .. 0.883 alone); with the 641 prompts added after
    # round 4 (1907 prompts, 3966 scored OOF items) 0.879 (0.82, false refusals 0.020). 3x the weights
    # (~900 KB) and head time (negligible next to the MiniLM forward pass)
    heads: int = 3
    # The tuned member (`finetune.py`): LoRA adapters of this rank on MiniLM's encoder layers
    # tune_from_layer .. 5, trained with one head of the same shape; 0 turns it off. Its P(unsafe) and the
    # frozen heads' are averaged in logit space. Issue 7, round 6, folds 0 and 1 of the 5 (1635 scored
    # out-of-fold items), recall at <= 0.02 false refusals with each system's best threshold: frozen heads
    # 0.889, tuned alone 0.899 (3 epochs; 5 epochs: 0.886 on fold 0 against 0.902, overconfident, its
    # threshold at the grid's 0.99), logit mean of both 0.915; their probability mean 0.897, max 0.909.
    # `guard train` with it on 2516 prompts: OOF recall 0.894 at 0.020 false refusals (threshold 0.90), 96 min
    # on one thread (~11 min a tuned fit). The adapters are ~0.9 MB (float32) at rank 8 on layers 2 .. 5.
    # Tried and not kept (2026-11-26, frozen heads alone, 5-fold OOF at <= 0.02): 600 templated training prompts
    # (people, robots and vehicles x harmful or helpful acts x victims x places, 300 unsafe + 300 safe, never
    # scored) lowered recall 0.849 -> 0.832 (violence 0.746 -> 0.686, threshold 0.85 -> 0.77): the model learnt
    # the templates, not the acts. A second tuned member (seed 1), folds 0 and 1 (2190 scored items), recall at
    # <= 0.02: frozen + tuned seed 0 (as shipped) 0.891, + tuned seed 1 instead 0.899, three-way logit mean 0.905,
    # tuned seeds alone 0.895 / 0.903: +0.01, about the seed spread, for ~1.7x the training time. Not adopted.
    # Tried and not kept (round 7): 495 minimal twins of train prompts (the same scene with the act changed so the
    # label flips, "drowns his child" / "bathes his child"; a twin in its source's split and fold). OOF recall of
    # the original train prompts at <= 0.02: frozen heads alone 0.868 without twins, 0.851 with them, 0.800 with
    # 971 (mean-pooled features barely move when one verb changes); fold 0 with twins for the tuned member only,
    # heads + tuned 0.863 -> 0.897; `guard train` so (70 min, --workers 2): OOF 0.894 -> 0.905 at 0.019, but
    # held-out recall 0.908 -> 0.921 at false refusals 0.027 -> 0.042, and worse at every matched false-refusal
    # rate (best held-out recall at <= 0.02: 0.889 -> 0.845; at <= 0.042: 0.935 -> 0.921; a diagnostic, no
    # threshold taken from it): the tuned member learnt harm verbs ("A woman hangs laundry" respelled, a
    # dashcam driver who "keeps a long gap", refused as self-harm).
    # Round 8, kept: 1196 prompts written blind by eight writers, one setting each, half of them hard safe
    # negatives (before merging, the round-6 guard refused 0.122 of their 589 safe prompts: the held-out set had
    # been too easy on false refusals), and readings without the request around the scene (`strip_request_frame`).
    # `guard train` (104 min, --workers 2, 3712 prompts): OOF recall 0.902 at 0.018 false refusals (threshold
    # 0.87). Guard recall / false refusals, with round 8's four allow-list entries: on the 774 held-out prompts of
    # round 7 with 4 respellings each 0.908 / 0.027 -> 0.909 / 0.021 (best recall at <= 0.02 false refusals
    # 0.889 -> 0.903, a diagnostic); on the 381 new held-out prompts 0.942 / 0.167 -> 0.921 / 0.074.
    # Round 9, kept: 1191 more blind prompts (eight more settings; the round-8 guard caught 0.860 of their unsafe,
    # violence 0.756, and refused 0.052 of their safe), and the tuned member's batches grouped by length
    # (`finetune.length_grouped_batches`, 1.9x faster a step). `guard train` (87 min, --workers 2, 4903 prompts):
    # OOF recall 0.873 at 0.020 (threshold 0.92). Guard on all 1486 held-out prompts x 5 items, round 8 -> round 9:
    # recall / false refusals 0.912 / 0.042 -> 0.882 / 0.016; best recall at <= 0.02 false refusals (a diagnostic)
    # 0.814 -> 0.900, at <= 0.05 0.921 -> 0.946.
    # Round 10, kept: 1188 more blind prompts (eight more settings, harm told as acts without trigger words; the
    # round-9 guard caught 0.856 of their unsafe, violence 0.790, and refused 0.019 of their safe) and three
    # allow-list entries. `guard train` (107 min, --workers 2, 6091 prompts): OOF recall 0.889 at 0.020 (threshold
    # 0.89). Guard on all 1797 held-out prompts x 5 items, round 9 -> round 10: recall / false refusals 0.882 /
    # 0.014 -> 0.917 / 0.021; best recall at <= 0.02 false refusals 0.902 -> 0.903, at <= 0.03 0.919 -> 0.937, at
    # <= 0.05 0.948 -> 0.959 (a diagnostic): more recall at a threshold a little looser on the held-out side.
    # Round 11, kept: LoRA on all six layers (tune_from_layer 0, was 2). Fold 0 alone (the tuned member fitted on
    # folds 1-4 by the shipped code and seed, 2676 scored items), best recall at <= 0.01 / 0.02 / 0.03 / 0.05 false
    # refusals: layers 2..5 0.864 / 0.903 / 0.921 / 0.943, layers 0..5 0.904 / 0.925 / 0.939 / 0.951, for 1.27x the
    # fit time (22.3 vs 17.5 min, the two fits side by side). `guard train` (92 min, --workers 2, same 6091 prompts,
    # threshold calibration now simulating the blocklist's context terms): OOF recall 0.907 at 0.020 (threshold
    # 0.91), round 10 0.889. Guard on all 1797 held-out prompts x 5 items, both with this round's context terms
    # and article split, round-10 weights -> these: recall / false refusals 0.918 / 0.020 -> 0.920 / 0.017; best
    # recall at <= 0.01 / 0.02 / 0.05 false refusals (a diagnostic) 0.881 / 0.919 / 0.961 -> 0.893 / 0.933 / 0.968.
    tune_rank: int = 8
    tune_from_layer: int = 0
    tune_epochs: int = 3
    tune_lr: float = 5e-4
    tune_head_lr: float = 3e-3
    tune_batch: int = 32
    # Weight of the frozen-feature heads against the tuned member: P(unsafe) = sigmoid(w logit(p_frozen) +
    # (1 - w) logit(p_tuned)), stored in the weights' metadata (files without it: 0.5, the plain logit mean of
    # rounds 6-11). 0 leaves the heads out: none are fitted (no frozen embedding pass, ~10 of a retrain's
    # minutes, nor their fits) or stored, and scoring skips the frozen MiniLM pass.
    # Round 12 measured it (fold 0: 2676 scored items; each tuned member fitted on folds 1-4 by the current code and
    # seed), best recall at <= 0.01 / 0.02 / 0.03 / 0.05 false refusals, w = 0.5 -> 0.3 -> 0.1 -> 0: rank-8 member
    # 0.887 / 0.910 / 0.931 / 0.953 -> 0.904 / 0.932 / 0.941 / 0.961 -> 0.905 / 0.942 / 0.948 / 0.963 -> 0.904 /
    # 0.943 / 0.952 / 0.963; a rank-16 member 0.909 -> 0.921 -> 0.915 -> 0.925 at 0.02; the heads alone 0.787.
    # Round 13 adopted 0 together with score_as_written False (below; the figures of the retrain are there).
    frozen_weight: float = 0.0
    # Whether the prompt as written is scored beside its other readings (`readings`); with False it counts only
    # when it is the only reading. Respelt text as written is noise to the model, while the normalised readings
    # read the respelling back: fold 0's tuned member gives "A person s.l.e.e.p.i.n.g p*e*a*c*e*f*u*l*l*y in bed"
    # P(unsafe) 0.98 as written and 0.18 as "a person sleeping peacefully in bed". Stored in the metadata (files
    # without it: True). Round 12, best recall at <= 0.01 / 0.02 / 0.03 / 0.05 false refusals, as written scored
    # -> not: fold 0 (as above, frozen_weight 0) 0.904 / 0.943 / 0.952 / 0.963 -> 0.925 / 0.943 / 0.950 / 0.968;
    # the round-11 weights' members on the held-out items (a diagnostic), frozen_weight 0: 0.896 / 0.931 / 0.952 /
    # 0.970 -> 0.905 / 0.940 / 0.955 / 0.976 (frozen_weight 0.5: 0.893 / 0.933 / 0.945 / 0.968 -> 0.900 / 0.932 /
    # 0.952 / 0.971).
    # Fold 1 (2496 items), at <= 0.02, round-11 rule (0.5, as written scored) 0.905; frozen_weight 0 alone 0.924;
    # as written dropped alone 0.938; both 0.941 (fold 0: 0.910 -> 0.943 with both).
    # Round 13, kept: both (frozen_weight 0, score_as_written False). `guard train` (71 min, --workers 2, the same
    # 6091 prompts, no frozen embedding pass): OOF recall 0.932 at 0.0195 false refusals (threshold 0.91), round
    # 11 0.907 at 0.020; weights 2.5 -> 1.6 MB. Guard on all 1797 held-out prompts x 5 items, round 11 -> 13: recall
    # / false refusals 0.920 / 0.017 -> 0.947 / 0.023 (101 of 4445 safe items refused, 74 before); best recall
    # at <= 0.01 / 0.02 / 0.03 / 0.05 false refusals (a diagnostic) 0.893 / 0.933 / 0.945 / 0.968 -> 0.894 /
    # 0.937 / 0.962 / 0.979: more recall at every budget, and an operating point past 0.02 on the held-out side.
    # Tried with this recipe, fold 0, best recall at <= 0.01 / 0.02 / 0.03 / 0.05 (not kept: within the seed spread):
    # seed 0 (as shipped) 0.925 / 0.943 / 0.950 / 0.968; seed 1 0.893 / 0.926 / 0.947 / 0.963; their logit mean
    # 0.910 / 0.941 / 0.958 / 0.966; 4 epochs instead of 3 0.905 / 0.952 / 0.958 / 0.973 (4/3 of the fit time).
    # Round 14: the same recipe on 1200 more prompts written blind (7291; the held-out split grows 1797 -> 2160
    # prompts, its new part harder: the round-13 guard caught 0.892 of the new unsafe prompts as written and refused
    # 0.042 of the safe). `guard train` (81 min, --workers 2): OOF recall 0.911 at 0.0187 (threshold 0.97). Guard on
    # all 2160 held-out prompts x 5 items, round 13 -> 14 weights: recall / false refusals 0.938 / 0.027 -> 0.922 /
    # 0.019; best recall at <= 0.01 / 0.02 / 0.03 / 0.05 (a diagnostic) 0.827 / 0.904 / 0.941 / 0.964 -> 0.834 /
    # 0.931 / 0.962 / 0.980. 44 of the 103 safe items refused are hard blocklist hits, 40 of them respellings, 22
    # of them context terms (bomb, torture, massacre) written with a trick, which the blocklist refuses outright.
    # Round 15: the same recipe on 1350 more prompts written blind (8641; nine settings; the held-out split grows 2160
    # -> 2564 prompts; the round-14 weights caught 0.884 of the new unsafe prompts as written and refused 0.027 of the
    # safe), four allow-list phrases, and disguised context terms refused from P(unsafe) 0.02 instead of outright
    # (`blocklist.DISGUISED_CONTEXT_THRESHOLD`, which the calibration simulates). `guard train` (92 min, --workers 2):
    # OOF recall 0.939 at 0.0190 (threshold 0.91). Guard on all 2564 held-out prompts x 5 items, both with round 15's
    # rule and allow-list, round 14 -> 15 weights: recall / false refusals 0.915 / 0.018 -> 0.946 / 0.018; best recall
    # at <= 0.01 / 0.02 / 0.03 / 0.05 (a diagnostic) 0.878 / 0.932 / 0.954 / 0.975 -> 0.874 / 0.949 / 0.963 / 0.981.
    # The rule alone (round-14 weights, this round's allow-list): best recall at <= 0.02 0.898 -> 0.932.
    # Round 16: 1200 more prompts written blind (9841; eight settings, the unsafe ones mostly violence and self-harm
    # told as acts, the safe half hard look-alikes: care, grief, accidents, butchery; the round-15 weights caught
    # 0.882 of the new unsafe prompts as written and refused 0.032 of the safe) and three grief allow-list phrases.
    # `guard train` (117 min, --workers 2): OOF recall 0.939 at 0.0194 (threshold 0.92). Guard on all 2930 held-out
    # prompts x 5 items, round 15 -> 16 weights: recall / false refusals 0.942 / 0.021 -> 0.955 / 0.021; best recall
    # at <= 0.01 / 0.02 / 0.03 / 0.05 (a diagnostic) 0.867 / 0.941 / 0.954 / 0.978 -> 0.896 / 0.949 / 0.970 / 0.983.
    # Round 17: 960 more prompts written blind (10801; eight settings, half safe look-alikes: violent verbs used
    # harmlessly, self-harm words in care and grief, atrocity words used factually; the round-16 guard caught 0.906
    # of the new unsafe prompts as written and refused 0.110 of the safe), nine allow-list phrases and suicide /
    # suicidal as context terms. `guard train` (139 min, --workers 2, on a busy machine): OOF recall 0.913 at 0.0179
    # (threshold 0.98) under the training-time lexicon, 0.937 at 0.0197 (threshold 0.95) with the context terms
    # (the flags recomputed over the same out-of-fold scores). Guard on all 3190 held-out prompts x 5 items, both
    # under round 17's lexicon, round 16 -> 17 weights: recall / false refusals 0.953 / 0.024 -> 0.948 / 0.019.
    # Round 18, no retraining: sexual, sexually, genocide and gore made context terms (train-split evidence, see
    # lexicon.yaml); the same out-of-fold scores then calibrate to 0.93, OOF recall 0.943 at 0.0196. Guard on the
    # same held-out items, round-17 weights, round 17 -> 18 lexicon and threshold: 0.948 / 0.019 -> 0.955 / 0.019.
    # On the sealed set (dataset.SEALED_PROMPTS, 1200 prompts written blind in round 18 x 5 items): 0.934 / 0.015 ->
    # 0.939 / 0.018.
    score_as_written: bool = False
    # Threshold calibration, on the TRAIN split only (the held-out split is never looked at): K-fold
    # out-of-fold scores of every train prompt plus respellings of it (`out_of_fold_scores`); the
    # threshold is the lowest P(unsafe) at which blocklist + classifier refuse at most
    # `max_oof_false_refusal` of those safe items (most recall within that budget).
    # No margin below the 0.02 target: on out-of-fold scores a 0.015 budget costs 0.028 recall
    # (0.832 -> 0.803), 0.01 costs 0.11. Single folds alone would pick 0.70 .. 0.98.
    folds: int = 5
    max_oof_false_refusal: float = 0.02
    threshold_grid: tuple[float, ...] = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))  # 0.30 .. 0.99


DEFAULT_THRESHOLD = 0.7  # for weights saved before calibration existed


@lru_cache(maxsize=65536)
def _wordpieces(word: str) -> int:
    from worldsmith.text import _model

    return len(_model().tokenizer.tokenize(word))


@lru_cache(maxsize=1)
def _vocab() -> frozenset[str]:
    from worldsmith.text import _model

    return frozenset(_model().tokenizer.get_vocab())


def _in_vocab(word: str) -> bool:
    return word in _vocab()


def splits_article(joined: str) -> bool:
    """Whether a run of spaced letters joined ("amassacre", from "a m a s s a c r e") is the word "a" or "i"
    and the word after it: its first letter is a or i, it is not a word of the embedding model's vocabulary
    ("autonomous" is) and the rest takes fewer word pieces than the whole. Joined whole, the respelt word after
    an article is lost to the classifier: the round-10 guard missed 45 of 424 such unsafe held-out items."""
    return (len(joined) >= 4 and joined[0] in "ai" and not _in_vocab(joined)
            and _wordpieces(joined[1:]) < _wordpieces(joined))


def rejoin_fragments(text: str) -> str:
    """Neighbouring words joined where the join reads as a word: at most two word pieces of the
    embedding model's vocabulary, fewer than the halves took, and not both halves words of that
    vocabulary ("poi son" -> "poison", "explo sives" -> "explosives"; "be at" stays apart). Joins
    that save the most pieces are taken first and never overlap ("pours poi son": "poi son")."""
    words = text.split()
    gains = []
    for i, (a, b) in enumerate(zip(words, words[1:])):
        if not (a.isalpha() and b.isalpha()) or (_in_vocab(a) and _in_vocab(b)):
            continue
        joined = _wordpieces(a + b)
        if joined <= 2 and joined < _wordpieces(a) + _wordpieces(b):
            gains.append((_wordpieces(a) + _wordpieces(b) - joined, -i))
    taken: set[int] = set()
    for _, neg_i in sorted(gains, reverse=True):
        if -neg_i not in taken and -neg_i + 1 not in taken:
            taken.update((-neg_i, -neg_i + 1))
    out, i = [], 0
    while i < len(words):
        if i in taken:
            out.append(words[i] + words[i + 1])
            i += 2
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


# The request around a scene ("Generate a realistic video of ...", "Show me a clip where ...", "Footage
# of ...") says how to render it, not what happens in it. Before round 8 every prompt in prompts.txt that began
# "Generate"/"Make"/"Show" was unsafe (92 of 92), so the classifier learnt the request itself as a harm cue and
# refused "Generate a video of a robot arm stacking blocks on a table" (p=0.93). Every reading is scored (and
# trained on) without it, so no wording of the request can tip a verdict either way.
_MEDIUM = r"(?:video|videos|clip|clips|footage|scene|film|movie|shot|sequence|render|simulation|gif|reel|vid|vlog)"
# words that only say how the clip looks; "cartoon", "animation", "documentary", "news" and "how-to" are kept in
# the text, because they do change what a prompt asks for ("a knight fights a dragon in a cartoon")
_LOOKS = (r"(?:realistic|photorealistic|hyperrealistic|lifelike|short|quick|brief|long|simple|cinematic|hd|4k|8k|"
          r"high|quality|high-quality|detailed|slow|motion|slow-motion|sped-up|\d+|\d+-second|seconds?|secs?|"
          r"minutes?|dashcam|drone|cctv|security|camera|bodycam|phone|handheld|aerial|stock|pov|first-person|"
          r"vertical|single|one-take|continuous|close-up|closeup|wide|wide-angle|tracking|static|smooth|grainy|"
          r"vintage|amateur|professional|viral|new|full|clear)")
_REQUEST_FRAME = re.compile(
    r"^\W*(?:(?:please|pls|can you|could you|i want|i need|i'd like|we need|now)\W+)*(?:"
    # "Generate me a realistic 10 second video of ...", "Realistic footage of ...", "Dashcam clip: ..."
    r"(?:(?:generate|make|create|render|produce|film|shoot|give|show|record)(?:\s+(?:me|us))?\s+)?"
    r"(?:(?:a|an|the|some|one|another)\s+)?(?:" + _LOOKS + r"\s+){0,4}" + _MEDIUM +
    r"(?:\s+(?:of|where|in which|showing|that shows|about|with|featuring|depicting)\b|\s*[:,-])"
    # "Show a nurse ...", "Show me ..."
    r"|(?:show|depict)(?:\s+(?:me|us))?\b)\W*",
    re.IGNORECASE)


def strip_request_frame(text: str) -> str:
    """`text` without a leading request to render it ("Make a realistic clip where a dog runs" ->
    "a dog runs"); unchanged when nothing but the request would be left."""
    rest = _REQUEST_FRAME.sub("", text, count=1).strip()
    return rest if len(rest.split()) >= 2 else text


def readings(text: str) -> list[str]:
    """The distinct readings of a prompt that the classifier scores (the guard refuses on the most
    unsafe one, so a respelling has to fool every reading): as written; normalised (leet undone,
    spaced letters joined, with a leading "a" or "i" kept apart where `splits_article` says so, letter runs cut
    to one); letter runs cut to two instead ("killll" -> "kill"); and the normalised text with split words
    rejoined ("poi son" -> "poison"). Each without the request around the scene (`strip_request_frame`).
    """
    text = strip_request_frame(text)  # first as written (the normaliser drops the colon of "Clip: ..."),
    norm = normalize_text(text, splits_article=splits_article) or text  # then again in each form (a respelled
    doubles = normalize_text(text, keep_doubles=True, splits_article=splits_article) or text  # "G3nerate a v1deo")
    forms = [text, norm, doubles, rejoin_fragments(norm)]
    return list(dict.fromkeys(strip_request_frame(f) for f in forms))


def default_weights_path() -> Path:
    return Path(str(resources.files("worldsmith.guardrail").joinpath("semantic.safetensors")))


class SemanticClassifier:
    def __init__(self, weight: np.ndarray | None, bias: np.ndarray | None, labels: tuple[str, ...], temperature: float,
                 meta: dict | None = None, hidden: tuple[np.ndarray, np.ndarray] | None = None,
                 layers: tuple[int, ...] | None = None,
                 more_heads: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]] = (),
                 tuned: TunedMember | None = None):
        # the frozen-feature heads; None: none (a tuned member alone, SemanticConfig.frozen_weight 0)
        self.weight = None if weight is None else weight.astype(np.float32)  # (C, D), or (C, H) after a hidden layer
        self.bias = None if bias is None else bias.astype(np.float32)  # (C,)
        # optional ReLU layer (H, D) and (H,) in front of the softmax layer
        self.hidden = None if hidden is None else (hidden[0].astype(np.float32), hidden[1].astype(np.float32))
        self.labels = tuple(labels)
        self.temperature = float(temperature)
        self.meta = meta or {}
        # MiniLM layers of the input (see SemanticConfig.layers); None: the sentence embedding, as the
        # weights saved before issue 7 round 4 (no "layers" in their metadata) were trained on
        self.layers = None if layers is None else tuple(int(k) for k in layers)
        # further heads (weight, bias, hidden) of an ensemble; probs() averages all heads' softmax
        self.more_heads = [(w.astype(np.float32), b.astype(np.float32),
                            None if h is None else (h[0].astype(np.float32), h[1].astype(np.float32)))
                           for w, b, h in more_heads]
        # the LoRA-tuned encoder and its head (finetune.py), averaged with the heads above in `score`
        if tuned is not None and self.layers is None:
            raise ValueError("a tuned member needs the layered features (weights with 'layers')")
        self.tuned = tuned
        if self.weight is None and tuned is None:
            raise ValueError("a classifier needs frozen-feature heads, a tuned member or both")
        # the heads' share against the tuned member in logit space (SemanticConfig.frozen_weight)
        if tuned is None:
            self.frozen_weight = 1.0
        elif self.weight is None:
            self.frozen_weight = 0.0
        else:
            self.frozen_weight = float(self.meta.get("frozen_weight", 0.5))
        # whether the prompt as written counts beside its other readings (SemanticConfig.score_as_written)
        self.score_as_written = str(self.meta.get("score_as_written", True)) == "True"

    def features(self, texts: list[str]) -> np.ndarray:
        """The input vectors this classifier was trained on: (N, D)."""
        from worldsmith.text import embed_texts, embed_texts_layers

        return embed_texts(texts) if self.layers is None else embed_texts_layers(texts, self.layers)

    @property
    def threshold(self) -> float:
        """The P(unsafe) threshold calibrated at training time (see SemanticConfig)."""
        return float(self.meta.get("threshold", DEFAULT_THRESHOLD))

    def _head_probs(self, emb: np.ndarray, weight, bias, hidden) -> np.ndarray:
        if hidden is not None:
            emb = np.maximum(emb @ hidden[0].T + hidden[1], 0.0)
        logits = (emb @ weight.T + bias) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probs(self, emb: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of the frozen-feature heads: the mean over the heads of each head's softmax."""
        if self.weight is None:
            raise ValueError("this classifier has no frozen-feature heads (a tuned member alone)")
        heads = [(self.weight, self.bias, self.hidden), *self.more_heads]
        return sum(self._head_probs(emb, *h) for h in heads) / len(heads)

    def score(self, texts: list[str], categories: list[str] | None = None) -> list[tuple[float, str]]:
        """(P(unsafe), most probable unsafe category) per text. P(unsafe) sums the probabilities of
        `categories` (default: every unsafe label) and is the max over the text's `readings` (without the
        text as written when the weights say so and there are other readings)."""
        cats = [c for c in (categories or self.labels) if c in self.labels and c != "safe"]
        idx = [self.labels.index(c) for c in cats]
        if not texts:
            return []
        if not idx:
            return [(0.0, "") for _ in texts]
        per_text = [readings(t) for t in texts]
        flat = [r for rs in per_text for r in rs]
        w = self.frozen_weight
        members = []  # (weight, class probabilities (readings, K)) of the heads and the tuned member that count
        if w > 0:
            members.append((w, self.probs(self.features(flat))[:, idx]))
        if w < 1:
            members.append((1 - w, self._head_probs(self.tuned.features(flat, self.layers), *self.tuned.head)[:, idx]))
        p_unsafe = logit_mean(*[np.minimum(1.0, q.sum(axis=1)) for _, q in members], weights=[v for v, _ in members])
        p = sum(v * q for v, q in members)
        out, start = [], 0
        for rs in per_text:
            first = start + (0 if self.score_as_written or len(rs) == 1 else 1)  # readings[0]: as written
            k = first + int(p_unsafe[first: start + len(rs)].argmax())  # the reading that looks least safe
            start += len(rs)
            out.append((float(p_unsafe[k]), cats[int(p[k].argmax())]))
        return out

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        meta = {"labels": json.dumps(self.labels), "temperature": str(self.temperature),
                **{k: str(v) for k, v in self.meta.items()}}
        if self.layers is not None:
            meta["layers"] = json.dumps(self.layers)
        tensors = {} if self.weight is None else {"weight": self.weight, "bias": self.bias}
        if self.hidden is not None:
            tensors.update(hidden_weight=self.hidden[0], hidden_bias=self.hidden[1])
        for k, (w, b, h) in enumerate(self.more_heads, 1):
            tensors.update({f"head{k}.weight": w, f"head{k}.bias": b})
            if h is not None:
                tensors.update({f"head{k}.hidden_weight": h[0], f"head{k}.hidden_bias": h[1]})
        if self.tuned is not None:
            meta["tuned"] = json.dumps({"rank": self.tuned.rank, "from_layer": self.tuned.from_layer})
            w, b, (hw, hb) = self.tuned.head
            tensors.update({"tuned.head.weight": w, "tuned.head.bias": b, "tuned.head.hidden_weight": hw,
                            "tuned.head.hidden_bias": hb})
            tensors.update({f"tuned.lora.{k}": np.asarray(v, np.float32) for k, v in self.tuned.lora.items()})
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SemanticClassifier":
        from safetensors import safe_open

        path = Path(path) if path is not None else default_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no classifier weights (run `worldsmith guard train`)")
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata())
            weight, bias = (f.get_tensor("weight"), f.get_tensor("bias")) if "weight" in f.keys() else (None, None)
            hidden = ((f.get_tensor("hidden_weight"), f.get_tensor("hidden_bias"))
                      if "hidden_weight" in f.keys() else None)
            more, k = [], 1
            while f"head{k}.weight" in f.keys():
                h = ((f.get_tensor(f"head{k}.hidden_weight"), f.get_tensor(f"head{k}.hidden_bias"))
                     if f"head{k}.hidden_weight" in f.keys() else None)
                more.append((f.get_tensor(f"head{k}.weight"), f.get_tensor(f"head{k}.bias"), h))
                k += 1
            tuned = None
            if "tuned" in meta:
                spec = json.loads(meta.pop("tuned"))
                head = (f.get_tensor("tuned.head.weight"), f.get_tensor("tuned.head.bias"),
                        (f.get_tensor("tuned.head.hidden_weight"), f.get_tensor("tuned.head.hidden_bias")))
                lora = {k[len("tuned.lora."):]: f.get_tensor(k) for k in f.keys() if k.startswith("tuned.lora.")}
                tuned = TunedMember(lora, int(spec["rank"]), int(spec["from_layer"]), head)
        labels = tuple(json.loads(meta.pop("labels")))
        temperature = float(meta.pop("temperature"))
        layers = tuple(json.loads(meta.pop("layers"))) if "layers" in meta else None
        return cls(weight, bias, labels, temperature, meta, hidden, layers, more, tuned)


def logit_mean(*ps: np.ndarray, weights=None, eps: float = 1e-6) -> np.ndarray:
    """sigmoid of the (weighted) mean of the logits of `ps`: the more confident member pulls harder than in a
    probability mean (0.99 and 0.3 give 0.87, not 0.645), and two equally confident members that
    disagree meet at 0.5 (see SemanticConfig.tune_rank and frozen_weight for the figures)."""
    weights = np.full(len(ps), 1.0 / len(ps)) if weights is None else np.asarray(weights, float) / np.sum(weights)
    z = sum(w * np.log(q / (1 - q)) for w, q in zip(weights, (np.clip(p, eps, 1 - eps) for p in ps)))
    return 1.0 / (1.0 + np.exp(-z))


def _targets_of(block=None):
    """The words of a text that the shipped blocklist (or `block`) hits, as written: what respellings disguise."""
    from worldsmith.guardrail.blocklist import Blocklist

    block = block or Blocklist.from_lexicon()
    return lambda text: [h.surface for h in block.match(text)]


def _training_groups(prompts: list[dataset.Prompt], cfg: SemanticConfig) -> list[tuple[list[str], int]]:
    """Per prompt: the texts it contributes to training (its readings and the readings of its
    `adversarial_per_prompt` respellings, train-time augmentation with the tricks people use) and its
    label index. The respellings are drawn once for the given prompts, so a fold's training set is a
    subset of these groups and every text is embedded once however many folds reuse it."""
    augmented = dataset.with_adversarial(prompts, cfg.adversarial_per_prompt, cfg.seed, _targets_of())
    n, k = len(prompts), cfg.adversarial_per_prompt
    groups = []
    for i, p in enumerate(prompts):  # with_adversarial: the prompts, then k variants of each in order
        variants = [p] + augmented[n + i * k: n + (i + 1) * k]
        groups.append(([t for v in variants for t in readings(v.text)], dataset.LABELS.index(p.label)))
    return groups


def _flatten(groups: list[tuple[list[str], int]]) -> tuple[list[str], np.ndarray]:
    texts = [t for ts, _ in groups for t in ts]
    return texts, np.array([y for ts, y in groups for _ in ts], dtype=np.int64)


def _fit_head(x, yt, cfg: SemanticConfig, seed: int, progress=None, done: int = 0):
    """One head: full-batch Adam on weighted cross-entropy + L2 from the init of `seed`.
    Returns (weight, bias, hidden or None, final loss)."""
    import torch

    torch.manual_seed(seed)
    n_cls = len(dataset.LABELS)
    if cfg.hidden:
        first = torch.nn.Linear(x.shape[1], cfg.hidden)
        lin = torch.nn.Linear(cfg.hidden, n_cls)
        net = torch.nn.Sequential(first, torch.nn.ReLU(), lin)
        penalised = [first.weight, lin.weight]
    else:
        lin = torch.nn.Linear(x.shape[1], n_cls)
        net, penalised = lin, [lin.weight]
    counts = torch.bincount(yt, minlength=n_cls).float().clamp(min=1)
    class_w = 1.0 / counts
    class_w[1:] /= n_cls - 1
    class_w /= class_w.mean()
    from worldsmith.text import model_device

    device = model_device()  # initialised on the CPU (the same start on any device), then fitted on the model's
    net, x, yt, class_w = net.to(device), x.to(device), yt.to(device), class_w.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    total = cfg.epochs * max(1, cfg.heads)
    for epoch in range(cfg.epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x) / cfg.temperature, yt, weight=class_w)
        loss = loss + cfg.l2 * sum((w ** 2).sum() for w in penalised)
        loss.backward()
        opt.step()
        if progress:
            progress(done + epoch + 1, total, loss.item())
    hidden = (to_numpy(first.weight), to_numpy(first.bias)) if cfg.hidden else None
    return to_numpy(lin.weight), to_numpy(lin.bias), hidden, loss.item()


def _stage(progress, what: str):
    """`progress(step, total, loss, what)` bound to one stage of training, as the fitting loops call it."""
    return None if progress is None else (lambda i, n, loss: progress(i, n, loss, what))


def _fit(groups: list[tuple[list[str], int]], cfg: SemanticConfig, meta: dict, progress=None,
         stage: str = "") -> SemanticClassifier:
    """`cfg.heads` heads, head h initialised from seed `cfg.seed + h`; deterministic for a given seed;
    then the tuned member when `cfg.tune_rank` > 0. `progress(step, total, loss, what)`, `what` starting
    with `stage`.

    Class weights: the safe class and the unsafe classes together weigh the same (half each), and
    unsafe classes share their half equally. (Balancing all 7 classes equally would give "unsafe"
    a 6/7 prior and refuse most borderline safe prompts.)"""
    import torch

    from worldsmith.text import embed_texts_layers

    texts, y = _flatten(groups)
    heads = []
    if _fits_heads(cfg):
        x = torch.from_numpy(embed_texts_layers(texts, cfg.layers))
        yt = torch.from_numpy(y)
        heads_progress = _stage(progress, f"{stage}frozen-feature heads")
        heads = [_fit_head(x, yt, cfg, cfg.seed + h, heads_progress, h * cfg.epochs) for h in range(max(1, cfg.heads))]
    losses = [f"{h[3]:.5f}" for h in heads]
    tuned = None
    if cfg.tune_rank > 0:
        tuned, tuned_loss = fit_tuned(groups, cfg, cfg.seed, len(dataset.LABELS),
                                      _stage(progress, f"{stage}tuned encoder (LoRA)"))
        losses.append(f"tuned {tuned_loss:.5f}")
    meta = {**meta, "train_examples": len(texts), "final_loss": " ".join(losses)}
    if tuned is not None and heads:
        meta["frozen_weight"] = cfg.frozen_weight
    meta["score_as_written"] = cfg.score_as_written
    (weight, bias, hidden), more = heads[0][:3] if heads else (None, None, None), [h[:3] for h in heads[1:]]
    return SemanticClassifier(weight, bias, dataset.LABELS, cfg.temperature, meta, hidden, cfg.layers, more, tuned)


def _fits_heads(cfg: SemanticConfig) -> bool:
    """Whether a fit trains the frozen-feature heads: always without a tuned member, else when they count."""
    return cfg.tune_rank <= 0 or cfg.frozen_weight > 0


def out_of_fold_scores(train: list[dataset.Prompt], cfg: SemanticConfig, progress=None, workers: int = 1,
                       final: bool = False, meta: dict | None = None, checkpoints: Path | None = None):
    """K-fold out-of-fold scores over the whole TRAIN split: the head is fitted `folds` times, each on
    the other folds (with their respellings), and scores the prompts of its held-back fold plus two
    respellings of each (as the benchmark respells held-out prompts, with a seed of the train side's
    own). Every train prompt is scored once by a model that never saw it, so the threshold is picked
    on ~4x more safe prompts than one validation part gives (issue 7: a 246-prompt part moved the
    threshold 0.84 <-> 0.95 on float noise). With `final`, also the fit on the whole train split
    (carrying `meta`). The fits are independent: one after another, or in `workers` processes. With
    `checkpoints`, a folder, each finished fit is kept there and a fit found there is not run again (`_run_fits`).

    Returns (scores, classifier or None); scores are arrays over the scored items: p_unsafe, blocked
    (blocklist hit), unsafe, fold."""
    from worldsmith.guardrail.blocklist import Blocklist

    block = Blocklist.from_lexicon()
    targets_of = _targets_of(block)
    fold_of_prompt = dataset.folds(train, cfg.folds, cfg.seed + 1)
    groups = _training_groups(train, cfg)
    items = dataset.with_adversarial(train, 2, cfg.seed + 2, targets_of)
    n = len(train)
    item_fold = np.array([fold_of_prompt[i if i < n else (i - n) // 2] for i in range(len(items))])
    from worldsmith.text import embed_texts_layers

    if _fits_heads(cfg):  # one embedding pass in a fixed order; the folds reuse the cache
        embed_texts_layers(_flatten(groups)[0], cfg.layers)
    jobs = []
    for f in range(cfg.folds):
        idx = np.flatnonzero(item_fold == f)
        jobs.append(_FitJob([g for g, k in zip(groups, fold_of_prompt) if k != f], f"fold {f + 1}/{cfg.folds}: ",
                            [items[i].text for i in idx]))
    if final:
        jobs.append(_FitJob(groups, "final fit: ", None, meta))
    results = _run_fits(jobs, cfg, progress, workers, checkpoints)
    p_unsafe = np.zeros(len(items))
    for f in range(cfg.folds):
        p_unsafe[item_fold == f] = results[f][1]
    hits = [block.match(p.text) for p in items]
    scores = {"p_unsafe": p_unsafe, "blocked": np.array([bool(h) and not h[0].context for h in hits]),
              "context": np.array([bool(h) and h[0].context for h in hits]),
              "disguised": np.array([bool(h) and h[0].context and h[0].disguised for h in hits]),
              "unsafe": np.array([p.unsafe for p in items]), "fold": item_fold}
    return scores, (results[-1][0] if final else None)


@dataclass
class _FitJob:
    """One fit of `_fit`: its training groups, its progress label, the texts it then scores (a fold's
    held-back items; None: keep the classifier instead) and the metadata the kept classifier carries."""
    groups: list
    stage: str
    score_texts: list[str] | None
    meta: dict | None = None


def _do_fit(job: _FitJob, cfg: SemanticConfig, progress=None):
    """(classifier or None, P(unsafe) of `job.score_texts` or None)."""
    clf = _fit(job.groups, cfg, job.meta or {}, progress, job.stage)
    if job.score_texts is None:
        return clf, None
    return None, np.array([p for p, _ in clf.score(job.score_texts)])


_progress_queue = None  # in a fitting process: where its fits report their steps to the parent


def _worker_init(cache: dict, queue=None, parent_pid: int | None = None, device: str = "cpu") -> None:
    """A fitting process: the parent's MiniLM layer vectors (so every fit reads the vectors of one
    embedding pass, as in one process), one torch thread, the parent's model device, the queue its
    progress goes to, and a watch on `parent_pid` that ends this process once the parent is gone."""
    import threading

    import torch

    from worldsmith import text

    global _progress_queue
    torch.set_num_threads(1)
    if device != "cpu":
        text.use_device(device)
    text._layer_cache.update(cache)
    _progress_queue = queue
    if parent_pid is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int, every: float = 1.0) -> None:
    """End this process when its parent has gone. A killed `guard train` (Ctrl-C, `kill`, a CI timeout) does
    not stop the pool's processes itself: before this watch they went on fitting, orphaned, on the cores the
    next run needed (found 10 minutes after a kill, still at ~78% of a core each)."""
    import time

    while os.getppid() == parent_pid:
        time.sleep(every)
    os._exit(1)


def _do_fit_in_worker(job: _FitJob, cfg: SemanticConfig):
    """`_do_fit` in a fitting process, its steps sent to the parent at most twice a second."""
    import time

    last = [0.0]

    def progress(i: int, n: int, loss, what: str) -> None:
        if _progress_queue is not None and (i == n or time.monotonic() - last[0] > 0.5):
            last[0] = time.monotonic()
            _progress_queue.put((job.stage, what, i, n))

    return _do_fit(job, cfg, progress)


def _fit_key(job: _FitJob, cfg: SemanticConfig) -> str:
    """What a fit's result depends on: the recipe, the stage, every training text and label, the texts it scores, the
    metadata it carries and the device it runs on (a GPU fit differs from a CPU one at float level). The fitting code
    itself is not in the key: bump `format` when a change to it changes what a fit returns."""
    from worldsmith import text

    what = {"format": 1, "cfg": asdict(cfg), "stage": job.stage, "groups": job.groups, "score": job.score_texts,
            "meta": job.meta, "device": str(text.model_device())}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _checkpoint_path(folder: Path, key: str, job: _FitJob) -> Path:
    return folder / (f"fit-{key}.npy" if job.score_texts is not None else f"fit-{key}.safetensors")


def _load_fit(folder: Path, key: str, job: _FitJob):
    """A kept fit's `_do_fit` result, or None when there is none."""
    path = _checkpoint_path(folder, key, job)
    if not path.is_file():
        return None
    return (None, np.load(path)) if job.score_texts is not None else (SemanticClassifier.load(path), None)


def _keep_fit(folder: Path, key: str, job: _FitJob, result) -> None:
    """Write a finished fit under a temporary name and rename it, so an interrupted write leaves no checkpoint."""
    path = _checkpoint_path(folder, key, job)
    folder.mkdir(parents=True, exist_ok=True)
    if job.score_texts is None:
        result[0].save(path)  # writes a temporary file and renames it
        return
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, result[1])
    os.replace(tmp, path)


def _run_fits(jobs: list[_FitJob], cfg: SemanticConfig, progress, workers: int,
              checkpoints: Path | None = None) -> list:
    """Each job's `_do_fit`, in order. The fits are independent and seed themselves, so `workers` > 1 runs
    them in that many processes (spawned, one torch thread each) to the same weights as one process with
    one thread; progress then counts finished fits, and names the stage and step of each running one.

    With `checkpoints` (a folder), each fit is kept there as it finishes, under a key of everything its result
    depends on (`_fit_key`), and a fit already kept is read back instead of run: an interrupted `guard train`
    (a 2-hour CPU run, a lost session) resumes where it stopped, to the same weights as one uninterrupted run."""
    results: list = [None] * len(jobs)
    keys = [_fit_key(job, cfg) for job in jobs] if checkpoints is not None else None
    todo = []
    for i, job in enumerate(jobs):
        kept = _load_fit(checkpoints, keys[i], job) if checkpoints is not None else None
        if kept is None:
            todo.append(i)
        else:
            results[i] = kept

    def record(i: int, result) -> None:
        results[i] = result
        if checkpoints is not None:
            _keep_fit(checkpoints, keys[i], jobs[i], result)

    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            record(i, _do_fit(jobs[i], cfg, progress))
        return results
    import multiprocessing
    import queue as queue_module
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from worldsmith import text

    workers = min(workers, len(todo))
    cache = {k: v for k, v in text._layer_cache.items() if k[1] == ("", tuple(cfg.layers))}
    context = multiprocessing.get_context("spawn")
    steps = context.Queue() if progress else None
    running: dict[str, str] = {}  # a running fit's stage label -> its latest step, as the bar shows it
    closed: set[str] = set()  # finished fits' stage labels (their last steps may still be queued)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                             initargs=(cache, steps, os.getpid(), str(text.model_device()))) as pool:
        # the biggest fits first (the final fit has a fold's worth more data), so no process idles at the end
        order = sorted(todo, key=lambda i: -len(jobs[i].groups))
        futures = {pool.submit(_do_fit_in_worker, jobs[i], cfg): i for i in order}
        pending, done = set(futures), len(jobs) - len(todo)
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in finished:
                record(futures[fut], fut.result())
                closed.add(jobs[futures[fut]].stage)
                running.pop(jobs[futures[fut]].stage, None)
                done += 1
            if progress:
                while True:
                    try:
                        stage, what, i, n = steps.get_nowait()
                    except queue_module.Empty:
                        break
                    if stage not in closed:
                        running[stage] = f"{what} {i}/{n}"  # `what` starts with the stage label
                progress(done, len(jobs), None, " | ".join([f"{len(jobs)} fits in {workers} processes",
                                                            *running.values()]))
    return results


def pick_threshold(scores: dict[str, np.ndarray], grid, max_false_refusal: float) -> dict:
    """The lowest threshold on `grid` at which blocklist + classifier refuse at most
    `max_false_refusal` of the safe items (the most recall within that budget); the strictest grid
    value if none meets it. The refusal simulated is the guard's: a hard blocklist hit, P(unsafe) >= t, or only
    context-term hits ("context", absent in scores saved before them) and P(unsafe) >= min(t, CONTEXT_THRESHOLD), or
    min(t, DISGUISED_CONTEXT_THRESHOLD) when the first of them is disguised ("disguised", absent before round 15)."""
    from worldsmith.guardrail.blocklist import CONTEXT_THRESHOLD, DISGUISED_CONTEXT_THRESHOLD

    blocked, p_unsafe, unsafe = scores["blocked"], scores["p_unsafe"], scores["unsafe"]
    context = scores.get("context", np.zeros_like(blocked))
    disguised = scores.get("disguised", np.zeros_like(blocked))

    def at(t: float) -> dict:
        ct = np.where(disguised, min(t, DISGUISED_CONTEXT_THRESHOLD), min(t, CONTEXT_THRESHOLD))
        refused = blocked | (p_unsafe >= t) | (context & (p_unsafe >= ct))
        return {"threshold": t, "oof_recall": float(refused[unsafe].mean()),
                "oof_false_refusal": float(refused[~unsafe].mean())}

    for t in sorted(grid):
        if at(t)["oof_false_refusal"] <= max_false_refusal:
            return at(t)
    return at(max(grid))


def calibrate_threshold(scores: dict[str, np.ndarray], cfg: SemanticConfig) -> dict:
    """Pick the refusal threshold on out-of-fold scores of the TRAIN split (`out_of_fold_scores`' first result).

    Returns {"threshold", "oof_recall", "oof_false_refusal", "oof_items", "oof_safe_items", "folds"}."""
    best = pick_threshold(scores, cfg.threshold_grid, cfg.max_oof_false_refusal)
    return {**best, "oof_items": int(len(scores["unsafe"])), "oof_safe_items": int((~scores["unsafe"]).sum()),
            "folds": cfg.folds}


def train_classifier(cfg: SemanticConfig = SemanticConfig(), progress=None, workers: int = 1,
                     checkpoints: Path | None = None) -> SemanticClassifier:
    """Calibrate the threshold on out-of-fold scores of the train split, fit on the whole train split
    (held-out prompts are never used) and store the threshold in the weights' metadata.
    `progress(step, total, loss, what)` is called through every fit (loss None: a count of fits done, with
    `workers` > 1, which runs the `folds` + 1 independent fits in that many processes). `checkpoints`: a folder
    that keeps each finished fit, so a rerun resumes (`_run_fits`)."""
    train, _ = dataset.split(dataset.load_prompts(), cfg.heldout_fraction, cfg.seed)
    from worldsmith.text import model_device

    meta = {"config": json.dumps(asdict(cfg)), "prompts_sha256": dataset.prompts_sha256(),
            "device": str(model_device())}
    scores, clf = out_of_fold_scores(train, cfg, progress, workers, final=True, meta=meta, checkpoints=checkpoints)
    calib = calibrate_threshold(scores, cfg)
    clf.meta.update(threshold=calib["threshold"], calibration=json.dumps(calib))
    return clf


if __name__ == "__main__":
    clf = train_classifier(workers=min(SemanticConfig.folds + 1, os.cpu_count() or 1))
    clf.save(default_weights_path())
    print(f"wrote {default_weights_path()} ({clf.meta['train_examples']} examples, loss {clf.meta['final_loss']}, "
          f"threshold {clf.threshold})")
