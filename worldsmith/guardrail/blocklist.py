"""Blocklist matching on normalised words, with an allow-list for known false positives.

A term is a word or a phrase from `lexicon.yaml` (plus the policy's additions), turned into word
skeletons by the same normaliser as the prompt, so "b0mb", "b.o.m.b", "bombing" all meet "bomb".
A hit inside an allow-listed phrase ("bath bomb", "kill the process") is dropped. Terms are also
searched *inside* runs of short fragments ("bo mb"), the one place where word boundaries lie, and
single-word terms are compared with two neighbouring words joined ("mur der").

Some words are unsafe in most prompts but have everyday senses no fixed allow-list phrase can cover ("bombed the
chemistry exam", "the home side massacred the visitors", "stabs a fork into a potato", "a suicide risk assessment",
"a sexual harassment trial"). The lexicon's `context_terms` marks them: a hit on one of these alone is a *context*
hit, which the guard refuses only when the semantic classifier also sees some risk in the prompt
(`CONTEXT_THRESHOLD`, see `guard.Guardrail`). A context term written with a trick ("b0mbed", "st abs", "sTaBs",
"stabsss") is a *disguised* context hit, refused at a far lower P(unsafe) (`DISGUISED_CONTEXT_THRESHOLD`): people
rarely disguise an everyday sense, and the classifier reads most disguises back through its normalised readings,
but not all of them with confidence. A sexual context term next to a minor term is a hard hit all the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import yaml

from worldsmith.guardrail.normalize import adjacent_pairs, normalize_tokens, skeleton, squashed_fragments, Token

# Skipped when matching phrases, so "shoot the people" meets "shoot people".
STOPWORDS = frozenset({"a", "an", "the", "some", "this", "that", "these", "those"})
# Reported first when several categories fire.
CATEGORY_PRIORITY = ("sexual_minors", "weapons", "violence", "self_harm", "sexual", "hate")
MIN_INSIDE_LEN = 4  # shorter skeletons are too common to search inside squashed fragments
MIN_JOINED_LEN = 5  # single-word terms at least this long are also matched against two joined words
# A prompt whose only blocklist hits are context terms is refused when the classifier's P(unsafe) reaches this
# (or its own threshold, whichever is lower). Picked on the train split's out-of-fold scores (issue 7, round 11;
# figures in docs/architecture.md): the tuned member's held-back fold 0 and the context hits in it.
CONTEXT_THRESHOLD = 0.3
# The same for a context term written with a trick. Until round 15 such a hit was refused outright; on the train
# split's out-of-fold scores of the round-14 weights (issue 7), 128 items were refused only for one: 105 unsafe, all
# at P(unsafe) >= 0.051 ("... and st abs his wife" 0.069), and 23 safe ("b0mb$ his souffle", "t o r t u r e test of
# excavator teeth"), 21 of them below 0.02. So 0.02, under the lowest unsafe score by 2.5x.
DISGUISED_CONTEXT_THRESHOLD = 0.02


@dataclass(frozen=True)
class Term:
    category: str
    text: str  # as written in the lexicon
    keys: tuple[str, ...]  # one skeleton per word
    exact: bool  # compare unstemmed skeletons
    context: bool = False  # a context term: refused only with the classifier's agreement (see the module doc)


@dataclass(frozen=True)
class Hit:
    category: str
    term: str
    surface: str  # the words as the user wrote them
    context: bool = False  # the term is a context term
    disguised: bool = False  # a context term written with a trick (a hard hit's surface is not told apart)


def context_threshold(hit: Hit, text_policy=None, threshold: float = 1.0) -> float:
    """The P(unsafe) at which a prompt whose only blocklist hits are context terms, `hit` the first of them, is
    refused: the text policy's `context_threshold` or `disguised_context_threshold` (None: this module's constant),
    never above the classifier's own `threshold`."""
    name = "disguised_context_threshold" if hit.disguised else "context_threshold"
    value = getattr(text_policy, name, None)
    default = DISGUISED_CONTEXT_THRESHOLD if hit.disguised else CONTEXT_THRESHOLD
    return min(threshold, default if value is None else value)


def plain_words(text: str) -> set[str]:
    """The words of `text` written without a trick, lower-cased: ASCII letters only, in lower, Title or UPPER case,
    no letter three times in a row ("bombed", "Bombed", "BOMBED"; not "sTaBs", "bômb", "b0mb", "stabsss")."""
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text)
            if (w.islower() or w.istitle() or w.isupper()) and not re.search(r"(.)\1\1", w.lower())}


def _term(category: str, text: str, context: frozenset[str] = frozenset()) -> Term:
    exact = text.startswith("=")
    body = text[1:] if exact else text
    toks = [t for t in normalize_tokens(body) if t.skeleton not in STOPWORDS]
    keys = tuple(t.exact if exact else t.skeleton for t in toks)
    if not keys:
        raise ValueError(f"blocklist term {text!r} has no words")
    return Term(category, body, keys, exact, text in context)


def _find(term: Term, toks: list[Token]) -> list[tuple[int, int]]:
    n = len(term.keys)
    spans = []
    for i in range(len(toks) - n + 1):
        if all((toks[i + k].exact if term.exact else toks[i + k].skeleton) == term.keys[k] for k in range(n)):
            spans.append((i, i + n))
    return spans


def _priority(category: str) -> int:
    return CATEGORY_PRIORITY.index(category) if category in CATEGORY_PRIORITY else len(CATEGORY_PRIORITY)


