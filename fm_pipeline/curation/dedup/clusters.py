"""Duplicate clusters over all signature files: exact groups, LSH candidate pairs, verification,
union-find, and one survivor per cluster (the `duplicate_of` of every other member).

This is the one global step of the stage; it reads the signature files column by column (a band at a
time, then only the signatures of documents that share a bucket), so memory holds one band, not the
signatures.

Verification: every candidate pair is checked with the Jaccard similarity estimated from the full
112-value signatures and linked only when it reaches `verify_threshold` (0.6: the estimate's standard
error is ~0.04, so a true J of 0.73 passes with probability ~0.999, while the loose collisions that
4-row bands let through are rejected: J = 0.5 passes ~2% of the time, J = 0.4 almost never). The rule
is therefore "estimated Jaccard >= 0.6", with LSH providing the recall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.signatures import fixed_binary, load_signatures, read_config, text_heads

# Survivor preference when a cluster spans sources: curated sources before scraped ones.
DEFAULT_SOURCE_PRIORITY = ("reference_data", "books", "academic_papers", "code_repositories", "common_crawl")
DEFAULT_VERIFY_THRESHOLD = 0.6


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


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; sort-and-compare, several times faster than np.unique's hashing here."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _exact_groups(keys: np.ndarray) -> np.ndarray:
    """For each row, the first row with the same exact key (its representative)."""
    k = keys.view("<u8").reshape(-1, 2)
    order = np.lexsort((k[:, 1], k[:, 0]))  # stable: within a group, rows stay in index order
    sk = k[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    group_first = order[new_group]
    rep = np.empty(len(order), dtype=np.int64)
    rep[order] = group_first[np.cumsum(new_group) - 1]
    return rep


def _band_buckets(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that share a band hash with another row, and their bucket numbers (grouped, stable)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    new = np.ones(len(v), dtype=bool)
    new[1:] = v[1:] != v[:-1]
    bucket = np.cumsum(new) - 1
    shared = np.bincount(bucket)[bucket] >= 2
    return rows[order][shared], bucket[shared]


def _linked_pairs(
    members: np.ndarray,
    bucket: np.ndarray,
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    threshold: float,
    max_rounds: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs of one band and whether each verified: each member is compared with its bucket's
    first member; members that fail form the rest of the bucket, whose first member is tried next
    (greedy leader clustering, vectorized by rounds). `max_rounds` bounds the work on buckets of mutually
    dissimilar documents (shared templates); such members can still meet in other bands."""
    compared, verified = [], []
    for _ in range(max_rounds):
        if len(members) == 0:
            break
        first = np.ones(len(bucket), dtype=bool)
        first[1:] = bucket[1:] != bucket[:-1]
        leader = members[first][np.cumsum(first) - 1]
        rest = ~first
        m, lead, b = members[rest], leader[rest], bucket[rest]
        ok = similarity(m, lead) >= threshold
        compared.append(np.stack([lead, m], axis=1))
        verified.append(ok)
        members, bucket = m[~ok], b[~ok]
        keep = np.bincount(bucket)[bucket] >= 2 if len(bucket) else np.zeros(0, dtype=bool)
        members, bucket = members[keep], bucket[keep]
    if not compared:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(compared), np.concatenate(verified)


