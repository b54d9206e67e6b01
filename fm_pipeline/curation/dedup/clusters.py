"""Duplicate clusters from the pairs only: exact groups and verified LSH pairs joined by union-find, then one
survivor per cluster (the `duplicate_of` of every other member). `connect` is the one global step; its
memory follows the number of pairs, never the corpus, as it reads nothing of a document outside a pair.

Verification (in `buckets`): every candidate pair is checked with the Jaccard similarity estimated from the
full 112-value signatures and linked only when it reaches `verify_threshold` (0.6: the estimate's standard
error is ~0.04, so a true J of 0.73 passes with probability ~0.999, while the loose collisions that 4-row
bands let through are rejected: J = 0.5 passes ~2% of the time, J = 0.4 almost never). The rule is
therefore "estimated Jaccard >= 0.6", with LSH providing the recall.

`find_duplicates` runs every step over a list of signature files (`run_search`), in a temporary folder.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.buckets import (
    bucket_pairs,
    exact_groups,
    exact_members,
    read_pairs,
    sorted_unique,
    write_band_run,
    write_exact_run,
)
from fm_pipeline.curation.dedup.plan import (
    DEFAULT_SOURCE_PRIORITY,
    DEFAULT_VERIFY_THRESHOLD,
    DedupPlan,
    read_plan,
    write_plan,
)
from fm_pipeline.curation.dedup.signatures import read_rows
from fm_pipeline.lake.parquet_io import write_table_atomic

_META_STATS = b"fm_pipeline.dedup_stats"
REMOVED_COLUMNS = pa.schema([("doc", pa.int64()), ("id", pa.string()), ("duplicate_of", pa.string()),
                             ("kind", pa.string())])

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
"""Runs `[job(arg) for arg in args]`: inline, over a process pool, or in a measuring runner."""
SEARCH_STEPS = ("exact_runs", "exact_groups", "band_runs", "buckets", "connect")


def inline(job: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
    return [job(arg) for arg in args]


@dataclass
class DedupResult:
    """Which documents go, and why: removed id -> (survivor id, "exact" | "near")."""

    removed: dict[str, tuple[str, str]]
    documents_in: int
    exact_duplicates: int
    near_duplicates: int
    candidate_pairs: int
    verified_pairs: int
    cluster_sizes: dict[int, int] = field(default_factory=dict)
    examples: list[list[dict[str, str]]] = field(default_factory=list)


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Root of every node 0..n-1 given edges (a, b): the smallest node of its component. Union-find in rounds
    over all edges at once: hook each edge's larger root under the smaller, then compress every path."""
    parent = np.arange(n, dtype=np.int64)
    while len(a):
        ra, rb = parent[a], parent[b]
        live = ra != rb
        a, b, ra, rb = a[live], b[live], ra[live], rb[live]
        if not len(a):
            break
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def connect(work: Path) -> None:
    """Step 5, once: clusters and survivors. Survivor: the most trusted source (`source_priority`; unlisted
    last), then the longer text, then the smallest id, so the choice never depends on file order. A removed
    document is "exact" when its normalized text equals the survivor's, else "near". Writes the removed
    documents sorted by global row (`removed_in` reads a file's share), the statistics in the file's
    metadata (`read_stats`)."""
    plan = read_plan(work)
    members, reps = exact_members(plan)
    pairs, compared = read_pairs(plan)
    ea = np.concatenate([reps, pairs[:, 0]])
    eb = np.concatenate([members, pairs[:, 1]])
    nodes = sorted_unique(np.concatenate([ea, eb]))  # every document in a cluster, ascending
    root = _components(np.searchsorted(nodes, ea), np.searchsorted(nodes, eb), len(nodes))
    rep = np.arange(len(nodes))
    rep[np.searchsorted(nodes, members)] = np.searchsorted(nodes, reps)

    meta = read_rows(plan.signature_files, plan.offsets, nodes, ["id", "source", "text_len"])
    ids = meta.column("id").to_pylist()
    sources = meta.column("source").to_pylist()
    lengths = meta.column("text_len").to_pylist()
    if len(set(ids)) != len(ids):
        raise ValueError("document ids are not unique across the signature files (the lake contract)")
    rank = {s: i for i, s in enumerate(plan.source_priority)}
    order = sorted(range(len(nodes)), key=lambda i: (root[i], rank.get(sources[i], len(rank)), -lengths[i], ids[i]))
    survivor_of = np.empty(len(nodes), dtype=np.int64)
    kinds = [""] * len(nodes)
    clusters: list[list[int]] = []
    for i in order:
        if clusters and root[clusters[-1][0]] == root[i]:
            s = clusters[-1][0]
            survivor_of[i] = s
            kinds[i] = "exact" if rep[i] == rep[s] else "near"
            clusters[-1].append(i)
        else:
            survivor_of[i] = i
            clusters.append([i])
    gone = np.flatnonzero(survivor_of != np.arange(len(nodes)))
    removed = pa.table({
        "doc": nodes[gone],
        "id": pa.array([ids[i] for i in gone], pa.string()),
        "duplicate_of": pa.array([ids[survivor_of[i]] for i in gone], pa.string()),
        "kind": pa.array([kinds[i] for i in gone], pa.string()),
    }, schema=REMOVED_COLUMNS)
    sizes: dict[int, int] = {}
    for c in clusters:
        sizes[len(c)] = sizes.get(len(c), 0) + 1
    exact = sum(kinds[i] == "exact" for i in gone)
    stats = {
        "documents_in": plan.documents,
        "exact_duplicates": exact,
        "near_duplicates": len(gone) - exact,
        "candidate_pairs": compared,
        "verified_pairs": len(pairs),
        "cluster_sizes": sorted(sizes.items()),
        "examples": _examples(plan, nodes, clusters, ids, sources, kinds),
    }
    stats_json = json.dumps(stats, ensure_ascii=False, sort_keys=True).encode()
    write_table_atomic(removed.replace_schema_metadata({_META_STATS: stats_json}), plan.clusters)


