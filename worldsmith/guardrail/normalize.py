"""Text normalisation for the blocklist: undo the spelling tricks people use to slip words past a filter.

`normalize_tokens(text)` turns a prompt into a list of word *skeletons*, in order:

1. Unicode NFKD, combining marks dropped, casefolded ("Bómb" -> "bomb"); full-width and other
   compatibility forms fold to ASCII on the way.
2. leetspeak and look-alike symbols mapped to letters ("b0mb", "$uicide", "k!ll").
3. punctuation inside a word removed ("b.o.m.b", "b-o-m-b", "k*ll" -> joined).
4. runs of single letters joined ("b o m b" -> "bomb"); runs of short fragments ("bo mb") are
   offered separately by `squashed_fragments` so the matcher may look for terms inside them.
5. repeated letters collapsed ("boooomb" -> "bomb", "kill" -> "kil" on both sides of the match).
6. a light inflection stemmer (-ing, -ed, -s, -es, -er, -ers, final -e) so that "bombing",
   "bombed", "bombs" and "bomb" share one skeleton.

Blocklist terms go through the very same function, so both sides of a comparison are skeletons.
Digits that stand alone (a year, "4 robots") are left as digits: only digits glued to letters are
read as leetspeak.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# Symbols read as letters when they sit inside a word. '1' is read as 'i' ("k1ll" -> "kill" after the
# repeated-letter fold, because 'l' and 'i' are both folded to 'i' in skeletons, see _FOLD below).
LEET = {
    "0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "i", "+": "t", "€": "e", "£": "l", "¢": "c", "ß": "ss",
}
# Letters that leetspeak makes ambiguous are folded to one letter in skeletons ("l" and "i" are both
# written "1"; "vv" reads as "w"), applied identically to the text and to the blocklist terms.
_FOLD = str.maketrans({"l": "i"})

# Characters that people put between the letters of a word to break it up.
_JOINERS = ".-_*'`~^:;,/\\\"·•"
_WORD_CHARS = "a-z0-9@$!|+€£¢"
_SUFFIXES = ("ings", "ing", "ers", "er", "ed", "es", "s")


@dataclass(frozen=True)
class Token:
    skeleton: str  # folded, stemmed form used for matching
    exact: str  # folded but not stemmed, for terms that must not be stemmed ("rape" vs "rap")
    surface: str  # what the user wrote, for the refusal message
    squashed: bool = False  # joined from spaced-out fragments: the matcher may search inside it


# Latin letters that NFKD does not decompose into a base letter plus a mark ("ø" stays "ø").
_LATIN_EXTRA = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b", "ɨ": "i",
                              "ʉ": "u", "ɍ": "r", "ȼ": "c", "ɇ": "e", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"})
# Cyrillic and Greek letters that look like Latin ones (after casefolding), after Unicode's
# confusables list (UTS #39) restricted to the unambiguous lower-case look-alikes. Applied only to
# words that are written in mixed scripts or entirely in look-alikes ("bоmb" with a Cyrillic о,
# "аре" all Cyrillic), so that ordinary Russian or Greek words are left alone.
_CONFUSABLE = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "ѵ": "v", "һ": "h", "ʏ": "y",
    # capitals, mapped before casefolding (Greek "Μ" looks like "M", its lower case "μ" does not)
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i",
    "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
}
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLE)


def _unconfuse(word: str) -> str:
    letters = [c for c in word if c.isalpha()]
    has_latin = any("a" <= c.lower() <= "z" for c in letters)
    all_lookalike = bool(letters) and all(c in _CONFUSABLE or "a" <= c.lower() <= "z" for c in letters)
    return word.translate(_CONFUSABLE_TABLE) if all_lookalike or (has_latin and letters) else word


def fold_unicode(text: str) -> str:
    """NFKD (full-width, mathematical and circled letters fold to ASCII), combining marks removed
    (accents, stacked "zalgo" marks), invisible format characters removed (zero-width space and
    joiner, soft hyphen), casefolded, Latin letters without a decomposition mapped ("ø" -> "o"),
    and Cyrillic/Greek look-alikes mapped inside Latin-looking words ("bоmb" -> "bomb")."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed
                   if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    unconfused = re.sub(r"[^\W\d_]+", lambda m: _unconfuse(m.group(0)), kept)
    return unconfused.casefold().translate(_LATIN_EXTRA)


def _deleet(word: str) -> str:
    # a number, or a unit/format word such as "4k", "3d", "1080p", "60fps", "h264", is not
    # leetspeak: only words with >= 2 letters that do not start with a multi-digit number are read
    if sum(c.isalpha() for c in word) < 2 or re.match(r"\d{2,}", word):
        return word
    return "".join(LEET.get(c, c) for c in word)


