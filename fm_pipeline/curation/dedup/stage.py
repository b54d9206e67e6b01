"""The dedup stage as one call: signatures per shard, the staged duplicate search (`buckets`, `clusters`),
then one filter job per input shard writing its kept rows, and removed rows with `duplicate_of`; all of it
in one staging folder, published in one atomic step.

Every step is a plain function of (work folder, job index), so a Dagster graph can fan each out;
`dedup_corpus` runs them in order over one process pool. The work folder (`_dedup/`) is deleted before
publishing: only `kept/`, `removed/` and `signatures/` (the cache) stay.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.clusters import SEARCH_STEPS, Mapper, inline, removed_in, run_search
from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.curation.dedup.plan import (
    DEFAULT_SOURCE_PRIORITY,
    DEFAULT_VERIFY_THRESHOLD,
    read_plan,
    write_plan,
)
from fm_pipeline.curation.dedup.signatures import signature_job, signature_name
from fm_pipeline.lake.atomic import atomic_write_text, remove_path
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REMOVED_SCHEMA
from fm_pipeline.lake.layout import DEDUP_WORK, KEPT, REMOVED, SHARD_PREFIX, SIGNATURES
from fm_pipeline.lake.parquet_io import DEFAULT_SHARD_BYTES, ShardWriter
from fm_pipeline.lake.staging import carry, staged_dir

T = TypeVar("T")
R = TypeVar("R")


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


def filter_shard(work: Path, i: int) -> dict[str, int]:
    """Step 6, per input shard: its rows, in order, to `kept/` or to `removed/` with `duplicate_of`, beside the
    work folder, as `part-<i>-<k>.parquet` (so the folders list in input order); then its record, written
    last, so a shard with a record is complete. A rerun replaces the shard's files. Returns the counts."""
    plan = read_plan(work)
    out = Path(work).parent
    prefix = f"{SHARD_PREFIX}-{i:05d}"
    for folder in (out / KEPT, out / REMOVED):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{prefix}-*.parquet"):
            old.unlink()
    gone = removed_in(plan, i)
    counts = {"documents_in": 0, "kept": 0, "removed": 0}
    with ShardWriter(out / KEPT, CORPUS_SCHEMA, plan.shard_bytes, prefix=prefix) as kept, \
            ShardWriter(out / REMOVED, REMOVED_SCHEMA, plan.shard_bytes, prefix=prefix) as removed:
        for batch in pq.ParquetFile(plan.input_shards[i]).iter_batches(batch_size=2048, columns=CORPUS_SCHEMA.names):
            for row in batch.to_pylist():
                hit = gone.get(counts["documents_in"])
                counts["documents_in"] += 1
                if hit is None:
                    kept.write(row)
                    counts["kept"] += 1
                    continue
                if hit[0] != row["id"]:
                    raise ValueError(f"{plan.input_shards[i]} is not the shard its signatures were computed from")
                removed.write({**row, "duplicate_of": hit[1]})
                counts["removed"] += 1
    if counts["documents_in"] != plan.rows[i]:
        raise ValueError(f"{plan.input_shards[i]} is not the shard its signatures were computed from")
    atomic_write_text(plan.filter_record(i), json.dumps(counts, sort_keys=True))
    return counts


@contextmanager
def job_runner(processes: int | None, jobs: int) -> Iterator[Mapper]:
    """A `Mapper` over one spawned process pool kept for every step (spawn: a Dagster step process has
    threads), or inline when one process is enough. A step of one job runs inline."""
    workers = min(processes or os.cpu_count() or 1, jobs)
    if workers <= 1:
        yield inline
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        def run(job: Callable[[T], R], args: Sequence[T]) -> list[R]:
            return list(pool.map(job, args)) if len(args) > 1 else [job(a) for a in args]

        yield run


def dedup_corpus(
    input_shards: Sequence[Path],
    out_dir: Path,
    processes: int | None = None,
    config: MinHashConfig | None = None,
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    signature_cache: Path | None = None,
    mapper: Mapper | None = None,
) -> DedupStats:
    """Signatures, the staged duplicate search and the filter, each step's jobs over one process pool of up
    to `processes` workers (or through `mapper`), into `out_dir`: `kept/`, `removed/` and `signatures/`,
    published together in one atomic step (`staged_dir`).

    Signature files of the previous output (`signature_cache`, default `out_dir/signatures`) are carried
    into the new one by hard link and recomputed only where their shard or the MinHash parameters changed;
    those of shards that are no longer inputs are left behind."""
    cfg = config or MinHashConfig()
    shards = [Path(s) for s in input_shards]
    cache = Path(out_dir) / SIGNATURES if signature_cache is None else Path(signature_cache)
    seconds: dict[str, float] = {}
    runner = nullcontext(mapper) if mapper is not None else job_runner(processes, max(len(shards), 1))
    with staged_dir(Path(out_dir)) as staging, runner as run:
        (staging / SIGNATURES).mkdir()
        outs = [staging / SIGNATURES / signature_name(s) for s in shards]
        for out in outs:
            carry(cache / out.name, out)
        started = time.perf_counter()
        computed = run(signature_job, [(str(s), str(o), cfg) for s, o in zip(shards, outs, strict=True)])
        seconds["signatures"] = time.perf_counter() - started
        plan = write_plan(staging / DEDUP_WORK, outs, shards, verify_threshold=verify_threshold,
                          source_priority=source_priority, min_jobs=processes or os.cpu_count() or 1,
                          shard_bytes=shard_bytes)
        stats = run_search(plan, run, seconds)
        started = time.perf_counter()
        counts = run(partial(filter_shard, plan.work), range(len(shards)))
        seconds["filter"] = time.perf_counter() - started
        for folder in (KEPT, REMOVED):
            (staging / folder).mkdir(exist_ok=True)
        remove_path(plan.work)
    seconds["find_duplicates"] = sum(seconds[k] for k in SEARCH_STEPS)
    seconds["apply"] = seconds["filter"]
    return summarize(stats, counts, sum(computed), len(computed) - sum(computed), cfg, verify_threshold, seconds)


def summarize(search: Mapping[str, Any], counts: Sequence[Mapping[str, int]], computed: int, cached: int,
              cfg: MinHashConfig, verify_threshold: float, seconds: dict[str, float]) -> DedupStats:
    """The run's stats from `connect`'s (`search`) and the filter jobs' counts, in one step or fanned out;
    fails when the shards' removed rows are not the duplicates `connect` marked."""
    removed = sum(c["removed"] for c in counts)
    if removed != search["exact_duplicates"] + search["near_duplicates"]:
        raise ValueError(f"{search['exact_duplicates'] + search['near_duplicates']} documents were marked as "
                         f"duplicates but {removed} were found in the shards")
    return DedupStats(
        documents_in=sum(c["documents_in"] for c in counts),
        kept=sum(c["kept"] for c in counts),
        removed=removed,
        exact_duplicates=search["exact_duplicates"],
        near_duplicates=search["near_duplicates"],
        candidate_pairs=search["candidate_pairs"],
        verified_pairs=search["verified_pairs"],
        cluster_sizes=search["cluster_sizes"],
        examples=search["examples"],
        signatures_computed=computed,
        signatures_cached=cached,
        minhash={
            "num_perm": cfg.num_perm,
            "bands": cfg.bands,
            "rows": cfg.rows,
            "ngram": cfg.ngram,
            "lsh_threshold": cfg.threshold,
            "verify_threshold": verify_threshold,
        },
        seconds=seconds,
    )
