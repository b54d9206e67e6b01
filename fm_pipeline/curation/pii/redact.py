"""The public calls: PII spans of a document, its redaction with typed placeholders, and what was found."""

from __future__ import annotations

from collections import Counter

from fm_pipeline.curation.pii.detectors import DIGIT_HINT, IPV6_HINT, fold, may_contain_pii, scan_line


def _candidate_lines(text: str) -> dict[int, tuple[int, bool]]:
    """Lines worth scanning, as start -> (end, holds an '@'). No pattern crosses a newline, so only the
    lines that pass the gate are scanned, which keeps long documents with one phone number cheap."""

    def bounds(i: int) -> tuple[int, int]:
        end = text.find("\n", i)
        return text.rfind("\n", 0, i) + 1, len(text) if end < 0 else end

    lines: dict[int, tuple[int, bool]] = {}
    for hint in (DIGIT_HINT, IPV6_HINT):
        m = hint.search(text)
        while m:
            start, end = bounds(m.start())
            lines.setdefault(start, (end, False))
            m = hint.search(text, end + 1)
    for at_sign in "@＠":
        at = text.find(at_sign)
        while at >= 0:
            start, end = bounds(at)
            lines[start] = (end, True)
            at = text.find(at_sign, end + 1)
    return lines


def pii_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, type) of every PII item in `text`, in order; empty for clean text."""
    if not may_contain_pii(text):  # the common case: nothing to look at
        return []
    return [
        (start + a, start + b, kind)
        for start, (end, with_email) in sorted(_candidate_lines(text).items())
        for a, b, kind in scan_line(fold(text[start:end]), with_email)
    ]


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace PII with ``<TYPE>`` placeholders; return the text and how many of each type were replaced."""
    spans = pii_spans(text)
    if not spans:
        return text, {}
    pieces: list[str] = []
    pos = 0
    for start, end, kind in spans:
        pieces += (text[pos:start], f"<{kind}>")
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces), dict(Counter(kind for _, _, kind in spans))


def find_pii(text: str) -> list[tuple[str, str]]:
    """(type, matched string) for every PII item `redact_pii` would replace; empty for clean text."""
    return [(kind, text[start:end]) for start, end, kind in pii_spans(text)]