class _UnionFind:
    """Union-find over the documents that appear in verified pairs (path halving, union by index)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_duplicates(
    signature_files: Sequence[Path],
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    max_rounds: int = 8,
) -> DedupResult:
    """Clusters of exact and near duplicates over all signature files, and one survivor per cluster.

    Exact groups come first (equal normalized text); only one representative per group enters LSH.
    The survivor is the document of the most trusted source (`source_priority`; unlisted sources come
    last), then the longer text, then the smallest id, so the choice never depends on file order. A
    removed document is "exact" when its normalized text equals the survivor's, else "near".
    """
    signature_files = [Path(p) for p in signature_files]
    if not signature_files:
        return DedupResult(
            removed={}, documents_in=0, exact_duplicates=0, near_duplicates=0, candidate_pairs=0, verified_pairs=0
        )
    cfg = read_config(signature_files)
    meta = pa.concat_tables(
        [pq.read_table(p, columns=["id", "source", "text_len", "exact_key"]) for p in signature_files]
    )
    n = meta.num_rows
    ids = meta.column("id")
    if pc.count_distinct(ids).as_py() != n:
        raise ValueError("document ids are not unique across the signature files (DESIGN.md contract)")
    rep = _exact_groups(fixed_binary(meta.column("exact_key"), 16))
    reps = np.flatnonzero(rep == np.arange(n))

    buckets = []
    for band in range(cfg.bands):
        name = f"band_{band:02d}"
        values = np.concatenate([pq.read_table(p, columns=[name]).column(name).to_numpy() for p in signature_files])
        buckets.append(_band_buckets(values[reps], reps))
    needed = _unique(np.concatenate([m for m, _ in buckets]))
    sigs = load_signatures(signature_files, needed, cfg.num_perm)
    slot = np.zeros(n, dtype=np.int64)
    slot[needed] = np.arange(len(needed))

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (sigs[slot[a]] == sigs[slot[b]]).mean(axis=1)

    compared, verified = zip(
        *(_linked_pairs(members, bucket, similarity, verify_threshold, max_rounds) for members, bucket in buckets),
        strict=True,
    )
    pair_keys = np.concatenate(compared) @ np.array([n, 1], dtype=np.int64)  # (a, b) -> a * n + b, a < b
    candidates = len(_unique(pair_keys))
    linked = _unique(pair_keys[np.concatenate(verified)])
    pairs = np.stack([linked // n, linked % n], axis=1)

    uf = _UnionFind()
    for a, b in pairs.tolist():
        uf.union(a, b)
    root = np.arange(n)
    for x in list(uf.parent):
        root[x] = uf.find(x)
    label = root[rep]
    in_cluster = np.flatnonzero(np.bincount(label, minlength=n)[label] >= 2)

    rank = {s: i for i, s in enumerate(source_priority)}
    cl_ids = ids.take(in_cluster).to_pylist()
    cl_sources = meta.column("source").take(in_cluster).to_pylist()
    cl_lens = meta.column("text_len").take(in_cluster).to_pylist()
    order = sorted(
        range(len(in_cluster)),
        key=lambda i: (label[in_cluster[i]], rank.get(cl_sources[i], len(rank)), -cl_lens[i], cl_ids[i]),
    )
    removed: dict[str, tuple[str, str]] = {}
    clusters: list[list[int]] = []
    for i in order:
        if clusters and label[in_cluster[clusters[-1][0]]] == label[in_cluster[i]]:
            survivor = clusters[-1][0]
            same_text = rep[in_cluster[i]] == rep[in_cluster[survivor]]
            removed[cl_ids[i]] = (cl_ids[survivor], "exact" if same_text else "near")
            clusters[-1].append(i)
        else:
            clusters.append([i])
    sizes: dict[int, int] = {}
    for c in clusters:
        sizes[len(c)] = sizes.get(len(c), 0) + 1
    shown = sorted(clusters, key=lambda c: (-len(c), cl_ids[c[0]]))[:5]
    heads = text_heads(signature_files, _unique(in_cluster[[i for c in shown for i in c]])) if shown else {}
    examples = [
        [
            {
                "id": cl_ids[i],
                "source": cl_sources[i],
                "role": "survivor" if i == c[0] else removed[cl_ids[i]][1],
                "text": heads[int(in_cluster[i])],
            }
            for i in c
        ]
        for c in shown
    ]
    exact = sum(1 for _, kind in removed.values() if kind == "exact")
    return DedupResult(
        removed=removed,
        documents_in=n,
        exact_duplicates=exact,
        near_duplicates=len(removed) - exact,
        candidate_pairs=candidates,
        verified_pairs=len(pairs),
        cluster_sizes=dict(sorted(sizes.items())),
        examples=examples,
    )

