"""A document's language, read segment by segment (lines, and sentences of long lines), and code-switching."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from fm_pipeline.curation.langid.backends import THREE_LETTERS_RE, UNDETERMINED, LanguageDetector

# Below this share of characters a second language is noise (a quote, a name), not code-switching.
CODE_SWITCH_MIN_SHARE = 0.10
# A segment whose best guess is below even odds says nothing about its language. On UDHR this halves
# the monolingual documents fastText calls code-switched (13 -> 6 of 328: hr/sr, sk/cs, id/ms confusions).
SEGMENT_MIN_SCORE = 0.5
# identify() reads about this many characters of a document, sampled across it: enough for its language and a
# switch of language, and it bounds the cost of language ID per document (the stage's costliest step).
IDENTIFY_MAX_CHARS = 1_000
# Consecutive short lines or sentences are read together up to about this many characters.
SEGMENT_CHARS = 100
# Lines longer than this are split into sentences, so a switch inside a paragraph is seen.
_LONG_LINE_CHARS = 200
# Sentence ends: Latin, Devanagari danda and Arabic question mark need whitespace after them; the full-width
# CJK ones do not, because CJK text puts no space between sentences. The mark is captured (and kept) and the
# whitespace after it replaced by a line break to split on: a pattern that starts with a plain character
# class lets the regex engine scan ahead for it, twice as fast as splitting on a lookbehind, which is tried
# at every position.
_SENTENCE_END_RE = re.compile(r"([.!?।؟。！？])(?:(?<=[。！？])|(?=\s))\s*")


@dataclass(frozen=True)
class LangResult:
    """A document's language. `segments` (language -> share of characters) is set only when the
    document is code-switched: at least two languages each hold CODE_SWITCH_MIN_SHARE of it."""

    lang: str
    score: float
    segments: dict[str, float] | None = None


def _segments(text: str) -> list[str]:
    """Lines, and sentences of long lines, with consecutive short pieces joined up to SEGMENT_CHARS.

    Joining keeps a switch of language visible at the scale of a sentence or two while calling the
    detector once per ~100 characters rather than once per short line (verse, lists, dialogue).
    """
    segments: list[str] = []
    pending = ""
    for line in text.split("\n"):
        pieces = _SENTENCE_END_RE.sub("\\1\n", line).split("\n") if len(line) > _LONG_LINE_CHARS else [line]
        for piece in map(str.strip, pieces):
            if not piece:
                continue
            pending = f"{pending} {piece}" if pending else piece
            if len(pending) >= SEGMENT_CHARS:
                segments.append(pending)
                pending = ""
    if pending:
        segments.append(pending)
    return segments


def _placed_segments(
    text: str, detector: LanguageDetector, min_chars: int, min_score: float, max_chars: int | None
) -> list[tuple[str, float, int]]:
    """(language, probability, characters) of the segments the detector places. When the segments hold more
    than `max_chars` characters, every k-th segment is read, so the sample spans the whole document (a switch
    of language in its second half is still seen) at a bounded cost."""
    segments = [segment for segment in _segments(text) if len(segment) >= min_chars]
    total = sum(map(len, segments))
    stride = 1 if max_chars is None or total <= max_chars else -(-total // max_chars)
    placed: list[tuple[str, float, int]] = []
    for segment in segments[::stride]:
        lang, score = detector.detect(segment)
        if lang != UNDETERMINED and score >= min_score:
            placed.append((lang, score, len(segment)))
    return placed


def detect_segments(
    text: str, detector: LanguageDetector, min_chars: int = 20, min_score: float = SEGMENT_MIN_SCORE,
    max_chars: int | None = None,
) -> dict[str, float]:
    """Share of characters per language over the text's segments (lines, and sentences of long lines)
    of at least `min_chars` characters; segments the detector cannot place with at least `min_score`
    are left out. Empty when no segment was placed."""
    chars: Counter[str] = Counter()
    for lang, _, size in _placed_segments(text, detector, min_chars, min_score, max_chars):
        chars[lang] += size
    total = sum(chars.values())
    return {lang: round(chars[lang] / total, 4) for lang in sorted(chars)}


def identify(text: str, detector: LanguageDetector, max_chars: int = IDENTIFY_MAX_CHARS) -> LangResult:
    """Language of a whole document, noticing code-switching, in one pass over its segments.

    The language is the one holding most of the placed segments' characters, and the score their
    character-weighted mean probability; so each character is read by the detector once, not once for
    the whole text and again per segment. A text with no placeable segment (short, or one run-on line
    the detector cannot settle per sentence) is judged whole. `segments` is set when at least two
    languages each hold CODE_SWITCH_MIN_SHARE of the characters.
    """
    if not THREE_LETTERS_RE.search(text):
        return LangResult(UNDETERMINED, 0.0)
    placed = _placed_segments(text, detector, 20, SEGMENT_MIN_SCORE, max_chars)
    if not placed:
        lang, score = detector.detect(text[:max_chars])
        return LangResult(lang, score) if lang != UNDETERMINED else LangResult(UNDETERMINED, 0.0)
    chars: Counter[str] = Counter()
    weighted: Counter[str] = Counter()
    for lang, score, size in placed:
        chars[lang] += size
        weighted[lang] += score * size
    total = sum(chars.values())
    majority = max(chars, key=lambda code: (chars[code], code))
    score = weighted[majority] / chars[majority]
    shares = {lang: round(chars[lang] / total, 4) for lang in sorted(chars)}
    switched = sum(share >= CODE_SWITCH_MIN_SHARE for share in shares.values()) >= 2
    return LangResult(majority, score, shares if switched else None)
