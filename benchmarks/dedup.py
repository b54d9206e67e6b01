"""Dedup on real text: throughput (MinHash signatures on one core and in a 2-process pool, the global
LSH / union-find step) and near-duplicate quality on a labelled set. Prints one JSON object.

    python -m benchmarks.dedup [--corpora ../shared/corpora]
    python -m benchmarks.dedup --docs 2000000 [--shard-docs 50000] [--processes 2] [--sample-docs 2000]

With `--docs`, the staged dedup at scale on generated documents with planted clusters instead
(`benchmarks.dedup_scale`): each step's seconds and peak RSS, recall and precision, and signature
throughput per core against datatrove's.

Throughput: English documents from the public corpora (books cut into ~2 KB documents, PubMed abstracts,
contracts, citation contexts, Common Crawl pages); a third of them get a near-duplicate copy (2% of words
replaced) so the LSH step has real clusters to find.

Quality (`near_duplicates`): the labelled set of `benchmarks.near_duplicates` built from the same English
sources plus the UDHR in 41 languages and 吾輩は猫である: recall per edit kind and strength, script,
language and true Jaccard, false merges per hard-negative kind, survivors; for the default layout and,
for comparison, datatrove's 14 x 8 bands and a looser verification (0.4).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import MinHash

from benchmarks import dedup_scale
from benchmarks.near_duplicates import build_eval_set, evaluate, run_dedup
from fm_pipeline.curation.dedup.clusters import SEARCH_STEPS
from fm_pipeline.curation.dedup.minhash import MinHashConfig, minhash_signatures, shingle_hash32, shingles
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from tools.corpora import SHARED_CORPORA
from tools.text_chunks import chunk_text


def english_documents(corpora: Path) -> list[Document]:
    docs = []
    for name in ("botchan.txt", "tinyshakespeare.txt"):
        text = (corpora / "books" / name).read_text(encoding="utf-8-sig")
        chunks = chunk_text(text, 2000)
        docs += [Document(id=f"{name}-{i}", text=t, source="books", lang="en") for i, t in enumerate(chunks)]
    for rel, source in (
        ("domain/biomedical.jsonl", "academic_papers"),
        ("domain/legal.jsonl", "reference_data"),
        ("domain/scientific.jsonl", "academic_papers"),
        ("web/common_crawl_en.jsonl", "common_crawl"),
    ):
        for line in (corpora / rel).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            docs.append(Document(id=row["id"], text=row["text"], source=source, lang="en"))
    return docs


def labelled_originals(corpora: Path, book_chunks: int = 150) -> list[Document]:
    """Originals for the labelled set, normalized as the filter stage does: books in ~2 KB runs of lines
    (paragraph breaks kept), the English domain and web documents, every UDHR document (41 languages,
    8 parts each) and ~1 KB runs of 吾輩は猫である."""
    docs = []
    for name, lang, size in (("botchan.txt", "en", 2000), ("tinyshakespeare.txt", "en", 2000),
                             ("wagahaiwa_nekodearu.txt", "ja", 1000)):
        text = (corpora / "books" / name).read_text(encoding="utf-8-sig")
        chunks = chunk_text(text, size, unit="line")[1:book_chunks + 1]
        docs += [Document(id=f"{name}-{i}", text=t, source="books", lang=lang) for i, t in enumerate(chunks)]
    docs += [d for d in english_documents(corpora) if d.source != "books"]
    for line in (corpora / "multilingual" / "udhr.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs.append(Document(id=row["id"], text=row["text"], source="reference_data", lang=row["meta"]["gold_lang"]))
    for doc in docs:
        doc.text = normalize_text(doc.text)
    return docs


def near_duplicate_quality(corpora: Path) -> dict:
    """Figures on the labelled set (seed 0): the default layout in full, two variants summarized."""
    eval_set = build_eval_set(labelled_originals(corpora), holdout_every=20, template_pages=40, seed=0)
    started = time.perf_counter()
    full = evaluate(eval_set, run_dedup(eval_set.docs, shards=4))
    full["seconds"] = round(time.perf_counter() - started, 2)
    variants = {}
    for name, cfg, threshold in (("bands_14x8", MinHashConfig(bands=14), 0.6), ("verify_0.4", None, 0.4)):
        figs = evaluate(eval_set, run_dedup(eval_set.docs, cfg, threshold, shards=4))
        variants[name] = {
            "recall_by_kind": {k: v["recall"] for k, v in figs["recall_by_kind"].items() if "/" not in k},
            "recall_by_true_jaccard": {k: v["recall"] for k, v in figs["recall_by_true_jaccard"].items()},
            "false_merge_pairs": figs["false_merge_pairs"],
            "hard_negatives_merged": {k: v["merged"] for k, v in figs["hard_negatives"].items()},
        }
    return {"default_28x4_verify_0.6": full, **variants}


def with_near_duplicates(docs: list[Document], seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    copies = []
    for doc in docs[::3]:
        words = doc.text.split()
        for i in rng.sample(range(len(words)), max(1, len(words) // 50)):
            words[i] = rng.choice(words)
        copies.append(Document(id=f"copy-{doc.id}", text=" ".join(words), source="common_crawl", lang="en"))
    return docs + copies


def write_shards(docs: list[Document], folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rows = [d.to_row() for d in docs[i::n]]
        paths.append(folder / f"part-{i:05d}.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA), paths[-1])
    return paths


def _warm(_: int) -> None:
    """Pool warm-up: import the library and build its caches, so timing sees hashing only."""
    minhash_signatures(["warm up the punctuation table"], ["en"])


def _sign(job: tuple[Path, Path]) -> None:
    compute_signatures(*job)


def warm_pool_seconds(shards: list[Path], out: Path, processes: int) -> tuple[float, float]:
    """(pool start-up and warm-up seconds, signature seconds once warm)."""
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_warm, range(processes), chunksize=1)
        warm = time.perf_counter()
        pool.map(_sign, [(s, out / f"{s.stem}.sig.parquet") for s in shards], chunksize=1)
        return warm - started, time.perf_counter() - warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--docs", type=int, help="run the scale benchmark on this many generated documents")
    parser.add_argument("--shard-docs", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--sample-docs", type=int, default=2_000)
    parser.add_argument("--tmp", type=Path, help="where the scale benchmark writes (default: the system's)")
    args = parser.parse_args()
    if args.docs:
        print(json.dumps(dedup_scale.run(args.docs, args.shard_docs, args.processes, args.sample_docs,
                                         root=args.tmp), indent=2))
        return
    quality = near_duplicate_quality(args.corpora)

    originals = english_documents(args.corpora)
    docs = with_near_duplicates(originals)
    texts = [d.text for d in docs]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    cfg = MinHashConfig()
    minhash_signatures(texts[:10], ["en"] * 10, cfg)  # builds the punctuation table and power cache once

    started, cpu_started = time.perf_counter(), time.process_time()
    for lo in range(0, len(texts), 1000):
        minhash_signatures(texts[lo : lo + 1000], ["en"] * len(texts[lo : lo + 1000]), cfg)
    minhash_s, minhash_cpu = time.perf_counter() - started, time.process_time() - cpu_started

    sample = texts[: max(1, len(texts) // 20)]
    cpu_started = time.process_time()
    for text in sample:
        MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=shingle_hash32).update_batch(list(shingles(text)))
    datasketch_cpu = time.process_time() - cpu_started
    sample_mb = sum(len(t.encode("utf-8")) for t in sample) / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        shards = write_shards(docs, Path(tmp) / "in", args.shards)
        runs = {}
        for processes in (1, 2):
            work = Path(tmp) / f"work-{processes}"
            stats = dedup_corpus(shards, work, processes=processes)
            runs[processes] = stats
        cached = dedup_corpus(shards, Path(tmp) / "work-1", processes=1)
        startup_s, warm_s = warm_pool_seconds(shards, Path(tmp) / "warm", 2)

    one, two = runs[1], runs[2]
    print(
        json.dumps(
            {
                "corpus": {"docs": len(docs), "mb": round(mb, 3), "shards": args.shards, "lang": "en"},
                "cpus": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "minhash": one.minhash,
                "signatures_in_memory_1_core": {
                    "mb_per_s": round(mb / minhash_s, 2),
                    "docs_per_s": round(len(docs) / minhash_s),
                    "mb_per_cpu_s": round(mb / minhash_cpu, 2),
                },
                "signatures_files_1_process": {
                    "mb_per_s": round(mb / one.seconds["signatures"], 2),
                    "docs_per_s": round(len(docs) / one.seconds["signatures"]),
                    "seconds": round(one.seconds["signatures"], 3),
                },
                "signatures_files_2_process_pool": {
                    "mb_per_s": round(mb / two.seconds["signatures"], 2),
                    "docs_per_s": round(len(docs) / two.seconds["signatures"]),
                    "seconds": round(two.seconds["signatures"], 3),
                    "note": "dedup_corpus(processes=2): includes starting 2 spawn workers",
                },
                "signatures_files_2_process_pool_warm": {
                    "mb_per_s": round(mb / warm_s, 2),
                    "docs_per_s": round(len(docs) / warm_s),
                    "seconds": round(warm_s, 3),
                    "pool_startup_seconds": round(startup_s, 3),
                },
                "signatures_cached_rerun_seconds": round(cached.seconds["signatures"], 3),
                "datasketch_update_batch_1_core": {
                    "mb_per_cpu_s": round(sample_mb / datasketch_cpu, 2),
                    "docs": len(sample),
                    "note": "same shingles and hash values, one MinHash per document",
                },
                "lsh_union_find": {
                    "seconds": round(one.seconds["find_duplicates"], 3),
                    "seconds_by_step": {k: round(one.seconds[k], 3) for k in SEARCH_STEPS},
                    "candidate_pairs": one.candidate_pairs,
                    "verified_pairs": one.verified_pairs,
                    "exact_duplicates": one.exact_duplicates,
                    "near_duplicates": one.near_duplicates,
                    "planted_near_duplicates": len(docs) - len(originals),
                },
                "apply_seconds": round(one.seconds["apply"], 3),
                "near_duplicates": quality,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
