"""FineWeb's own quality rules (Penedo et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fm_pipeline.curation.quality.rule import Rule
from fm_pipeline.curation.quality.view import NO_TERMINAL_PUNCT_LANGS, TERMINAL_PUNCT, TextView


@dataclass(frozen=True)
class FineWebQuality(Rule):
    """FineWeb's own rules (Penedo et al. 2024; datatrove `FineWebQualityFilter`), comparisons as published.

    Fails when the share of lines ending in terminal punctuation is <= `min_line_punct_frac`, when
    the share of lines of <= `short_line_length` characters is >= `max_short_line_frac`, when the
    characters of repeated lines are >= `max_dup_line_char_frac` of the non-newline characters, or
    when there are more than `max_newline_word_ratio` line breaks per word (a list, not prose).
    Lines are the non-empty ones (FineWeb ran on trafilatura output, which has no blank lines; blank
    paragraph breaks would otherwise count as short, unpunctuated lines). Thai and Lao skip the
    punctuation rule, as in C4Quality. In space-less scripts a character carries about what three
    Latin ones do, so a short line there is one of <= `spaceless_short_line_length` characters.
    """

    name: ClassVar[str] = "fineweb"
    min_line_punct_frac: float = 0.12
    short_line_length: int = 30
    spaceless_short_line_length: int = 10
    max_short_line_frac: float = 0.67
    max_dup_line_char_frac: float = 0.01
    max_newline_word_ratio: float = 0.3

    def check(self, view: TextView) -> str | None:
        lines = view.lines
        n_lines = len(lines) or 1
        if view.lang not in NO_TERMINAL_PUNCT_LANGS:
            ended = sum(1 for line in lines if line.endswith(TERMINAL_PUNCT))
            if ended <= self.min_line_punct_frac * n_lines:
                return self._reason("line_punct_frac")
        limit = self.spaceless_short_line_length if view.spaceless else self.short_line_length
        short = sum(1 for line in lines if len(line) <= limit)
        if short >= self.max_short_line_frac * n_lines:
            return self._reason("short_line_frac")
        chars = len(view.text) - view.text.count("\n")
        if view.duplicate_lines[1] >= self.max_dup_line_char_frac * chars:
            return self._reason("dup_line_char_frac")
        if len(lines) - 1 > self.max_newline_word_ratio * len(view.words):
            return self._reason("list_ratio")
        return None
