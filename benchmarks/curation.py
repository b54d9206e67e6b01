"""Curation throughput on real text: each step of the filter stage on one core, the whole filter stage on
1 and 2 processes, then MinHash signatures and the global duplicate search. Prints one JSON object.

    python -m benchmarks.curation [--corpora ../shared/corpora] [--mb 12] [--shard-mb 1.5] [--peer datatrove]

Documents: Common Crawl pages, the UDHR in 41 languages, the biomedical / legal / scientific domain sets
and three books cut into ~6 KB documents, shuffled (seed 0) and replicated (ids suffixed `#<copy>`) up to
`--mb` MB of UTF-8 text (MB = 10^6 bytes). They are ingested with `ingest_source` into raw Parquet shards
of about `--shard-mb` MB each; the stage and dedup runs read those shards. Copies are exact duplicates, so
dedup removes them: its timings are real, its duplicate counts are an artefact of the replication.

`--peer datatrove` runs datatrove's filter cascade and MinHash dedup (`benchmarks.datatrove_peer`) on the
same raw shards with the same numbers of processes, and reports each rate beside ours with the ratio
ours / datatrove. Without datatrove installed (`pip install -e '.[peers]'`) the JSON says so and the rest runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import datatrove_peer
from fm_pipeline.curation.content import content_filters
from fm_pipeline.curation.dedup.minhash import minhash_signatures
from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.curation.filter_stage import DocumentFilter, FilterConfig, filter_source
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.curation.langid.backends import get_detector
from fm_pipeline.curation.langid.segments import identify
from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.curation.pii.redact import redact_pii
from fm_pipeline.curation.quality.profiles import prose_rules
from fm_pipeline.curation.quality.rule import run_rules
from fm_pipeline.curation.signals import quality_signals
from fm_pipeline.lake.parallel import map_shards
from tools.corpora import SHARED_CORPORA

SOURCE = "common_crawl"  # a prose source: language ID, prose rules and prose content filters all run
DOC_BYTES = 6000  # books are cut into runs of whole lines of about this many UTF-8 bytes (at most 8 KB)
MAX_DOC_BYTES = 8000
TARGETS = {"filter_stage_mb_s_1_core_with_langid": 1.0, "minhash_signatures_mb_s_1_core": 2.0}

Row = dict[str, Any]


def _jsonl(path: Path) -> list[Row]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def split_book(text: str) -> list[str]:
    """Consecutive runs of whole lines of about DOC_BYTES; a longer line is cut at MAX_DOC_BYTES."""
    docs: list[str] = []
    lines: list[str] = []
    size = 0
    for line in text.splitlines():
        while _nbytes(line) > MAX_DOC_BYTES:  # one very long paragraph: cut it on character boundaries
            cut = len(line.encode()[:MAX_DOC_BYTES].decode("utf-8", "ignore"))
            docs.append(line[:cut])
            line = line[cut:]
        lines.append(line)
        size += _nbytes(line) + 1
        if size >= DOC_BYTES:
            docs.append("\n".join(lines))
            lines, size = [], 0
    if lines:
        docs.append("\n".join(lines))
    return [doc for doc in docs if doc.strip()]


def load_rows(corpora: Path) -> list[Row]:
    """The corpora as {id, text} rows, shuffled so every shard gets a mix of languages and genres."""
    rows: list[Row] = []
    for rel in ("web/common_crawl_en.jsonl", "multilingual/udhr.jsonl", *sorted(
            f"domain/{p.name}" for p in (corpora / "domain").glob("*.jsonl"))):
        rows += [{"id": row["id"], "text": row["text"]} for row in _jsonl(corpora / rel)]
    for book in sorted((corpora / "books").glob("*.txt")):
        text = book.read_text(encoding="utf-8-sig")
        rows += [{"id": f"{book.stem}-{i}", "text": doc} for i, doc in enumerate(split_book(text))]
    random.Random(0).shuffle(rows)
    return rows


def replicate(rows: list[Row], target_bytes: int) -> list[Row]:
    """Whole passes over `rows` (plus part of the last) until `target_bytes` of text; ids stay unique."""
    out: list[Row] = []
    size, copy = 0, 0
    while size < target_bytes:
        for row in rows:
            out.append({"id": f"{row['id']}#{copy}", "text": row["text"]})
            size += _nbytes(row["text"])
            if size >= target_bytes:
                break
        copy += 1
    return out


def _rate(mb: float, docs: int, seconds: float, cpu_seconds: float | None = None, cores: int = 1) -> Row:
    out: Row = {
        "seconds": round(seconds, 3),
        "mb_per_s": round(mb / seconds, 3),
        "docs_per_s": round(docs / seconds, 1),
        "mb_per_s_per_core": round(mb / seconds / cores, 3),
    }
    if cpu_seconds:
        out["mb_per_cpu_s"] = round(mb / cpu_seconds, 3)
    return out


def _time_step(items: Sequence[Any], work: Callable[[Any], object], mb: float) -> Row:
    """One pass of `work` over every item, in this process, on one core."""
    started, cpu = time.perf_counter(), time.process_time()
    for item in items:
        work(item)
    return _rate(mb, len(items), time.perf_counter() - started, time.process_time() - cpu)


def step_throughput(texts: list[str]) -> tuple[dict[str, Row], Row]:
    """Each filter step over all documents, fed as the stage feeds it: normalized text and detected language.
    Content filters and PII redaction run on every document here (the stage runs content filters only on
    documents that pass the quality rules, and redacts every document)."""
    detector = get_detector()
    rules = prose_rules()
    content = content_filters("prose")
    mb = sum(_nbytes(t) for t in texts) / 1e6
    identify("warm up the detector", detector)

    steps: dict[str, Row] = {"normalization": _time_step(texts, normalize_text, mb)}
    norm = [normalize_text(t) for t in texts]
    steps["language_id"] = _time_step(norm, lambda t: identify(t, detector), mb)
    pairs = [(t, identify(t, detector).lang) for t in norm]
    steps["quality_rules"] = _time_step(pairs, lambda p: run_rules(rules, p[0], p[1]), mb)
    steps["quality_signals"] = _time_step(pairs, lambda p: quality_signals(p[0], p[1]), mb)
    steps["content_filters"] = _time_step(pairs, lambda p: [f.filter(p[0], p[1], None) for f in content], mb)
    steps["pii_redaction"] = _time_step(norm, redact_pii, mb)
    seconds = sum(s["seconds"] for s in steps.values())
    cpu = sum(mb / s["mb_per_cpu_s"] for s in steps.values())
    return steps, {**_rate(mb, len(texts), seconds, cpu), "note": "sum of the six steps' times"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm_filter(_: int) -> None:
    """What every stage worker pays before its first document: imports and the fastText model."""
    DocumentFilter(SOURCE, FilterConfig())


def _warm_minhash(_: int) -> None:
    minhash_signatures(["warm up the punctuation table"], ["en"])


def pool_startup_seconds(warm: Callable[[int], None], processes: int = 2) -> float:
    """A fresh spawn pool of `processes` workers doing only `warm` once each."""
    started = time.perf_counter()
    map_shards(warm, list(range(processes)), processes)
    return round(time.perf_counter() - started, 3)


def filter_stage(shards: list[Path], out: Path, mb: float, docs: int) -> dict[str, Any]:
    """filter_source on processes=1 (inline) and 2 (spawn pool), with the CPU time of all processes."""
    runs: dict[str, Any] = {}
    for processes in (1, 2):
        started, cpu = time.perf_counter(), _self_cpu() + _children_cpu()
        stats = filter_source(SOURCE, shards, out / f"filtered-{processes}", FilterConfig(processes=processes))
        seconds, cpu = time.perf_counter() - started, _self_cpu() + _children_cpu() - cpu
        assert stats.documents_in == docs, (stats.documents_in, docs)
        runs[f"processes_{processes}"] = {
            **_rate(mb, docs, seconds, cpu, cores=processes),
            "kept": stats.kept,
            "rejected": stats.rejected,
        }
    one, two = runs["processes_1"], runs["processes_2"]
    runs["speedup_2_vs_1"] = round(one["seconds"] / two["seconds"], 2)
    startup = pool_startup_seconds(_warm_filter)
    runs["pool_startup_seconds_2_workers"] = startup
    runs["processes_2_mb_per_s_excluding_pool_startup"] = round(mb / max(two["seconds"] - startup, 1e-9), 3)
    runs["note"] = ("processes=1 runs inline (no pool); processes=2 includes spawning 2 workers, each "
                    "importing the library and loading the fastText model (pool_startup_seconds)")
    runs["rejected_by_reason"] = dict(sorted(stats.rejected_by_reason.items()))
    runs["lang_histogram_top10"] = dict(list(stats.lang_histogram.items())[:10])
    return runs


def minhash(shards: list[Path], out: Path, mb: float, docs: int) -> dict[str, Any]:
    """dedup_corpus on processes=1 and 2: signature throughput and the global duplicate search."""
    runs: dict[str, Any] = {}
    for processes in (1, 2):
        work = out / f"dedup-{processes}"
        cpu = _self_cpu() + _children_cpu()
        result = dedup_corpus(shards, work, processes=processes)
        cpu = _self_cpu() + _children_cpu() - cpu
        seconds = result.seconds
        runs[f"signatures_processes_{processes}"] = _rate(mb, docs, seconds["signatures"], cores=processes)
        runs[f"dedup_corpus_mb_per_cpu_s_processes_{processes}"] = round(mb / cpu, 3)
        runs[f"find_duplicates_seconds_processes_{processes}"] = round(seconds["find_duplicates"], 3)
        runs[f"apply_seconds_processes_{processes}"] = round(seconds["apply"], 3)
    runs["signatures_speedup_2_vs_1"] = round(
        runs["signatures_processes_1"]["seconds"] / runs["signatures_processes_2"]["seconds"], 2)
    startup = pool_startup_seconds(_warm_minhash)
    runs["pool_startup_seconds_2_workers"] = startup
    runs["signatures_processes_2_mb_per_s_excluding_pool_startup"] = round(
        mb / max(runs["signatures_processes_2"]["seconds"] - startup, 1e-9), 3)
    runs["note"] = ("signatures read raw shards and write signature files; processes=1 runs inline, "
                    "processes=2 includes spawning the pool (pool_startup_seconds)")
    runs["duplicates"] = {key: getattr(result, key) for key in ("documents_in", "exact_duplicates",
                                                                "near_duplicates", "candidate_pairs",
                                                                "verified_pairs", "kept", "removed")}
    runs["minhash"] = result.minhash
    return runs


def _ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2)


def datatrove_side_by_side(raw: Path, out: Path, mb: float, docs: int, stage: dict[str, Any],
                           dedup: dict[str, Any]) -> dict[str, Any]:
    """datatrove's cascade and MinHash on the raw shards in `raw`, on 1 and 2 processes, next to ours."""
    if missing := datatrove_peer.missing():
        return {"skipped": f"datatrove not run: {', '.join(missing)} not installed (pip install -e '.[peers]')"}
    result: dict[str, Any] = {"version": datatrove_peer.version()}
    for processes in (1, 2):
        cascade = datatrove_peer.filter_cascade(raw, out / f"datatrove-filter-{processes}", processes)
        theirs = _rate(mb, docs, cascade["seconds"], cascade["cpu_seconds"], cores=processes)
        ours = stage[f"processes_{processes}"]
        result[f"filter_processes_{processes}"] = {
            **theirs, "kept": cascade["kept"], "removed_by_filter": cascade["removed_by_filter"],
            "ours_over_datatrove_mb_per_s": _ratio(ours["mb_per_s"], theirs["mb_per_s"]),
            "ours_over_datatrove_mb_per_cpu_s": _ratio(ours["mb_per_cpu_s"], theirs["mb_per_cpu_s"]),
        }
        mh = datatrove_peer.minhash(raw, out / f"datatrove-minhash-{processes}", processes)
        signatures = _rate(mb, docs, mh["seconds"]["signatures"], mh["cpu_seconds"]["signatures"], cores=processes)
        ours_sig = dedup[f"signatures_processes_{processes}"]
        ours_find = dedup[f"find_duplicates_seconds_processes_{processes}"]
        theirs_find = mh["seconds"]["buckets"] + mh["seconds"]["clusters"]
        result[f"minhash_processes_{processes}"] = {
            "signatures": signatures,
            "seconds": mh["seconds"],
            "kept": mh["kept"],
            "removed": mh["removed"],
            "ours_over_datatrove_signatures_mb_per_s_per_core": _ratio(
                ours_sig["mb_per_s_per_core"], signatures["mb_per_s_per_core"]),
            "ours_over_datatrove_find_duplicates_speed": _ratio(theirs_find, max(ours_find, 1e-9)),
            "ours_over_datatrove_apply_speed": _ratio(
                mh["seconds"]["filter"], max(dedup[f"apply_seconds_processes_{processes}"], 1e-9)),
        }
    result["minhash_config"] = mh["config"]
    result["note"] = ("same raw shards and process counts as ours; datatrove's find_duplicates is its buckets "
                      "plus clusters steps, its apply the MinHash filter writing kept and removed rows. The "
                      "cascades differ in their rules, so they keep different documents (see kept)")
    return result


