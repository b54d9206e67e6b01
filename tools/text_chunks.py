"""Cutting long real texts (books) into documents, for tests and benchmarks that want many of them."""

from __future__ import annotations


def chunk_text(text: str, size: int, unit: str = "word", keep_tail: bool = False) -> list[str]:
    """Consecutive runs of whole words (joined by spaces) or whole lines (joined by newlines) of about
    `size` characters each; the last, shorter run is kept only with `keep_tail`."""
    if unit not in ("word", "line"):
        raise ValueError(f"unit must be 'word' or 'line', not {unit!r}")
    parts = text.split() if unit == "word" else text.splitlines()
    glue = " " if unit == "word" else "\n"
    out: list[str] = []
    current: list[str] = []
    length = 0
    for part in parts:
        current.append(part)
        length += len(part) + 1
        if length >= size:
            out.append(glue.join(current))
            current, length = [], 0
    if keep_tail and current:
        out.append(glue.join(current))
    return out
