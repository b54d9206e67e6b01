"""Structured data linearized into readable text: tables, key-value records and Wikipedia-like infoboxes.

A language model learns from text, so each structure gets one plain rule (below, per function). The common
choice: every value stays next to the name of what it is (`Population: 1,463,723`), never separated from
its column header by the width of a table, so any line read alone (a training window cut anywhere) still
says what its numbers mean. Empty values (None, "", []) are left out; nothing is invented (no template
sentences), so the text holds only what the data holds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fm_pipeline.curation.conversion import ConversionError

_WIKI_LINK_RE = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TEMPLATE_RE = re.compile(r"\{\{[^{}]*\}\}")


def format_value(value: Any) -> str:
    """A value as text: strings stripped, booleans `yes`/`no`, numbers as written, lists joined with `, `,
    mappings as `key: value` pairs joined with `; `."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in ((k, format_value(v)) for k, v in value.items()) if v)
    if isinstance(value, Sequence):
        return ", ".join(v for v in map(format_value, value) if v)
    return str(value)


def _sentence(text: str) -> str:
    """`text` ended with a full stop unless it already ends a sentence."""
    return text if text.endswith((".", "!", "?", "。", "！", "？", "।", "؟")) else text + "."


def linearize_record(record: Mapping[str, Any], title: str | None = None) -> str:
    """Key-value record: the title on its own line (when given), then one paragraph of `key: value.`
    sentences in the record's order, e.g. `Kyoto\nCountry: Japan. Population: 1,463,723.` One paragraph,
    not a line per field: a list of two-word lines reads (to the prose filters too) as a menu, not as text."""
    lines = [title.strip()] if title and title.strip() else []
    fields = [_sentence(f"{key}: {text}") for key, text in ((k, format_value(v)) for k, v in record.items()) if text]
    if fields:
        lines.append(" ".join(fields))
    return "\n".join(lines)


def linearize_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """Table: the title line (when given), then one line per row, each cell as `column: value`, cells joined
    with `; ` and the line ended with `.`, e.g. `Line: Ginza; Opened: 1927; Stations: 19.` Repeating the
    header on every row costs bytes but keeps each row self-describing."""
    lines = [title.strip()] if title and title.strip() else []
    for row in rows:
        cells = [f"{h}: {text}" for h, text in zip(header, map(format_value, row), strict=True) if text]
        if cells:
            lines.append("; ".join(cells) + ".")
    return "\n".join(lines)


def table_from_rows(rows: Sequence[Any]) -> tuple[list[str], list[list[Any]]]:
    """A JSON list of row objects as (header, rows): columns in order of first appearance; a missing cell is
    empty. Any item that is not an object is a ConversionError."""
    header: list[str] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConversionError("table_bad_row", f"table row {index} is a {type(row).__name__}, not an object")
        header += [str(k) for k in row if str(k) not in header]
    return header, [[row.get(h) for h in header] for row in rows]


def table_from_delimited(text: str, delimiter: str) -> tuple[list[str], list[list[str]]]:
    """CSV or TSV text as (header, rows): the first row is the header; a row with more or fewer cells than
    the header is a ConversionError naming its line, as the table would be misread."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ConversionError("table_no_header", "the table has no header row")
    header = [h.strip() for h in header]
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise ConversionError("table_ragged_row",
                                  f"line {reader.line_num} has {len(row)} cells, the header {len(header)}")
        rows.append(row)
    if not rows:
        raise ConversionError("table_no_rows", "the table has a header and no rows")
    return header, rows


def clean_wiki_markup(text: str) -> str:
    """Wiki markup of infobox values: `[[target|label]]` -> label, `[[target]]` -> target, `<br>` -> `; `,
    `{{templates}}` removed (they render as formatting or citations)."""
    text = _WIKI_LINK_RE.sub(r"\1", text)
    text = _BR_RE.sub("; ", text)
    return _TEMPLATE_RE.sub("", text).strip()


def humanize_key(key: str) -> str:
    """An infobox field name as words: `population_total` -> `Population total`."""
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def linearize_infobox(title: str, infobox: Mapping[str, Any]) -> str:
    """Wikipedia-like infobox: as a record (`linearize_record`), field names humanized and wiki markup cleaned
    from values, in the infobox's order."""
    fields = {}
    for key, value in infobox.items():
        text = format_value(value)
        text = clean_wiki_markup(text) if text else ""
        if text:
            fields[humanize_key(str(key))] = text
    return linearize_record(fields, title)


def infobox_text(row: Mapping[str, Any]) -> str:
    """`{"title": ..., "infobox": {...}}` as text, or ConversionError when the infobox is not an object."""
    infobox, title = row.get("infobox"), row.get("title")
    if not isinstance(infobox, Mapping):
        raise ConversionError("infobox_not_an_object", f"'infobox' is a {type(infobox).__name__}")
    if not isinstance(title, str) or not title.strip():
        raise ConversionError("infobox_no_title", "an infobox row needs a non-empty 'title'")
    return linearize_infobox(title, infobox)


def record_text(row: Mapping[str, Any]) -> str:
    """`{"title"?: ..., "record": {...}}` as text."""
    record = row.get("record")
    if not isinstance(record, Mapping):
        raise ConversionError("record_not_an_object", f"'record' is a {type(record).__name__}")
    return linearize_record(record, _title(row))


def json_table_text(row: Mapping[str, Any]) -> str:
    """`{"title"?: ..., "table": [{...}, ...]}` as text."""
    table = row.get("table")
    if not isinstance(table, list):
        raise ConversionError("table_not_a_list", f"'table' is a {type(table).__name__}, not a list of rows")
    header, rows = table_from_rows(table)
    return linearize_table(header, rows, _title(row))


def _title(row: Mapping[str, Any]) -> str | None:
    title = row.get("title")
    return title if isinstance(title, str) else None
