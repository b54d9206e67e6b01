"""Inputs whose document text is derived, not given: rows without `text` that carry a conversation, an
infobox, a key-value record or a table, and whole files in a structured or paper format (CSV/TSV, LaTeX,
JATS/PubMed XML, PDF). The readers call these and quarantine a `ConversionError` under its kind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fm_pipeline.curation import conversations, papers, structured
from fm_pipeline.curation.conversion import ConversionError

CONVERSATION_SOURCE = "conversations"
_ROW_KINDS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("infobox", structured.infobox_text),
    ("record", structured.record_text),
    ("table", structured.json_table_text),
)


def expand_row(row: dict[str, Any], source: str) -> dict[str, Any]:
    """The row with a derived `text` (and its structure in `meta`) when it has no `text` of its own and
    carries a structure; unchanged otherwise. In the `conversations` source every row must be a conversation."""
    if source == CONVERSATION_SOURCE or conversations.is_conversation_row(row):
        turns = conversations.parse_turns(row)
        rest = {k: v for k, v in row.items() if k not in ("messages", "conversations", "text")}
        return {**rest, "text": conversations.linearize(turns), **conversations.conversation_meta(turns)}
    if "text" in row:
        return row
    for key, convert in _ROW_KINDS:
        if key in row:
            rest = {k: v for k, v in row.items() if k != key}
            return {**rest, "text": convert(row), "format": key}
    return row


def _delimited(delimiter: str) -> Callable[[bytes, Path], papers.Converted]:
    def convert(raw: bytes, path: Path) -> papers.Converted:
        header, rows = structured.table_from_delimited(papers.decode_utf8(raw), delimiter)
        title = structured.humanize_key(path.name.split(".")[0].replace("-", " "))
        text = structured.linearize_table(header, rows, title)
        return [(None, text, {"format": "table", "columns": header, "rows": len(rows)})]
    return convert


FILE_CONVERTERS: dict[str, Callable[[bytes, Path], papers.Converted]] = {
    "csv": _delimited(","),
    "tsv": _delimited("\t"),
    "latex": lambda raw, _path: papers.convert_tex(raw),
    "xml": lambda raw, _path: papers.convert_xml(raw),
    "pdf": lambda raw, _path: papers.convert_pdf(raw),
}
"""Format name -> converter of a whole file's bytes into its documents (position, text, meta)."""

__all__ = ["FILE_CONVERTERS", "ConversionError", "expand_row"]
