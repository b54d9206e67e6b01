"""Signature files: one small parquet file per corpus shard, written by the fan-out step and read by the
later steps.

A signature file holds what the later steps need and never the text: id, source, length, the exact key,
the first characters (for example clusters), the MinHash signature and its LSH band hashes, one column per
band. Its metadata records the shard's content hash, the MinHash parameters and the text folding rule, so
an up-to-date file is reused (a rerun only hashes the shards) and any change recomputes it. `read_rows`
takes global rows: rows numbered across the files in the order given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.minhash import MinHashConfig, band_hashes, exact_key, minhash_signatures
from fm_pipeline.lake.fingerprint import file_sha256
from fm_pipeline.lake.parquet_io import write_table_atomic
from fm_pipeline.lake.staging import published_path

_META_SHARD = b"fm_pipeline.shard_sha256"
_META_CONFIG = b"fm_pipeline.minhash"
# How text is folded before shingling; signature files written under another rule are recomputed.
_META_FOLD = b"fm_pipeline.shingle_fold"
_FOLD = b"casefold,turkish-i"
_TEXT_HEAD_CHARS = 80
_BATCH_CHARS = 2_000_000  # normalized characters per vectorized batch: bounds the per-position arrays


def signature_schema(cfg: MinHashConfig) -> pa.Schema:
    """Columns of a signature file: what the global step needs, never the text itself."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("text_len", pa.int64(), nullable=False),
            pa.field("exact_key", pa.binary(16), nullable=False),
            pa.field("text_head", pa.string(), nullable=False),
            pa.field("signature", pa.binary(cfg.num_perm * 4), nullable=False),
            *(pa.field(f"band_{i:02d}", pa.uint64(), nullable=False) for i in range(cfg.bands)),
        ]
    )


def _is_current(out: Path, shard_sha: str, cfg: MinHashConfig) -> bool:
    if not out.exists():
        return False
    meta = pq.read_schema(out).metadata or {}
    return (
        meta.get(_META_SHARD) == shard_sha.encode()
        and meta.get(_META_CONFIG) == cfg.key()
        and meta.get(_META_FOLD) == _FOLD
    )


def _text_batches(shard: Path) -> Iterator[pa.RecordBatch]:
    """Record batches of about _BATCH_CHARS characters (one long document may exceed it alone)."""
    pf = pq.ParquetFile(shard)
    pending: list[pa.RecordBatch] = []
    chars = 0
    for batch in pf.iter_batches(batch_size=256, columns=["id", "text", "source", "lang"]):
        pending.append(batch)
        chars += pc.sum(pc.utf8_length(batch.column("text"))).as_py() or 0
        if chars >= _BATCH_CHARS:
            yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
            pending, chars = [], 0
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _compute_signatures(shard: Path, out: Path, cfg: MinHashConfig) -> bool:
    """Write the signature file unless an up-to-date one exists; returns whether it computed."""
    shard_sha = file_sha256(shard)
    if _is_current(out, shard_sha, cfg):
        return False
    parts: list[pa.Table] = []
    for batch in _text_batches(shard):
        texts = batch.column("text").to_pylist()
        sig = minhash_signatures(texts, batch.column("lang").to_pylist(), cfg)
        bands = band_hashes(sig, cfg)
        columns: dict[str, pa.Array] = {
            "id": batch.column("id"),
            "source": batch.column("source"),
            "text_len": pc.utf8_length(batch.column("text")).cast(pa.int64()),
            "exact_key": pa.array([exact_key(t) for t in texts], type=pa.binary(16)),
            "text_head": pa.array([t[:_TEXT_HEAD_CHARS] for t in texts], type=pa.string()),
            "signature": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(cfg.num_perm * 4), len(sig), [None, pa.py_buffer(sig.tobytes())]
            ),
        }
        for i in range(cfg.bands):
            columns[f"band_{i:02d}"] = pa.array(bands[:, i], type=pa.uint64())
        parts.append(pa.table(columns, schema=signature_schema(cfg)))
    table = pa.concat_tables(parts) if parts else signature_schema(cfg).empty_table()
    meta = {_META_SHARD: shard_sha.encode(), _META_CONFIG: cfg.key(), _META_FOLD: _FOLD}
    write_table_atomic(table.replace_schema_metadata(meta), out)
    return True


def compute_signatures(shard: Path, out: Path, config: MinHashConfig | None = None) -> Path:
    """Signature file of one corpus shard (the fan-out step). Skipped when `out` already records the
    same shard content hash and MinHash parameters, so a rerun only hashes the shards that changed."""
    _compute_signatures(Path(shard), Path(out), config or MinHashConfig())
    return Path(out)


def signature_job(job: tuple[str, str, MinHashConfig]) -> bool:
    """Top-level (spawn-safe) pool task."""
    shard, out, cfg = job
    return _compute_signatures(Path(shard), Path(out), cfg)


def signature_name(shard: Path) -> str:
    """Named by where the shard is published, so a shard read from inside a staging folder (as in
    `domain_corpus`) keeps its name, and its cached signatures, from run to run."""
    return f"{hashlib.blake2b(str(published_path(shard.resolve())).encode(), digest_size=8).hexdigest()}.parquet"


def read_config(signature_files: Sequence[Path]) -> MinHashConfig:
    """The MinHash parameters the files were written with; files that disagree cannot be compared."""
    keys = {(pq.read_schema(p).metadata or {}).get(_META_CONFIG) for p in signature_files}
    if len(keys) != 1 or None in keys:
        raise ValueError(f"signature files disagree on MinHash parameters: {sorted(map(str, keys))}")
    fields = dict(item.split("=") for item in next(iter(keys)).decode().split(","))
    return MinHashConfig(**{k: int(v) for k, v in fields.items()})


def fixed_binary(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size binary column as an (n, width) uint8 array, without a Python object per row."""
    parts = [
        np.frombuffer(chunk.buffers()[1], dtype=np.uint8)[chunk.offset * width : (chunk.offset + len(chunk)) * width]
        for chunk in column.chunks
    ]
    return np.concatenate(parts).reshape(-1, width) if parts else np.zeros((0, width), dtype=np.uint8)


def read_rows(signature_files: Sequence[str | Path], offsets: np.ndarray, rows: np.ndarray,
              columns: list[str]) -> pa.Table:
    """`columns` of the given global rows (sorted, distinct), in that order: only the files that hold some
    are read, one at a time, so memory holds one file's columns and the rows asked for."""
    parts = []
    for i, p in enumerate(signature_files):
        lo, hi = np.searchsorted(rows, [offsets[i], offsets[i + 1]])
        if hi > lo:
            parts.append(pq.read_table(p, columns=columns).take(pa.array(rows[lo:hi] - offsets[i])))
    if not parts:
        return pa.table({c: pa.array([]) for c in columns})
    return pa.concat_tables(parts).combine_chunks()
