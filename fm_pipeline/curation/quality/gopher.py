"""Gopher's quality and repetition rules (Rae et al. 2021), and the n-gram counts they judge by."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, islice, repeat
from operator import gt, itemgetter, mul, sub
from typing import ClassVar

from fm_pipeline.curation.quality.rule import Rule
from fm_pipeline.curation.quality.view import ELLIPSES, TextView, duplicates
from fm_pipeline.curation.stopwords import count_stop_words


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All n-grams of `words`, as tuples (built in C by `zip`)."""
    return list(zip(*(islice(words, i, None) for i in range(n)), strict=False))


def most_frequent(counts: Counter[tuple[str, ...]]) -> tuple[int, int]:
    """Count and length in characters of the most frequent n-gram in `counts` (the first seen of ties)."""
    gram, count = max(counts.items(), key=itemgetter(1))
    return count, sum(map(len, gram))


def top_ngram_chars(words: Sequence[str], n: int) -> int:
    """Characters covered by the most frequent n-gram: its count times its length (Gopher's top n-gram)."""
    counts = Counter(zip(*(islice(words, i, None) for i in range(n)), strict=False))
    if not counts:
        return 0
    count, chars = most_frequent(counts)
    return count * chars


def duplicate_ngram_chars(words: Sequence[str], n: int, candidates: Iterable[int] | None = None) -> int:
    """Characters in n-grams that repeat an earlier n-gram, counted left to right without overlap.

    As datatrove's `find_all_duplicate`: after a repeat the scan jumps past it, so a run of
    repeated text is counted once, and only n-grams at positions actually visited are remembered.
    `candidates`, ascending start positions that include every repeated n-gram's, lets the scan skip the
    rest: an n-gram that occurs once never matches, so remembering it changes nothing.
    """
    seen: set[tuple[str, ...]] = set()
    chars, idx = 0, 0
    for start in range(len(words) - n + 1) if candidates is None else candidates:
        if start < idx:
            continue
        gram = tuple(words[start : start + n])
        if gram in seen:
            chars += sum(map(len, gram))
            idx = start + n
        else:
            seen.add(gram)
            idx = start + 1
    return chars


@dataclass(frozen=True)
class GopherQuality(Rule):
    """Gopher's quality rules (Rae et al. 2021, A.1.1), language-aware.

    For space-less scripts (zh, ja, th) every character is a word: `min_words` then counts
    characters and the mean-word-length rule is skipped. The stop-word rule uses the document's
    own language and is skipped when that language has no list (see `stopwords`).
    `word_length_overrides` holds (lang, min, max) mean-word-length bounds where Gopher's 3..10,
    set for English, rejects normal prose: Korean whitespace tokens are words with their particles
    in 2-4 syllable blocks (UDHR: 2.9-3.2), and the Dravidian languages are agglutinative and
    written in abugidas where every vowel sign is a code point (Tamil UDHR: 10.2-11.3).
    """

    name: ClassVar[str] = "gopher_quality"
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # for '#' and for ellipses ('...' or '…'), each
    max_bullet_lines_frac: float = 0.9
    max_ellipsis_lines_frac: float = 0.3
    min_alpha_words_frac: float = 0.8
    min_stop_words: int = 2
    bullets: tuple[str, ...] = ("•", "●", "○", "◦", "▪", "▫", "■", "□", "‣", "⁃", "∙", "·", "-", "–", "—", "*")
    word_length_overrides: tuple[tuple[str, float, float], ...] = (
        ("ko", 2.0, 10.0), ("ta", 3.0, 16.0), ("ml", 3.0, 16.0), ("te", 3.0, 16.0), ("kn", 3.0, 16.0),
    )  # fmt: skip

    def word_length_bounds(self, lang: str) -> tuple[float, float]:
        """(min, max) mean word length for `lang`: an override, or Gopher's defaults."""
        for code, low, high in self.word_length_overrides:
            if code == lang:
                return low, high
        return self.min_mean_word_length, self.max_mean_word_length

    def check(self, view: TextView) -> str | None:
        text, n_words = view.text, view.n_words
        if not self.min_words <= n_words <= self.max_words:
            return self._reason("word_count")
        if not view.spaceless:
            low, high = self.word_length_bounds(view.lang)
            if not low <= view.mean_word_length <= high:
                return self._reason("mean_word_length")
        if text.count("#") > self.max_symbol_word_ratio * n_words:
            return self._reason("hash_ratio")
        if text.count("...") + text.count("…") > self.max_symbol_word_ratio * n_words:
            return self._reason("ellipsis_ratio")
        lines = view.lines
        if sum(1 for line in lines if line.startswith(self.bullets)) > self.max_bullet_lines_frac * len(lines):
            return self._reason("bullet_lines")
        if sum(1 for line in lines if line.endswith(ELLIPSES)) > self.max_ellipsis_lines_frac * len(lines):
            return self._reason("ellipsis_lines")
        words = view.words
        if len(words) - len(view.letterless_words) < self.min_alpha_words_frac * len(words):
            return self._reason("alpha_words")
        if self.min_stop_words:
            found = count_stop_words(words, view.lang, limit=self.min_stop_words)
            if found is not None and found < self.min_stop_words:
                return self._reason("stop_words")
        return None


