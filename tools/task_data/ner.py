"""NCBI disease mentions (standoff offsets) -> sentences of word tokens with BIO tags."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

TOKEN = re.compile(r"\w+|[^\w\s]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])|\n")


def read_mentions(path: Path) -> dict[str, list[tuple[int, int, str]]]:
    """pmid -> [(start, end, mention text)], in file order."""
    out: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        pmid, start, end, _kind, text = line.split("\t")
        out[pmid].append((int(start), int(end), text))
    return dict(out)


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def tag_document(pmid: str, text: str, mentions: list[tuple[int, int, str]]) -> list[dict]:
    """One row per sentence: id `ncbi-<pmid>-<k>`, `tokens`, `tags` (B-Disease / I-Disease / O). Every mention
    must start and end on token boundaries inside one sentence, else this raises."""
    for start, end, surface in mentions:
        if text[start:end] != surface:
            raise ValueError(f"{pmid}: offsets {start}-{end} give {text[start:end]!r}, not {surface!r}")
    rows, used = [], set()
    for k, (s, e) in enumerate(_sentences(text)):
        tokens = [(m.start() + s, m.end() + s, m.group()) for m in TOKEN.finditer(text[s:e])]
        tags = ["O"] * len(tokens)
        for i, (start, end, _) in enumerate(mentions):
            if not (s <= start < e):
                continue
            if end > e:
                raise ValueError(f"{pmid}: mention {start}-{end} crosses a sentence end")
            inside = [j for j, (ts, te, _) in enumerate(tokens) if ts >= start and te <= end]
            if not inside or tokens[inside[0]][0] != start or tokens[inside[-1]][1] != end:
                raise ValueError(f"{pmid}: mention {start}-{end} does not fall on token boundaries")
            tags[inside[0]] = "B-Disease"
            for j in inside[1:]:
                tags[j] = "I-Disease"
            used.add(i)
        rows.append({"id": f"ncbi-{pmid}-{k:02d}", "tokens": [t for _, _, t in tokens], "tags": tags})
    if len(used) != len(mentions):
        raise ValueError(f"{pmid}: {len(mentions) - len(used)} mentions fell in no sentence")
    return rows
