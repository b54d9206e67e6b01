"""Per-document quality signals: numbers to store beside a document, not verdicts.

They let a data team see a corpus's shape (how redundant, how readable, how varied) and pick
thresholds from the distribution before turning a signal into a rule. The repetition numbers are
the ones `quality.gopher.GopherRepetition` judges, computed by the same helpers.
"""

from __future__ import annotations

import re
import zlib
from itertools import islice

from fm_pipeline.curation.quality.gopher import GopherRepetition, top_ngram_chars
from fm_pipeline.curation.quality.view import TextView, count_sentences_in
from fm_pipeline.curation.stopwords import bare_words
from fm_pipeline.curation.words import has_spaceless_chars

WINDOW_WORDS = 1000
"""Type-token ratio and readability read the first this many words: the ratio falls as texts grow, so a fixed
window keeps it comparable across lengths, and a book's opening reads like the rest of it."""
# English syllables: vowel groups, less a silent final e (made, time; not table, free), at least one a
# word. Counted on ASCII bytes (other characters become "?"), where these patterns run several times faster.
_EN_VOWELS = bytes.maketrans(b"aeiouy" + bytes(c for c in range(256) if c not in b"aeiouy"), b"a" * 6 + b" " * 250)
# A silent e ends a word after a consonant (not l) with a vowel earlier in the word: sought in the reversed
# bytes, from the final e, where it is found 5x faster than forwards (from every vowel to the word's end).
_EN_SILENT_E_REVERSED = re.compile(rb"e(?<!\we)[b-df-hj-km-np-tv-xz][a-z]*?[aeiouy]")
_EN_NO_VOWEL_WORD = re.compile(rb"\b[b-df-hj-np-tv-xz]+\b")
# Spanish syllables: vowel groups (diphthongs are one), plus one per hiatus (strong+strong, or an accented í/ú).
_ES_VOWEL_GROUP = re.compile(r"[aeiouáéíóúü]+")
_ES_HIATUS = re.compile(r"(?=[aeoáéó][aeoáéó]|[íú][aeiouáéó]|[aeiouáéó][íú])")
_REPETITION = GopherRepetition()


def _syllables_en(lower: str) -> int:
    ascii_text = lower.encode("ascii", "replace")
    return (
        len(ascii_text.translate(_EN_VOWELS).split())
        - len(_EN_SILENT_E_REVERSED.findall(ascii_text[::-1]))
        + len(_EN_NO_VOWEL_WORD.findall(ascii_text))
    )


def _syllables_es(lower: str) -> int:
    return len(_ES_VOWEL_GROUP.findall(lower)) + len(_ES_HIATUS.findall(lower))


def _opening(view: TextView) -> TextView:
    """The view of the text up to its WINDOW_WORDS-th whitespace-separated word (all of it when shorter).

    Without space-less characters its words are those whitespace-separated words, already split here. A text
    of at most WINDOW_WORDS `split_words` tokens has no more whitespace-separated words (each holds a token or
    more), so it needs no split.
    """
    if len(view.words) <= WINDOW_WORDS:
        return view
    parts = view.text.split(maxsplit=WINDOW_WORDS)
    if len(parts) <= WINDOW_WORDS:
        return view
    text = view.text[: len(view.text) - len(parts.pop())].rstrip()
    return TextView(text, view.lang, None if has_spaceless_chars(text) else parts)


def _readability(view: TextView) -> dict[str, float]:
    """Flesch reading ease for English, Fernández-Huerta (textstat's form) for Spanish; {} elsewhere."""
    if view.lang not in ("en", "es"):
        return {}
    n_words = len(view.words) - len(view.letterless_words)
    if not n_words:
        return {}
    lower = view.lowered
    words_per_sentence = n_words / count_sentences_in(view.lines)
    if view.lang == "en":
        return {"flesch_reading_ease": 206.835 - 1.015 * words_per_sentence - 84.6 * _syllables_en(lower) / n_words}
    return {"fernandez_huerta": 206.84 - 60.0 * _syllables_es(lower) / n_words - 1.02 * words_per_sentence}


def quality_signals(text: str, lang: str, view: TextView | None = None) -> dict[str, float]:
    """Signals of one document, rounded to 4 decimals (deterministic); {} for a blank text.

    compression_ratio: zlib (level 1, fast) size / UTF-8 size (low = redundant, high = dense or random);
    mean_word_length; dup_line_frac; and over the first WINDOW_WORDS words: flesch_reading_ease (en) /
    fernandez_huerta (es); ttr (distinct / all lowercased words); top_2gram_frac (as GopherRepetition counts
    it).
    A `view` of the same text and language, shared with the rules, saves splitting it twice.
    """
    raw = text.encode("utf-8")
    view = view or TextView(text, lang)
    if not view.words:
        return {}
    opening = _opening(view)
    head = list(filter(None, bare_words(islice(opening.words, WINDOW_WORDS))))
    lines = view.lines
    signals = {
        "compression_ratio": len(zlib.compress(raw, 1)) / len(raw),
        **_readability(opening),
        "ttr": len(set(head)) / len(head) if head else 0.0,
        "mean_word_length": view.mean_word_length,
        "dup_line_frac": view.duplicate_lines[0] / len(lines),
        "top_2gram_frac": top_ngram_chars(opening.words, 2 * _REPETITION.ngram_scale(opening)) / len(opening.text),
    }
    return {key: round(value, 4) for key, value in signals.items()}