def _examples(plan: DedupPlan, nodes: np.ndarray, clusters: list[list[int]], ids: list[str], sources: list[str],
              kinds: list[str]) -> list[list[dict[str, str]]]:
    """The five largest clusters (ties: smallest survivor id), with the first characters of each member."""
    shown = sorted(clusters, key=lambda c: (-len(c), ids[c[0]]))[:5]
    wanted = sorted_unique(nodes[[i for c in shown for i in c]]) if shown else np.zeros(0, np.int64)
    heads = dict(zip(wanted.tolist(), read_rows(plan.signature_files, plan.offsets, wanted, ["text_head"])
                     .column("text_head").to_pylist(), strict=True)) if shown else {}
    return [[{"id": ids[i], "source": sources[i], "role": "survivor" if i == c[0] else kinds[i],
              "text": heads[int(nodes[i])]} for i in c] for c in shown]


def read_stats(plan: DedupPlan) -> dict[str, Any]:
    """What `connect` found, from its file's metadata: `DedupResult`'s fields but `removed`."""
    stats = json.loads(pq.read_schema(plan.clusters).metadata[_META_STATS])
    stats["cluster_sizes"] = {int(k): v for k, v in stats["cluster_sizes"]}
    return stats


def connect_job(work: Path, _: int) -> None:
    """`connect` as a job of a one-job step (`Mapper`)."""
    connect(work)


def removed_in(plan: DedupPlan, i: int) -> dict[int, tuple[str, str]]:
    """Row in signature file `i` -> (id, survivor id) of its removed documents (only their row groups are
    read)."""
    lo, hi = int(plan.offsets[i]), int(plan.offsets[i + 1])
    table = pq.read_table(plan.clusters, filters=[("doc", ">=", lo), ("doc", "<", hi)])
    rows = (table.column("doc").to_numpy() - lo).tolist()
    pairs = zip(table.column("id").to_pylist(), table.column("duplicate_of").to_pylist(), strict=True)
    return dict(zip(rows, pairs, strict=True))


def run_search(plan: DedupPlan, mapper: Mapper = inline, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """Steps 1-5 in order, each step's jobs through `mapper`; returns `connect`'s statistics. Each step's
    wall seconds go into `seconds` when given."""
    files = len(plan.signature_files)
    jobs: list[tuple[Callable[[Path, int], Any], int]] = [
        (write_exact_run, files), (exact_groups, plan.exact_parts), (write_band_run, files),
        (bucket_pairs, plan.buckets), (connect_job, 1),
    ]
    for name, (job, count) in zip(SEARCH_STEPS, jobs, strict=True):
        started = time.perf_counter()
        mapper(partial(job, plan.work), range(count))
        if seconds is not None:
            seconds[name] = time.perf_counter() - started
    return read_stats(plan)


def find_duplicates(
    signature_files: Sequence[Path],
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    max_rounds: int = 8,
) -> DedupResult:
    """Clusters of exact and near duplicates over the signature files, and one survivor per cluster (see
    `connect`), every step run inline in a temporary folder. Exact groups come first (equal normalized
    text); only one representative per group enters LSH. The removed map is returned in memory: for
    corpora whose duplicates fit (tests, the domain overlap); `stage.dedup_corpus` never builds it."""
    files = [Path(p) for p in signature_files]
    if not files:
        return DedupResult(removed={}, documents_in=0, exact_duplicates=0, near_duplicates=0, candidate_pairs=0,
                           verified_pairs=0)
    with tempfile.TemporaryDirectory(prefix="dedup-") as tmp:
        plan = write_plan(Path(tmp), files, verify_threshold=verify_threshold, max_rounds=max_rounds,
                          source_priority=source_priority)
        stats = run_search(plan)
        table = pq.read_table(plan.clusters, columns=["id", "duplicate_of", "kind"])
    why = zip(table.column("duplicate_of").to_pylist(), table.column("kind").to_pylist(), strict=True)
    removed = dict(zip(table.column("id").to_pylist(), why, strict=True))
    return DedupResult(removed=removed, **stats)
