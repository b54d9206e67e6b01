"""C4's clean-up rules (Raffel et al. 2020), as a judgement on the whole document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from fm_pipeline.curation.quality.rule import Rule
from fm_pipeline.curation.quality.view import (
    ELLIPSES,
    NO_TERMINAL_PUNCT_LANGS,
    TERMINAL_PUNCT,
    TextView,
    count_sentences,
)
from fm_pipeline.curation.words import split_words

POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_POLICY = re.compile("|".join(POLICY_PHRASES), re.IGNORECASE)
_JAVASCRIPT = re.compile("javascript", re.IGNORECASE)
_LOREM_IPSUM = re.compile("lorem ipsum", re.IGNORECASE)
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")


@dataclass(frozen=True)
class C4Quality(Rule):
    """C4's clean-up rules (Raffel et al. 2020; datatrove `C4QualityFilter`) as a judgement only.

    C4 walks the lines and drops those without terminal punctuation (or ending in an ellipsis),
    with fewer than 3 words, with a word over 1000 characters, mentioning javascript, or holding
    a cookie/terms-of-use phrase; it drops the whole page when a surviving line says "lorem ipsum"
    or holds a curly bracket, or when the survivors hold fewer than 5 sentences. Here the same walk
    decides, but nothing is removed: the document is kept whole or rejected whole, so a kept page
    may still hold lines C4 would have cut (the FineWeb and Gopher families catch pages made mostly
    of them). Reasons: `lorem_ipsum`, `curly_bracket`, `terminal_punct` (no line ends a sentence:
    nothing would survive), `too_few_sentences`. Terminal punctuation covers other scripts (。 । ؟ ۔ …);
    for Thai and Lao, which end sentences with a space, the punctuation test is skipped.
    """

    name: ClassVar[str] = "c4"
    min_sentences: int = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    reject_curly_bracket: bool = True
    """C4's guard against code; off for LaTeX papers, whose math is kept as written (`\\frac{a}{b}`)."""

    def check(self, view: TextView) -> str | None:
        # Whole-page tests first: without "lorem ipsum" or "{" anywhere, only the sentence count can
        # fail, and the walk stops as soon as enough sentences have survived.
        lorem = _LOREM_IPSUM.search(view.text) is not None
        curly = self.reject_curly_bracket and "{" in view.text
        needs_punct = view.lang not in NO_TERMINAL_PUNCT_LANGS
        any_terminal = not needs_punct
        sentences = 0
        for line in view.lines:
            if len(line) > self.max_word_length and max(map(len, line.split())) > self.max_word_length:
                continue
            if "[" in line:
                line = _CITATION.sub("", line).rstrip()
            if needs_punct:
                if not line.endswith(TERMINAL_PUNCT) or line.endswith(ELLIPSES):
                    continue
                any_terminal = True
            if len(line.split(None, self.min_words_per_line - 1)) < self.min_words_per_line and (
                not view.spaceless or len(split_words(line)) < self.min_words_per_line
            ):
                continue
            if lorem and _LOREM_IPSUM.search(line):
                return self._reason("lorem_ipsum")
            if _JAVASCRIPT.search(line):
                continue
            if curly and "{" in line:
                return self._reason("curly_bracket")
            if _POLICY.search(line):
                continue
            sentences += count_sentences(line)
            if sentences >= self.min_sentences and not (lorem or curly):
                return None
        if not any_terminal:
            return self._reason("terminal_punct")
        if sentences < self.min_sentences:
            return self._reason("too_few_sentences")
        return None