def _collapse_repeats(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


def stem(word: str) -> str:
    """A deliberately small stemmer: strip one inflectional suffix, then a final 'e'."""
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            word = word[: -len(suf)]
            break
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    return word


# Cached: `Blocklist.match` asks for the same few keys hundreds of times per prompt (every single-word term
# against every pair of neighbouring words), and the regex work here was most of the pre-guard's time.
@lru_cache(maxsize=1 << 16)
def skeleton(word: str, stemmed: bool = True) -> str:
    """The matching key of one (already de-leeted) word: repeats collapsed, stemmed, 'l' folded to 'i'.

    Stemming runs before the l/i fold so that "kills" still loses its "s" ("kils" -> "kil" -> "ki")."""
    word = _collapse_repeats(word)
    if stemmed:
        word = stem(word)
    return _collapse_repeats(word.translate(_FOLD))


def _raw_words(text: str) -> list[tuple[str, str]]:
    """(word with joiners removed, word as written) pairs, in order."""
    text = fold_unicode(text)
    # a joiner between two word characters is a spelling trick, not a boundary: "b.o.m.b" -> "bomb"
    w, j = f"[{_WORD_CHARS}]", f"[{re.escape(_JOINERS)}]"
    out = []
    for m in re.finditer(rf"{w}+(?:{j}+{w}+)*", text):
        raw = m.group(0).rstrip("!|+") or m.group(0)  # '!' ending a word is punctuation ("bomb!")
        out.append((re.sub(j, "", raw), raw))
    return out


def _clean_words(text: str) -> list[tuple[str, str]]:
    """(de-leeted letters-and-digits word, surface as written) pairs."""
    pairs = [(re.sub(r"[^a-z0-9]", "", _deleet(w)), raw) for w, raw in _raw_words(text)]
    return [(w, raw) for w, raw in pairs if w]


def normalize_tokens(text: str) -> list[Token]:
    """Prompt -> word skeletons in order; runs of >= 2 single letters are joined ("b o m b")."""
    pairs = _clean_words(text)
    tokens: list[Token] = []
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and len(pairs[j][0]) == 1 and pairs[j][0].isalpha():
            j += 1
        if j - i >= 2:
            joined = "".join(w for w, _ in pairs[i:j])
            surface = " ".join(raw for _, raw in pairs[i:j])
            tokens.append(Token(skeleton(joined), skeleton(joined, False), surface, squashed=True))
            i = j
            continue
        w, raw = pairs[i]
        if w.isdigit():
            tokens.append(Token(w, w, raw))
        else:
            tokens.append(Token(skeleton(w), skeleton(w, False), raw))
        i += 1
    return tokens


def squashed_fragments(text: str, max_fragment: int = 3) -> list[list[tuple[str, str]]]:
    """Runs of >= 2 consecutive short fragments (<= max_fragment letters), each run a list of
    (word, surface) pairs. The matcher looks for blocklist terms *inside* the joined runs
    ("bo mb" -> "bomb"), since the word boundaries in them are the trick."""
    out, run = [], []
    for w, raw in _clean_words(text) + [("", "")]:
        if w and len(w) <= max_fragment and w.isalpha():
            run.append((w, raw))
            continue
        if len(run) >= 2:
            out.append(run)
        run = []
    return out


def adjacent_pairs(text: str, min_part: int = 2) -> list[tuple[str, str]]:
    """(joined word, surface) for every two neighbouring alphabetic words of >= `min_part` letters:
    the "split word" trick cuts a word in two longer halves ("poi son", "explo sives") that the
    short-fragment runs of `squashed_fragments` do not cover. The matcher compares the join with
    whole blocklist terms only (never searches inside it), so "be at" can only meet a term "beat"."""
    words = [(w, raw) for w, raw in _clean_words(text) if w.isalpha()]
    return [(a + b, f"{ra} {rb}") for (a, ra), (b, rb) in zip(words, words[1:])
            if len(a) >= min_part and len(b) >= min_part]


def normalize_text(text: str, keep_doubles: bool = False,
                   splits_article: Callable[[str], bool] | None = None) -> str:
    """The prompt as a readable normalised string (leet undone, tricks joined, runs of >= 3 equal
    letters cut to one, or to two with `keep_doubles`: "peeerson" -> "person", "killlll" -> "kill"),
    used as a further reading for the semantic classifier. A run of spaced single letters is joined into one
    word, unless `splits_article(joined)` says its first letter is the word "a" or "i" standing before it
    ("a m a s s a c r e" -> "a massacre"; the caller knows a vocabulary, this module does not)."""
    words = [_deleet(w) for w, _ in _raw_words(text)]
    out, run = [], []
    for w in words + [""]:
        if w and len(w) == 1 and w.isalpha():
            run.append(w)
            continue
        if len(run) >= 3 and splits_article is not None and splits_article("".join(run)):
            out.append(run.pop(0))
        if run:
            out.append("".join(run) if len(run) >= 3 else " ".join(run))
            run = []
        if w:
            out.append(re.sub(r"(.)\1{2,}", r"\1\1" if keep_doubles else r"\1", w))
    return " ".join(out)