def _inside_spaced_word(run: list[tuple[str, str]], i: int, j: int) -> bool:
    """Whether run[i:j] is single letters with more single letters on a side: part of a longer
    spaced-out word ("s k y s c r a p e r"), which `normalize_tokens` already matches whole, and
    in which a term found ("rape") is only a piece of another word."""
    single = lambda k: 0 <= k < len(run) and len(run[k][0]) == 1  # noqa: E731
    # the word "a" or "i" just before the spaced word is a word of its own ("put a b o m b in")
    article = single(i - 1) and run[i - 1][0] in ("a", "i") and not single(i - 2)
    return all(single(k) for k in range(i, j)) and ((single(i - 1) and not article) or single(j))


def _inside(key: str, runs: list[list[tuple[str, str]]]) -> str | None:
    """The shortest stretch of fragments whose joined skeleton contains `key`, as written."""
    best = None
    for run in runs:
        if key not in skeleton("".join(w for w, _ in run), False):
            continue
        for i in range(len(run)):
            for j in range(i + 1, len(run) + 1):
                if key in skeleton("".join(w for w, _ in run[i:j]), False):
                    if _inside_spaced_word(run, i, j) or key in skeleton("".join(w for w, _ in run[i + 1:j]), False):
                        break  # part of a longer spaced word, or not the shortest stretch from i
                    if best is None or j - i < best[1] - best[0]:
                        best = (i, j, run)
                    break
    return " ".join(raw for _, raw in best[2][best[0]:best[1]]) if best else None


class Blocklist:
    def __init__(self, blocklist: dict[str, list[str]], allowlist: list[str], minor_terms: list[str] = (),
                 context_terms: list[str] = ()):
        context = frozenset(context_terms)
        self.terms = [_term(cat, t, context) for cat, words in blocklist.items() for t in words]
        self.allow = [_term("allow", t) for t in allowlist]
        self.minor = [_term("minor", t) for t in minor_terms]

    @classmethod
    def from_lexicon(cls, path: str | Path | None = None, extra_block: dict[str, list[str]] | None = None,
                     extra_allow: list[str] = (), categories: list[str] | None = None) -> "Blocklist":
        """The shipped lexicon (or `path`), plus additions, restricted to `categories` if given."""
        if path is None:
            text = resources.files("worldsmith.guardrail").joinpath("lexicon.yaml").read_text()
        else:
            text = Path(path).read_text()
        lex = yaml.safe_load(text)
        block = {c: list(ws) for c, ws in lex["blocklist"].items()}
        for cat, words in (extra_block or {}).items():
            block.setdefault(cat, []).extend(words)
        if categories is not None:
            block = {c: ws for c, ws in block.items() if c in categories}
        context = list(lex.get("context_terms", []))
        stray = sorted(set(context) - {t for ws in lex["blocklist"].values() for t in ws})
        if stray:  # a typo here would silently leave the misspelt word's real term hard
            raise ValueError(f"{path or 'lexicon.yaml'}: context_terms {stray} are not blocklist terms")
        return cls(block, list(lex.get("allowlist", [])) + list(extra_allow), lex.get("minor_terms", []), context)

    def match(self, text: str) -> list[Hit]:
        """Every blocklist hit not covered by an allow-listed phrase, most severe category first."""
        toks = [t for t in normalize_tokens(text) if t.skeleton not in STOPWORDS]
        allowed = [span for a in self.allow for span in _find(a, toks)]
        plain = plain_words(text)
        hits: list[Hit] = []
        for term in self.terms:
            for s, e in _find(term, toks):
                if any(a0 <= s and e <= a1 for a0, a1 in allowed):
                    continue
                surface = " ".join(t.surface for t in toks[s:e])
                hits.append(Hit(term.category, term.text, surface, term.context,
                                term.context and surface not in plain))
        # words hidden across fragment boundaries ("bo mb"): search single-word terms inside runs
        runs = squashed_fragments(text)
        for term in self.terms:
            key = skeleton(term.text.replace(" ", ""), False)
            if len(term.keys) != 1 or len(key) < MIN_INSIDE_LEN or any(h.term == term.text for h in hits):
                continue
            surface = _inside(key, runs)
            if surface:
                hits.append(Hit(term.category, term.text, surface, term.context, term.context))  # disguised
        # a word split in two halves ("mur der"): two neighbouring words joined equal a whole term
        pairs = adjacent_pairs(text)
        for term in self.terms:
            if len(term.keys) != 1 or len(term.text) < MIN_JOINED_LEN or any(h.term == term.text for h in hits):
                continue
            for joined, surface in pairs:
                if skeleton(joined, not term.exact) == term.keys[0]:
                    hits.append(Hit(term.category, term.text, surface, term.context, term.context))  # disguised
                    break
        # sexual content that names a minor is the most severe category of all, and refused outright even when the
        # sexual word is a context term: no everyday sense is worth the classifier's judgement there
        if any(h.category == "sexual" for h in hits) and any(_find(m, toks) for m in self.minor):
            hits = [replace(h, category="sexual_minors", context=False, disguised=False) if h.category == "sexual"
                    else h for h in hits]
        # hard hits before disguised context hits before plain ones; then the most severe category; within it the
        # longest match, which says most about the prompt
        return sorted(hits, key=lambda h: (h.context, not h.disguised, _priority(h.category), -len(h.surface)))
