"""The document record every corpus stage reads and writes, and its Parquet schema: the contract between
stages and with anyone reading the lake."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("lang_score", pa.float64(), nullable=False),
        pa.field("url", pa.string(), nullable=True),
        pa.field("meta", pa.string(), nullable=False),
    ]
)
REJECTED_SCHEMA = CORPUS_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))
REMOVED_SCHEMA = CORPUS_SCHEMA.append(pa.field("duplicate_of", pa.string(), nullable=False))


@dataclass
class Document:
    """One document. `meta` is free-form and stored as a JSON string with sorted keys."""

    id: str
    text: str
    source: str
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    lang: str = "und"
    lang_score: float = 0.0

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "lang": self.lang,
            "lang_score": float(self.lang_score),
            "url": self.url,
            "meta": dump_meta(self.meta),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Document:
        return cls(
            id=row["id"],
            text=row["text"],
            source=row["source"],
            url=row.get("url"),
            meta=json.loads(row["meta"]) if row.get("meta") else {},
            lang=row.get("lang") or "und",
            lang_score=float(row.get("lang_score") or 0.0),
        )


def dump_meta(meta: dict[str, Any]) -> str:
    """Canonical JSON for `meta`, so reruns are byte-identical."""
    return json.dumps(meta, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
