"""The rule lists for each source profile: which families judge prose, source files and conversations."""

from __future__ import annotations

from fm_pipeline.curation.quality.c4 import C4Quality
from fm_pipeline.curation.quality.code import CodeQuality
from fm_pipeline.curation.quality.conversation import ConversationQuality
from fm_pipeline.curation.quality.fineweb import FineWebQuality
from fm_pipeline.curation.quality.gopher import GopherQuality, GopherRepetition
from fm_pipeline.curation.quality.rule import Rule


def prose_rules() -> list[Rule]:
    """The rule set for natural-language documents; the reason reported is the first failure.

    FineWeb's order (Gopher, C4, FineWeb) with Gopher's quality rules before its repetition rules:
    they are the cheapest and reject the most junk (too short, symbols, no stop words).
    """
    return [GopherQuality(), GopherRepetition(), C4Quality(), FineWebQuality()]


def table_rules() -> list[Rule]:
    """The rule set for text linearized from tables (`curation.structured`, meta `format: table`), where prose
    rules misfire by construction: every row repeats the column names (Gopher's n-gram repetition rules fire),
    cells are mostly numbers (its 80% share of words with a letter) and hold no stop words. So: Gopher's
    quality rules with the letter share lowered to 50% and no stop-word minimum, then C4 and FineWeb."""
    return [GopherQuality(min_alpha_words_frac=0.5, min_stop_words=0), C4Quality(), FineWebQuality()]


def latex_rules() -> list[Rule]:
    """The prose rule set for papers read from LaTeX (meta `format: latex`), with C4's curly-bracket rule
    off: the math they keep as written is full of braces, which C4 takes for code."""
    return [GopherQuality(), GopherRepetition(), C4Quality(reject_curly_bracket=False), FineWebQuality()]


def code_rules() -> list[Rule]:
    """The rule set for source files: prose rules would reject code for its brackets, short lines and
    repeated lines (closing braces, `return None`), so code gets the StarCoder rules only."""
    return [CodeQuality()]


def conversation_rules() -> list[Rule]:
    """The rule set for linearized conversations: their turn structure (`ConversationQuality`). Prose rules
    would reject dialogue for its short turns, few sentences and role-marker lines."""
    return [ConversationQuality()]
