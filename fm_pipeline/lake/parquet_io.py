"""Atomic, size-bounded Parquet shard writing and streaming shard reading.

Each file is written under a hidden temporary name and renamed when complete (`atomic`); a stage's output folder as a
whole is published by `staging.staged_dir`, so a killed run never leaves a half-written output where a later
stage would read it. Files are written deterministically (fixed row-group layout, no timestamps), so reruns
on the same input are byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fm_pipeline.lake.atomic import atomic_path
from fm_pipeline.lake.layout import SHARD_PREFIX

DEFAULT_SHARD_BYTES = 64 * 1024 * 1024
DEFAULT_ROW_GROUP_BYTES = 8 * 1024 * 1024


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write one Parquet file atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=64 * 1024, write_statistics=True)


class ShardWriter:
    """Writes `part-00000.parquet`, `part-00001.parquet`, ... of about `shard_bytes` of text each.

    Rows are buffered only up to one row group (`row_group_bytes`), then appended to the open shard, so
    memory is bounded by a row group whatever the shard size. Each shard is written under a temporary name
    and renamed when complete.
    """

    def __init__(self, folder: Path, schema: pa.Schema, shard_bytes: int = DEFAULT_SHARD_BYTES,
                 row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES, prefix: str = SHARD_PREFIX) -> None:
        self.folder = folder
        self.prefix = prefix
        self.schema = schema
        self.shard_bytes = shard_bytes
        self.row_group_bytes = min(row_group_bytes, shard_bytes)
        self.rows: list[dict[str, Any]] = []
        self.buffered_bytes = 0
        self.shard_bytes_written = 0
        self.shards: list[Path] = []
        self.rows_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard = ExitStack()
        """Holds the open shard's `atomic_path`: closing it renames the shard into place."""

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.buffered_bytes += len(row.get("text") or "") + 256
        if self.buffered_bytes >= self.row_group_bytes:
            self._flush_row_group()
        if self.shard_bytes_written >= self.shard_bytes:
            self._close_shard()

    def _flush_row_group(self) -> None:
        if not self.rows:
            return
        if self._writer is None:
            tmp = self._shard.enter_context(atomic_path(self.folder / self._name()))
            self._writer = pq.ParquetWriter(tmp, self.schema, compression="zstd", write_statistics=True)
        self._writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema), row_group_size=len(self.rows))
        self.rows_written += len(self.rows)
        self.shard_bytes_written += self.buffered_bytes
        self.rows = []
        self.buffered_bytes = 0

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._shard.close()
        self.shards.append(self.folder / self._name())
        self._writer = None
        self.shard_bytes_written = 0

    def _name(self) -> str:
        return f"{self.prefix}-{len(self.shards):05d}.parquet"

    def close(self) -> list[Path]:
        self._flush_row_group()
        self._close_shard()
        return self.shards

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.close()
            self._shard.__exit__(exc_type, exc, tb)  # removes the unfinished shard; the exception goes on


def list_shards(folder: Path) -> list[Path]:
    """The Parquet shards of a folder, in a stable order; hidden names (temporary files, staging folders and
    what a killed run left) are never listed."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def iter_rows(paths: Iterable[Path], columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream rows from Parquet shards batch by batch, so memory is bounded by a batch, not the corpus."""
    for path in paths:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=2048, columns=columns):
            yield from batch.to_pylist()


def count_rows(paths: Iterable[Path]) -> int:
    """Rows in Parquet files, read from their footers only."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def read_docs(folder: Path) -> Iterator[tuple[str, str]]:
    """(lang, text) of every row of a folder of Parquet shards, such as `balanced_shards/val`."""
    for row in iter_rows(list_shards(Path(folder)), columns=["lang", "text"]):
        yield row["lang"], row["text"]
