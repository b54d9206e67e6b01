"""The staged dedup at scale on generated documents with planted near-duplicate clusters (`python -m
benchmarks.dedup --docs 2000000`): wall seconds and peak RSS of every step, recall and precision of the
planted clusters, and signature throughput per core against datatrove's MinHash on a sample of the same
documents, measured in the same run. Prints one JSON object.

Documents (seed 0, deterministic): 50-300 words drawn from a 30,000-word vocabulary with Zipf-like
frequencies. Every tenth document of a shard is a cluster original with 1-3 copies placed in the next
shards; a copy has 1%, 2% or 3% of its words replaced by random vocabulary words, and one in five clusters
has an identical copy instead of its first edited one. Ids say which cluster a document was planted in.

Peak RSS: every step runs its jobs in a fresh spawned pool, and each job reports its worker's peak
resident set (VmHWM), so a step's figure is the largest worker of that step (imports included).
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.minhash import minhash_signatures
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.parquet_io import list_shards

VOCABULARY = 30_000
CLUSTER_EVERY = 10
RATES = (0.01, 0.02, 0.03)
STEP_NAMES = {"signature_job": "signatures", "write_exact_run": "exact_runs", "exact_groups": "exact_groups",
              "write_band_run": "band_runs", "bucket_pairs": "buckets", "connect_job": "connect",
              "filter_shard": "filter"}
TARGETS = {"peak_rss_mb": 2048, "recall": 0.98, "precision": 0.98, "signatures_over_datatrove_per_core": 5.0}


def _vocabulary(seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 1 << 20])
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = {"".join(letters[rng.integers(0, 26, rng.integers(2, 11))]) for _ in range(VOCABULARY * 2)}
    return np.array(sorted(words)[:VOCABULARY], dtype=object)


def _frequencies() -> np.ndarray:
    """Cumulative word frequencies, Zipf-like (1 / (rank + 20))."""
    p = 1.0 / (np.arange(VOCABULARY) + 20.0)
    return np.cumsum(p / p.sum())


def _words(rng: np.random.Generator, vocab: np.ndarray, cdf: np.ndarray) -> list[str]:
    draws = rng.random(int(rng.integers(50, 301)))
    return vocab[np.minimum(np.searchsorted(cdf, draws), VOCABULARY - 1)].tolist()


def _original(seed: int, shard: int, k: int, vocab: np.ndarray, p: np.ndarray) -> list[str]:
    """A cluster original: its own generator, so a copy in another shard regenerates it alone."""
    return _words(np.random.default_rng([seed, shard, k]), vocab, p)


def _copy(words: list[str], seed: int, shard: int, k: int, m: int, vocab: np.ndarray) -> str:
    rng = np.random.default_rng([seed, shard, k, m + 1])
    if m == 0 and k % (5 * CLUSTER_EVERY) == 0:
        return " ".join(words)
    words = list(words)
    rate = RATES[(k // CLUSTER_EVERY + m) % len(RATES)]
    for i in rng.choice(len(words), max(1, round(rate * len(words))), replace=False).tolist():
        words[i] = vocab[int(rng.integers(VOCABULARY))]
    return " ".join(words)


def copies_of(k: int) -> int:
    return 1 + (k // CLUSTER_EVERY) % 3 if k % CLUSTER_EVERY == 0 else 0


def write_shard(job: tuple[int, int, int, int, str]) -> int:
    """Shard `s`: its own documents, then the copies of earlier shards' originals planted in it."""
    seed, s, shards, own, folder = job
    vocab, p = _vocabulary(seed), _frequencies()
    rng = np.random.default_rng([seed, s])
    ids, texts = [], []
    for k in range(own):
        words = _original(seed, s, k, vocab, p) if copies_of(k) else _words(rng, vocab, p)
        ids.append(f"s{s:04d}-{k:06d}")
        texts.append(" ".join(words))
    for m in range(3):
        origin = (s - 1 - m) % shards
        for k in range(0, own, CLUSTER_EVERY):
            if copies_of(k) > m:
                ids.append(f"c{origin:04d}-{k:06d}-{m}")
                texts.append(_copy(_original(seed, origin, k, vocab, p), seed, origin, k, m, vocab))
    n = len(ids)
    table = pa.table({"id": ids, "text": texts, "source": ["common_crawl"] * n, "lang": ["en"] * n,
                      "lang_score": [1.0] * n, "url": [None] * n, "meta": ["{}"] * n},
                     schema=CORPUS_SCHEMA)
    pq.write_table(table, Path(folder) / f"part-{s:05d}.parquet", compression="zstd")
    return n


def planted_label(doc_id: str) -> str:
    """The planted cluster of a document: its original's id (itself when it is not in a cluster)."""
    return f"s{doc_id[1:12]}" if doc_id.startswith("c") else doc_id


