"""The dedup stage as one call: signatures per shard (a process pool), the global duplicate search, then a
streaming pass that writes kept rows, and removed rows with `duplicate_of`, published in one atomic step.

`apply_dedup` needs only the removed-id map, so a fan-out can give each step some shards and its own
output folders; `dedup_corpus` runs the whole stage into one folder and returns its `DedupStats`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fm_pipeline.curation.dedup.clusters import (
    DEFAULT_SOURCE_PRIORITY,
    DEFAULT_VERIFY_THRESHOLD,
    DedupResult,
    find_duplicates,
)
from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.curation.dedup.signatures import signature_job, signature_name
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REMOVED_SCHEMA
from fm_pipeline.lake.parallel import map_shards
from fm_pipeline.lake.parquet_io import DEFAULT_SHARD_BYTES, ShardWriter, iter_rows
from fm_pipeline.lake.staging import carry, staged_dir


@dataclass
class DedupStats:
    """What one run of the stage did: documents in, kept and removed, how they were found, what the signature
    cache saved (`signatures_computed` / `signatures_cached`), the MinHash parameters and each step's seconds."""

    documents_in: int
    kept: int
    removed: int
    exact_duplicates: int
    near_duplicates: int
    candidate_pairs: int
    verified_pairs: int
    cluster_sizes: dict[int, int]
    examples: list[list[dict[str, str]]]
    signatures_computed: int
    signatures_cached: int
    minhash: dict[str, float]
    seconds: dict[str, float]


def apply_dedup(
    shards: Sequence[Path],
    result: DedupResult,
    out_dir: Path,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> dict[str, int]:
    """Write every input row exactly once into a fresh `out_dir`: to `kept/`, or to `removed/` with
    `duplicate_of` (`dedup_corpus` publishes the folder whole). Returns `documents_in`, `kept`, `removed`."""
    counts = {"documents_in": 0, "kept": 0, "removed": 0}
    kept_dir, removed_dir = Path(out_dir) / "kept", Path(out_dir) / "removed"
    kept_dir.mkdir(parents=True)
    removed_dir.mkdir()
    with ShardWriter(kept_dir, CORPUS_SCHEMA, shard_bytes) as kept, \
            ShardWriter(removed_dir, REMOVED_SCHEMA, shard_bytes) as gone:
        for row in iter_rows([Path(s) for s in shards], columns=CORPUS_SCHEMA.names):
            counts["documents_in"] += 1
            hit = result.removed.get(row["id"])
            if hit is None:
                kept.write(row)
                counts["kept"] += 1
            else:
                gone.write({**row, "duplicate_of": hit[0]})
                counts["removed"] += 1
    if counts["removed"] != len(result.removed):
        raise ValueError(
            f"{len(result.removed)} documents were marked as duplicates but {counts['removed']} "
            "were found: the shards are not the ones the signatures were computed from"
        )
    return counts


def dedup_corpus(
    input_shards: Sequence[Path],
    out_dir: Path,
    processes: int | None = None,
    config: MinHashConfig | None = None,
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    signature_cache: Path | None = None,
) -> DedupStats:
    """Signatures (a spawn process pool over shards), then duplicates, then filtering, into `out_dir`:
    `kept/`, `removed/` and `signatures/`, published together in one atomic step (`staged_dir`).

    Signature files of the previous output (`signature_cache`, default `out_dir/signatures`) are carried
    into the new one by hard link and recomputed only where their shard or the MinHash parameters changed;
    those of shards that are no longer inputs are left behind."""
    cfg = config or MinHashConfig()
    shards = [Path(s) for s in input_shards]
    cache = Path(out_dir) / "signatures" if signature_cache is None else Path(signature_cache)
    with staged_dir(Path(out_dir)) as staging:
        sig_dir = staging / "signatures"
        sig_dir.mkdir()
        outs = [sig_dir / signature_name(s) for s in shards]
        for out in outs:
            carry(cache / out.name, out)
        jobs = [(str(s), str(o), cfg) for s, o in zip(shards, outs, strict=True)]
        started = time.perf_counter()
        computed = map_shards(signature_job, jobs, processes)
        signed = time.perf_counter()
        result = find_duplicates(outs, source_priority, verify_threshold)
        found = time.perf_counter()
        counts = apply_dedup(shards, result, staging, shard_bytes)
    return DedupStats(
        documents_in=counts["documents_in"],
        kept=counts["kept"],
        removed=counts["removed"],
        exact_duplicates=result.exact_duplicates,
        near_duplicates=result.near_duplicates,
        candidate_pairs=result.candidate_pairs,
        verified_pairs=result.verified_pairs,
        cluster_sizes=result.cluster_sizes,
        examples=result.examples,
        signatures_computed=sum(computed),
        signatures_cached=len(computed) - sum(computed),
        minhash={
            "num_perm": cfg.num_perm,
            "bands": cfg.bands,
            "rows": cfg.rows,
            "ngram": cfg.ngram,
            "lsh_threshold": cfg.threshold,
            "verify_threshold": verify_threshold,
        },
        seconds={
            "signatures": signed - started,
            "find_duplicates": found - signed,
            "apply": time.perf_counter() - found,
        },
    )