def benchmark(corpora: Path, target_mb: float, shard_mb: float, peer: str | None = None) -> dict[str, Any]:
    wall = time.perf_counter()
    base = load_rows(corpora)
    rows = replicate(base, int(target_mb * 1e6))
    texts = [row["text"] for row in rows]
    mb = sum(_nbytes(t) for t in texts) / 1e6
    steps, step_sum = step_throughput(texts)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "input").mkdir()
        with (root / "input" / "docs.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        started = time.perf_counter()
        ingested = ingest_source(SOURCE, root / "input", root / "raw", IngestConfig(shard_bytes=int(shard_mb * 1e6)))
        ingest_seconds = time.perf_counter() - started
        assert ingested.kept == len(rows), (ingested.kept, len(rows))
        shards = [root / "raw" / name for name in ingested.shards]
        stage = filter_stage(shards, root, mb, len(rows))
        dedup = minhash(shards, root, mb, len(rows))
        peers = {"datatrove": datatrove_side_by_side(root / "raw", root, mb, len(rows), stage, dedup)} if peer else {}

    stage_mb_s = stage["processes_1"]["mb_per_s"]
    sig_mb_s = dedup["signatures_processes_1"]["mb_per_s"]
    return {
        "corpus": {
            "docs": len(rows),
            "mb": round(mb, 3),
            "distinct_docs": len(base),
            "distinct_mb": round(sum(_nbytes(r["text"]) for r in base) / 1e6, 3),
            "raw_shards": len(shards),
            "ingest_seconds": round(ingest_seconds, 3),
        },
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "filter_steps_1_core": steps,
        "filter_steps_sum_1_core": step_sum,
        "filter_stage": stage,
        "minhash_dedup": dedup,
        "peers": peers,
        "targets": {
            "filter_stage_mb_s_1_core_with_langid": {
                "target": TARGETS["filter_stage_mb_s_1_core_with_langid"],
                "measured": stage_mb_s,
                "met": stage_mb_s >= TARGETS["filter_stage_mb_s_1_core_with_langid"],
            },
            "minhash_signatures_mb_s_1_core": {
                "target": TARGETS["minhash_signatures_mb_s_1_core"],
                "measured": sig_mb_s,
                "met": sig_mb_s >= TARGETS["minhash_signatures_mb_s_1_core"],
            },
        },
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--mb", type=float, default=12.0, help="MB of text after replication")
    parser.add_argument("--shard-mb", type=float, default=1.5, help="raw shard size in MB of text")
    parser.add_argument("--peer", choices=["datatrove"], help="also run this peer on the same shards")
    args = parser.parse_args()
    print(json.dumps(benchmark(args.corpora, args.mb, args.shard_mb, args.peer), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
