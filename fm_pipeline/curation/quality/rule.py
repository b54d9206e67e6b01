"""The rule contract every document rule keeps, quality families and content filters alike, and the cascade
that applies a list of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from fm_pipeline.curation.quality.view import TextView


class Rule(ABC):
    """A rule family (a quality family or a content filter). `check` reads a shared `TextView`; `filter` is the
    one-document convenience."""

    name: ClassVar[str] = ""

    def filter(self, text: str, lang: str, url: str | None = None) -> str | None:
        """None to keep `text`, else `"<family>:<rule>"` for the first rule of this family that fails."""
        return self.check(TextView(text, lang, url=url))

    @abstractmethod
    def check(self, view: TextView) -> str | None:
        """None to keep the viewed document, else the reason of the first failing rule."""

    def _reason(self, rule: str) -> str:
        return f"{self.name}:{rule}"


def run_rules(rules: Sequence[Rule], text: str, lang: str, view: TextView | None = None) -> str | None:
    """The first failing reason of `rules` on `text`, or None to keep it; one TextView for all (pass the
    caller's `view` of the same text and language to share its splits with other readers)."""
    view = view or TextView(text, lang)
    for rule in rules:
        reason = rule.check(view)
        if reason is not None:
            return reason
    return None
