"""raw_corpus: read every input file of one source, write bounded Parquet shards and a quarantine.

Streams file by file and record by record, so memory is bounded by one shard's buffer and the largest
single document, whatever the corpus size. The output folder is staged and swapped in whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from fm_pipeline.curation.html_text import get_html_extractor
from fm_pipeline.curation.readers import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    QuarantineRecord,
    ReadContext,
    format_of,
    read_file,
)
from fm_pipeline.lake.atomic import atomic_write_bytes
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fingerprint import iter_input_files
from fm_pipeline.lake.layout import MANIFEST, PROVENANCE_FILE, QUARANTINE, QUARANTINE_FILE
from fm_pipeline.lake.parquet_io import (
    DEFAULT_SHARD_BYTES,
    ShardWriter,
    count_rows,
    list_shards,
    write_table_atomic,
)
from fm_pipeline.lake.staging import staged_dir

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64()),
        pa.field("offset", pa.int64()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("excerpt", pa.string()),
    ]
)
PROVENANCE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
    ]
)


@dataclass
class IngestConfig:
    shard_bytes: int = DEFAULT_SHARD_BYTES
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    html_extractor: str = "resiliparse"


@dataclass
class IngestStats:
    """What one source's ingestion read and wrote; `documents_in == kept + quarantined` always: every record
    read is a document in, written (`kept`) or quarantined with its kind."""

    source: str
    files: int = 0
    input_bytes: int = 0
    documents_in: int = 0
    kept: int = 0
    text_bytes: int = 0
    quarantined: int = 0
    quarantined_by_kind: dict[str, int] = field(default_factory=dict)
    files_by_format: dict[str, int] = field(default_factory=dict)
    kept_by_format: dict[str, int] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)


def ingest_source(source: str, input_dir: Path, output_dir: Path, config: IngestConfig | None = None) -> IngestStats:
    """Ingest `input_dir` (one source) into `output_dir`: `part-*.parquet`, `quarantine/`, `_manifest.json` and
    `provenance/documents.parquet` (document id -> input file)."""
    config = config or IngestConfig()
    html_to_text = get_html_extractor(config.html_extractor)
    stats = IngestStats(source=source)
    kinds: Counter[str] = Counter()
    quarantine: list[dict] = []
    seen_ids: dict[bytes, str] = {}
    with staged_dir(output_dir) as staging:
        writer = ShardWriter(staging, CORPUS_SCHEMA, config.shard_bytes)
        provenance = ShardWriter(staging / Path(PROVENANCE_FILE).parent, PROVENANCE_SCHEMA, shard_bytes=2**62,
                                 prefix="documents")
        for path in iter_input_files(input_dir):
            rel = path.name if path == input_dir else path.relative_to(input_dir).as_posix()
            fmt = format_of(path) or "unsupported"
            stats.files += 1
            stats.input_bytes += path.stat().st_size
            stats.files_by_format[fmt] = stats.files_by_format.get(fmt, 0) + 1
            ctx = ReadContext(source, rel, config.max_document_bytes, html_to_text)
            for record in read_file(path, ctx):
                stats.documents_in += 1
                if not isinstance(record, QuarantineRecord):
                    key = hashlib.blake2b(record.id.encode("utf-8", "surrogatepass"), digest_size=12).digest()
                    if key in seen_ids:
                        record = QuarantineRecord(rel, None, None, "duplicate_id",
                                                  f"id {record.id!r} already used by an earlier record",
                                                  record.text[:200])
                    else:
                        seen_ids[key] = rel
                if isinstance(record, QuarantineRecord):
                    kinds[record.kind] += 1
                    quarantine.append(record.to_row())
                    continue
                writer.write(record.to_row())
                provenance.write({"id": record.id, "file": rel})
                stats.kept += 1
                stats.text_bytes += len(record.text.encode("utf-8", "surrogatepass"))
                stats.kept_by_format[fmt] = stats.kept_by_format.get(fmt, 0) + 1
        stats.shards = [p.name for p in writer.close()]
        provenance_parts = provenance.close()
        if provenance_parts:
            os.replace(provenance_parts[0], staging / PROVENANCE_FILE)
        else:
            write_table_atomic(PROVENANCE_SCHEMA.empty_table(), staging / PROVENANCE_FILE)
        stats.quarantined = sum(kinds.values())
        stats.quarantined_by_kind = dict(sorted(kinds.items()))
        write_table_atomic(pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA),
                           staging / QUARANTINE / QUARANTINE_FILE)
        atomic_write_bytes(staging / MANIFEST, json.dumps(asdict(stats), indent=2, sort_keys=True).encode())
    return stats


def read_manifest(output_dir: Path) -> IngestStats:
    return IngestStats(**json.loads((output_dir / MANIFEST).read_text()))


def audit_accounting(output_dir: Path) -> dict[str, int]:
    """Count what is actually on disk, independently of the writer, for the accounting check."""
    written = count_rows(list_shards(output_dir))
    quarantined = count_rows(list_shards(output_dir / QUARANTINE))
    documents_in = read_manifest(output_dir).documents_in
    return {"documents_in": documents_in, "kept": written, "quarantined": quarantined}