@dataclass(frozen=True)
class GopherRepetition(Rule):
    """Gopher's repetition rules (Rae et al. 2021, table A1), with datatrove's definitions.

    Character fractions are over the whole text. N-grams are of `split_words` tokens; in
    space-less scripts those are characters, and a word there is 1.5-4 characters, so n-grams of
    such text are `spaceless_ngram_scale` times longer (the Japanese and Thai UDHR, legal text full
    of set phrases, otherwise fail the duplicated 5-gram rule on 5-character "n-grams").
    Reasons: `dup_para_frac`, `dup_para_char_frac`, `dup_line_frac`, `dup_line_char_frac`, then
    `top_<n>gram_frac` and `dup_<n>gram_frac`, each family of n-gram rules smallest n first.
    """

    name: ClassVar[str] = "gopher_repetition"
    max_dup_line_frac: float = 0.3
    max_dup_para_frac: float = 0.3
    max_dup_line_char_frac: float = 0.2
    max_dup_para_char_frac: float = 0.2
    top_ngrams: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    dup_ngrams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    spaceless_ngram_scale: int = 3

    def check(self, view: TextView) -> str | None:
        size = len(view.text)
        if not size:
            return None
        paragraphs, lines = view.paragraphs, view.lines
        for unit, parts, (count, chars), max_frac, max_char_frac in (
            ("para", paragraphs, duplicates(paragraphs), self.max_dup_para_frac, self.max_dup_para_char_frac),
            ("line", lines, view.duplicate_lines, self.max_dup_line_frac, self.max_dup_line_char_frac),
        ):
            if count > max_frac * len(parts):
                return self._reason(f"dup_{unit}_frac")
            if chars > max_char_frac * size:
                return self._reason(f"dup_{unit}_char_frac")
        words = view.words
        scale = self.ngram_scale(view)
        # Bounds first, counting only when a bound breaks a limit. The most frequent n-gram occurs no
        # more often than its words, nor than the most frequent shorter n-gram (its prefix is one), and
        # is no longer than the longest run of n tokens: usually far below the limit, with no n-gram built.
        counts = view.word_counts
        heaviest = max(map(mul, counts.values(), map(len, counts)), default=0)
        top_count: int | None = None  # of the n-grams counted last, if any were
        seed: tuple[list[tuple[str, ...]], Counter[tuple[str, ...]]] | None = None
        for n, limit in sorted(self.top_ngrams):
            length = n * scale
            if top_count is None:
                bound = length * heaviest
            else:
                cumulative = [0, *accumulate(map(len, words))]  # characters of words[a:b]: cumulative[b] - [a]
                bound = top_count * max(map(sub, cumulative[length:], cumulative), default=0)
            if bound <= limit * size:
                continue
            grams = ngrams(words, length)
            gram_counts = Counter(grams)
            if not gram_counts:
                break
            top_count, chars = most_frequent(gram_counts)
            if top_count * chars > limit * size:
                return self._reason(f"top_{n}gram_frac")
            seed = grams, gram_counts
        return self._duplicate_ngrams(words, size, scale, seed)

    def ngram_scale(self, view: TextView) -> int:
        """How many tokens make one word of an n-gram in this text (1, or more for space-less scripts)."""
        return self.spaceless_ngram_scale if view.spaceless else 1

    def _duplicate_ngrams(
        self,
        words: list[str],
        size: int,
        scale: int,
        seed: tuple[list[tuple[str, ...]], Counter[tuple[str, ...]]] | None,
    ) -> str | None:
        """Duplicated n-gram rules, smallest n first.

        The greedy count only counts repeats of an n-gram, so it is at most the sum over repeated
        n-grams of (count - 1) x length; the exact scan runs only when that bound breaks the limit.
        Every repeated n-gram starts where a repeated shorter n-gram starts, so only those start
        positions are carried to the next n; `seed`, shorter n-grams already counted by the top
        n-gram rules (grams by position, and their counts), gives the first such positions.
        """
        positions: Sequence[int] | None = None
        if seed is not None:
            grams, counts = seed
            positions = list(compress(range(len(grams)), map(gt, map(counts.__getitem__, grams), repeat(1))))
        rules = sorted(self.dup_ngrams)
        for step, (n, limit) in enumerate(rules):
            length = n * scale
            if positions is None:
                grams = ngrams(words, length)
                positions = range(len(grams))
            else:
                last = len(words) - length
                positions = [p for p in positions if p <= last]
                grams = [tuple(words[p : p + length]) for p in positions]
            counts = Counter(grams)
            if len(counts) == len(grams):
                return None  # no repeated n-gram, hence none longer either
            repeated = set(compress(counts, map(gt, counts.values(), repeat(1))))
            bound = sum((counts[gram] - 1) * sum(map(len, gram)) for gram in repeated)
            if bound > limit * size and duplicate_ngram_chars(
                words, length, [p for p, gram in zip(positions, grams, strict=True) if gram in repeated]
            ) > limit * size:
                return self._reason(f"dup_{n}gram_frac")
            if step + 1 < len(rules):
                positions = list(compress(positions, map(repeated.__contains__, grams)))
        return None
