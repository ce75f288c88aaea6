"""The labelled prompt set (`prompts.txt`), its train/held-out split, and adversarial spellings.

The split is a hash of each prompt's text (see `split`), so the classifier shipped in
`semantic.safetensors` never saw a held-out prompt. Adversarial variants rewrite the words that
matter (the blocklist hits, else the longest words) with the tricks people use: leetspeak,
spaced or dotted letters, repeated letters, accents, full-width letters, mixed case, split words.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass
from importlib import resources

LABELS = ("safe", "violence", "weapons", "sexual", "sexual_minors", "self_harm", "hate")
TRICKS = ("leet", "spaced", "dotted", "repeat", "accents", "fullwidth", "case", "split")
_LEET_OUT = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7", "b": "8"}


@dataclass(frozen=True)
class Prompt:
    text: str
    label: str
    trick: str = ""  # the adversarial trick applied, "" for the prompt as written

    @property
    def unsafe(self) -> bool:
        return self.label != "safe"


PROMPTS = "prompts.txt"  # the labelled set the classifier is trained, calibrated and held-out-tested on
# Prompts written blind and never trained on, calibrated on or read for errors: the benchmark reports only their
# aggregate figures, an estimate the held-out split can no longer give once rounds of data were chosen by its errors.
SEALED_PROMPTS = "sealed_prompts.txt"


def prompts_text(name: str = PROMPTS) -> str:
    return resources.files("worldsmith.guardrail").joinpath(name).read_text(encoding="utf-8")


def prompts_sha256() -> str:
    return hashlib.sha256(prompts_text().encode()).hexdigest()


def load_prompts(name: str = PROMPTS) -> list[Prompt]:
    out = []
    for n, line in enumerate(prompts_text(name).splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, _, text = line.partition("\t")
        if label not in LABELS or not text.strip():
            raise ValueError(f"{name}:{n}: expected '<label>\\t<prompt>' with a label in {LABELS}")
        out.append(Prompt(text.strip(), label))
    return out


def split_draw(text: str, seed: int = 0) -> float:
    """A number in [0, 1) fixed by the prompt text (and the seed) alone: sha256 of "seed:text"."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split(prompts: list[Prompt], heldout_fraction: float = 0.3, seed: int = 0) -> tuple[list[Prompt], list[Prompt]]:
    """(train, held-out): a prompt is held out when the hash draw of its own text is below
    `heldout_fraction`. Each prompt's side depends on nothing else, so adding or removing prompts
    never moves an existing prompt between the splits (a seeded shuffle would reshuffle them all
    and leak old held-out prompts into training). Labels are stratified only on average (each
    label's held-out share is a binomial draw around `heldout_fraction`)."""
    train, held = [], []
    for p in prompts:
        (held if split_draw(p.text, seed) < heldout_fraction else train).append(p)
    return train, held


def folds(prompts: list[Prompt], k: int, seed: int = 1) -> list[int]:
    """The cross-validation fold (0 .. k-1) of each prompt, fixed by its text alone like `split`
    (pass a seed other than the split's so folds are independent of the train/held-out draw)."""
    return [min(k - 1, int(split_draw(p.text, seed) * k)) for p in prompts]


def _apply(word: str, trick: str, rng: random.Random) -> str:
    if trick == "leet":
        return "".join(_LEET_OUT.get(c.lower(), c) if rng.random() < 0.7 else c for c in word)
    if trick == "spaced":
        return " ".join(word)
    if trick == "dotted":
        return rng.choice(".-_*").join(word)
    if trick == "repeat":
        k = rng.randrange(len(word))
        return word[:k] + word[k] * rng.randint(3, 5) + word[k + 1:]
    if trick == "accents":
        marks = {"a": "\u0301", "e": "\u0300", "i": "\u0308", "o": "\u0302", "u": "\u0301"}
        return unicodedata.normalize("NFC", "".join(c + marks.get(c.lower(), "") for c in word))
    if trick == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
    if trick == "case":
        return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(word))
    if trick == "split":
        k = max(1, len(word) // 2)
        return word[:k] + " " + word[k:]
    raise ValueError(f"unknown trick {trick!r}")


def adversarial(prompt: Prompt, trick: str, seed: int = 0, targets: list[str] | None = None) -> Prompt:
    """`prompt` with its key words respelled by `trick`. Key words: `targets` if given (e.g. the
    words a blocklist matched), else the two longest words."""
    rng = random.Random(f"{seed}:{trick}:{prompt.text}")
    words = prompt.text.split()
    if targets:
        idx = [i for i, w in enumerate(words) if any(t.lower() in w.lower() for t in targets)]
    else:
        idx = []
    if not idx:
        idx = sorted(range(len(words)), key=lambda i: -len(words[i]))[:2]
    for i in idx:
        core = words[i].strip(".,!?")
        if len(core) >= 3:
            words[i] = words[i].replace(core, _apply(core, trick, rng))
    return Prompt(" ".join(words), prompt.label, trick)


def with_adversarial(prompts: list[Prompt], per_prompt: int = 2, seed: int = 0,
                     targets_of=None) -> list[Prompt]:
    """The prompts plus `per_prompt` adversarial variants of each, tricks drawn by seed."""
    rng = random.Random(seed)
    out = list(prompts)
    for p in prompts:
        targets = targets_of(p.text) if targets_of else None
        for trick in rng.sample(TRICKS, per_prompt):
            out.append(adversarial(p, trick, seed, targets))
    return out