def _pairs(counts: Counter) -> int:
    return sum(n * (n - 1) // 2 for n in counts.values())


def quality(out: Path, seed_shards: int, own: int) -> dict[str, Any]:
    """Pairwise recall and precision of the clusters found against the planted ones."""
    removed = pq.read_table(list_shards(out / "removed"), columns=["id", "duplicate_of"]) \
        if list_shards(out / "removed") else pa.table({"id": [], "duplicate_of": []})
    ids, survivors = removed.column("id").to_pylist(), removed.column("duplicate_of").to_pylist()
    found = dict(zip(ids, survivors, strict=True))
    for s in set(survivors):
        found[s] = s
    both = Counter((pred, planted_label(doc)) for doc, pred in found.items())
    predicted = Counter(found.values())
    planted = sum(math.comb(1 + copies_of(k), 2) for k in range(0, own, CLUSTER_EVERY)) * seed_shards
    true_positive = _pairs(both)
    return {"planted_pairs": planted, "found_pairs": _pairs(predicted), "true_pairs_found": true_positive,
            "recall": round(true_positive / max(planted, 1), 5),
            "precision": round(true_positive / max(_pairs(predicted), 1), 5),
            "removed": len(ids), "planted_copies": sum(copies_of(k) for k in range(own)) * seed_shards}


def peak_rss() -> int:
    """This process's peak resident set in bytes: VmHWM, which exec resets (a spawned worker's `ru_maxrss`
    starts at its parent's peak on Linux); `ru_maxrss` where there is no /proc."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measured(job: Callable[[Any], Any], arg: Any) -> tuple[Any, int]:
    result = job(arg)
    return result, peak_rss()


class FreshPoolPerStep:
    """A `Mapper` that starts a new spawned pool for every step and keeps each step's peak worker RSS."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.peak_rss: dict[str, int] = {}
        self.jobs: dict[str, int] = {}

    def __call__(self, job: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
        name = STEP_NAMES[(job.func if isinstance(job, partial) else job).__name__]
        args = list(args)
        with ProcessPoolExecutor(min(self.processes, max(len(args), 1)), mp_context=get_context("spawn")) as pool:
            results = list(pool.map(partial(_measured, job), args))
        self.peak_rss[name] = max((rss for _, rss in results), default=0)
        self.jobs[name] = len(args)
        return [r for r, _ in results]


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def signature_throughput(sample: Path, work: Path, rounds: int = 2) -> dict[str, Any]:
    """Ours (`compute_signatures`) and datatrove's `MinhashDedupSignature` on one shard, one process each,
    interleaved `rounds` times; the best CPU time of each counts (both warmed up by their first round)."""
    from benchmarks import datatrove_peer

    minhash_signatures(["warm up the punctuation table"], ["en"])
    docs = pq.ParquetFile(sample / "part-00000.parquet").metadata.num_rows
    ours, theirs = [], []
    for r in range(rounds):
        cpu = _cpu()
        compute_signatures(sample / "part-00000.parquet", work / f"ours-{r}.parquet")
        ours.append(_cpu() - cpu)
        if not datatrove_peer.missing():
            theirs.append(datatrove_peer.signatures(sample, work / f"datatrove-{r}")[1])
    result: dict[str, Any] = {"sample_docs": docs, "ours_docs_per_cpu_s": round(docs / min(ours))}
    if theirs:
        result.update({"datatrove_version": datatrove_peer.version(),
                       "datatrove_docs_per_cpu_s": round(docs / min(theirs)),
                       "ours_over_datatrove_per_core": round(min(theirs) / min(ours), 2)})
    else:
        result["datatrove"] = f"not run: {', '.join(datatrove_peer.missing())} not installed"
    return result


def run(docs: int, shard_docs: int, processes: int, sample_docs: int, seed: int = 0,
        root: Path | None = None) -> dict[str, Any]:
    per_original = 1 + sum(copies_of(k) for k in range(CLUSTER_EVERY * 3)) / (CLUSTER_EVERY * 3)
    shards = max(1, round(docs / shard_docs))
    own = max(CLUSTER_EVERY, round(docs / shards / per_original))
    tmp = Path(tempfile.mkdtemp(prefix="dedup-scale-", dir=root))
    try:
        raw = tmp / "raw"
        raw.mkdir()
        started = time.perf_counter()
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            sizes = list(pool.map(write_shard, [(seed, s, shards, own, str(raw)) for s in range(shards)]))
        generate = time.perf_counter() - started

        sample = tmp / "sample"
        sample.mkdir()
        pq.write_table(pq.read_table(raw / "part-00000.parquet").slice(0, sample_docs), sample / "part-00000.parquet")
        throughput = signature_throughput(sample, tmp)

        runner = FreshPoolPerStep(processes)
        started = time.perf_counter()
        stats = dedup_corpus(list_shards(raw), tmp / "out", processes=processes, mapper=runner)
        total = time.perf_counter() - started
        figures = quality(tmp / "out", shards, own)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    steps = {name: {"seconds": round(stats.seconds[name], 2), "jobs": runner.jobs[name],
                    "peak_rss_mb": round(runner.peak_rss[name] / 2**20, 1)} for name in STEP_NAMES.values()}
    ours_per_core = sum(sizes) / (stats.seconds["signatures"] * processes)
    peak = max(s["peak_rss_mb"] for s in steps.values())
    return {
        "docs": sum(sizes), "shards": shards, "processes": processes, "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "generate_seconds": round(generate, 1), "dedup_wall_seconds": round(total, 1),
        "steps": steps,
        "peak_rss_mb_any_step": peak,
        "driver_peak_rss_mb": round(peak_rss() / 2**20, 1),
        "duplicates": {k: getattr(stats, k) for k in ("documents_in", "kept", "removed", "exact_duplicates",
                                                      "near_duplicates", "candidate_pairs", "verified_pairs")},
        "planted_clusters": figures,
        "signatures": {**throughput, "ours_in_run_docs_per_s_per_core": round(ours_per_core),
                       "note": "in-run figure: signature step wall time x processes, pool start-up included"},
        "targets": {
            "peak_rss_under_2_gib": peak < TARGETS["peak_rss_mb"],
            "recall_at_least_0.98": figures["recall"] >= TARGETS["recall"],
            "precision_at_least_0.98": figures["precision"] >= TARGETS["precision"],
            "signatures_5x_datatrove_per_core": throughput.get("ours_over_datatrove_per_core", 0)
            >= TARGETS["signatures_over_datatrove_per_core"],
        },
    }
