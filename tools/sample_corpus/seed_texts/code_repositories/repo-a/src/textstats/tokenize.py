# SPDX-License-Identifier: MIT
# Copyright (c) 2023 The textstats authors
"""Small, dependency-free tokenization helpers used by the textstats CLI."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

_WORD_RE = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?。！？])\s+")
_ABBREVIATIONS = frozenset({"e.g.", "i.e.", "etc.", "mr.", "mrs.", "dr.", "vs."})


def normalize(text: str) -> str:
    """Return NFKC-normalized text with collapsed whitespace."""
    text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


def words(text: str, lowercase: bool = True) -> list[str]:
    """Split text into word tokens, keeping internal apostrophes ("don't")."""
    tokens = _WORD_RE.findall(normalize(text))
    return [t.lower() for t in tokens] if lowercase else tokens


def sentences(text: str) -> list[str]:
    """Split text into sentences on terminal punctuation.

    Common abbreviations such as "e.g." do not end a sentence.
    """
    parts = _SENTENCE_END_RE.split(normalize(text))
    merged: list[str] = []
    for part in parts:
        if merged and merged[-1].split()[-1].lower() in _ABBREVIATIONS:
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return [s for s in merged if s]


def ngrams(tokens: Iterable[str], n: int) -> Iterator[tuple[str, ...]]:
    """Yield successive n-grams from a token stream."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    window: list[str] = []
    for token in tokens:
        window.append(token)
        if len(window) > n:
            window.pop(0)
        if len(window) == n:
            yield tuple(window)


def type_token_ratio(tokens: list[str]) -> float:
    """Distinct tokens divided by total tokens; 0.0 for empty input."""
    if not tokens:
        return 0.0
    return len(set(tokens)) / len(tokens)


def char_script(ch: str) -> str:
    """Best-effort script name of a character, e.g. 'LATIN' or 'HANGUL'."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "UNKNOWN"
    return name.split(" ", 1)[0]


def dominant_script(text: str) -> str:
    """The most frequent script among the alphabetic characters of text."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = char_script(ch)
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return "UNKNOWN"
    return max(sorted(counts), key=counts.__getitem__)
