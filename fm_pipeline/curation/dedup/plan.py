"""The plan of one staged dedup run: which signature files (and input shards) in which order, how the work is
cut into jobs, and the parameters every job needs. Written once into the work folder, read by every job, so
each job is a plain function of (work folder, job index) that a process pool or a Dagster fan-out can run.

Documents are numbered across the signature files in plan order (global rows): file `i` holds rows
`offsets[i]` to `offsets[i] + rows[i]`. Exact keys are cut into `exact_parts` key ranges and band hashes into
`buckets` (band, hash) ranges, sized so that no job holds more than `part_rows` keys or `bucket_entries` band
entries, whatever the corpus size; no result depends on these counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.curation.dedup.signatures import read_config
from fm_pipeline.lake.atomic import atomic_write_text
from fm_pipeline.lake.layout import (
    BAND_RUNS,
    BUCKET_PAIRS,
    CLUSTERS_FILE,
    DEDUP_PLAN,
    EXACT_GROUPS,
    EXACT_RUNS,
    FILTER_RECORDS,
)

# Survivor preference when a cluster spans sources: curated sources before scraped ones.
DEFAULT_SOURCE_PRIORITY = ("reference_data", "books", "academic_papers", "code_repositories", "conversations",
                           "common_crawl")
DEFAULT_VERIFY_THRESHOLD = 0.6
DEFAULT_PART_ROWS = 4_000_000
"""Exact keys per exact-group job: 16-byte keys and their rows, ~100 MB with the sort's temporaries."""
DEFAULT_BUCKET_ENTRIES = 4_000_000
"""Band entries per bucket job: hash, row and band, ~150 MB with the sort, plus the signatures of the
documents that share a bucket."""


@dataclass(frozen=True)
class DedupPlan:
    """Everything a job needs besides its index; `work` is the folder the plan and the jobs' files live in."""

    work: Path
    signature_files: tuple[str, ...]
    rows: tuple[int, ...]
    input_shards: tuple[str, ...]
    num_perm: int
    bands: int
    ngram: int
    seed: int
    verify_threshold: float
    max_rounds: int
    source_priority: tuple[str, ...]
    exact_parts: int
    buckets: int
    shard_bytes: int

    @property
    def config(self) -> MinHashConfig:
        return MinHashConfig(num_perm=self.num_perm, bands=self.bands, ngram=self.ngram, seed=self.seed)

    @property
    def offsets(self) -> np.ndarray:
        """First global row of each signature file, then the total."""
        return np.concatenate([[0], np.cumsum(self.rows, dtype=np.int64)]).astype(np.int64)

    @property
    def documents(self) -> int:
        return int(sum(self.rows))

    def exact_run(self, i: int) -> Path:
        return self.work / EXACT_RUNS / f"{i:05d}.parquet"

    def exact_group(self, part: int) -> Path:
        return self.work / EXACT_GROUPS / f"{part:05d}.parquet"

    def band_run(self, i: int) -> Path:
        return self.work / BAND_RUNS / f"{i:05d}.parquet"

    def bucket_pairs(self, bucket: int) -> Path:
        return self.work / BUCKET_PAIRS / f"{bucket:05d}.parquet"

    @property
    def clusters(self) -> Path:
        return self.work / CLUSTERS_FILE

    def filter_record(self, i: int) -> Path:
        return self.work / FILTER_RECORDS / f"{i:05d}.json"


def write_plan(
    work: Path,
    signature_files: Sequence[Path],
    input_shards: Sequence[Path] = (),
    *,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    max_rounds: int = 8,
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    min_jobs: int = 1,
    part_rows: int = DEFAULT_PART_ROWS,
    bucket_entries: int = DEFAULT_BUCKET_ENTRIES,
    shard_bytes: int = 0,
    config: MinHashConfig | None = None,
) -> DedupPlan:
    """Plan a run over `signature_files` (and the `input_shards` they were computed from, one each, for the
    filter step) and write it to `work/plan.json`. At least `min_jobs` buckets, so a pool has work for every
    worker; more when the corpus needs them to stay under `bucket_entries`.

    With `config`, the plan is written before the signature files exist (a fan-out plans every step up
    front): rows are counted in the input shards, one signature per document."""
    files = [Path(p).resolve() for p in signature_files]
    if (input_shards or config) and len(input_shards) != len(files):
        raise ValueError("one signature file per input shard")
    cfg = config or (read_config(files) if files else MinHashConfig())
    rows = tuple(pq.ParquetFile(p).metadata.num_rows for p in (input_shards if config else files))
    total = sum(rows)
    plan = DedupPlan(
        work=Path(work).resolve(),
        signature_files=tuple(map(str, files)),
        rows=rows,
        input_shards=tuple(str(Path(s).resolve()) for s in input_shards),
        num_perm=cfg.num_perm, bands=cfg.bands, ngram=cfg.ngram, seed=cfg.seed,
        verify_threshold=verify_threshold,
        max_rounds=max_rounds,
        source_priority=tuple(source_priority),
        exact_parts=max(1, math.ceil(total / part_rows)),
        buckets=max(min_jobs, math.ceil(total * cfg.bands / bucket_entries), 1),
        shard_bytes=shard_bytes,
    )
    fields = {k: v for k, v in asdict(plan).items() if k != "work"}
    atomic_write_text(plan.work / DEDUP_PLAN, json.dumps(fields, indent=1, sort_keys=True))
    return plan


def read_plan(work: Path) -> DedupPlan:
    fields = json.loads((Path(work) / DEDUP_PLAN).read_text(encoding="utf-8"))
    for key in ("signature_files", "rows", "input_shards", "source_priority"):
        fields[key] = tuple(fields[key])
    fields["work"] = Path(work).resolve()
    return DedupPlan(**fields)
