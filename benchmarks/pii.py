"""PII redaction throughput on real text, per corpus. Prints one JSON object.

    python benchmarks/pii.py [--corpora ../shared/corpora] [--repeats 5]

MB = UTF-8 bytes of input text; the best of `--repeats` timed passes is reported (one core). Common Crawl
pages and the domain corpora (PubMed abstracts, contracts, citation contexts) are the documents the
pipeline redacts; the books, cut into ~8 KB documents, stand for long English prose without PII. For each
corpus the output also gives the share of documents that pass the cheap gate (and so get every detector)
and what was found.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from fm_pipeline.curation.pii import may_contain_pii, redact_pii

REPO_ROOT = Path(__file__).resolve().parents[1]
JSONL = {
    "web": "web/common_crawl_en.jsonl",
    "biomedical": "domain/biomedical.jsonl",
    "legal": "domain/legal.jsonl",
    "scientific": "domain/scientific.jsonl",
}
BOOKS = ("botchan.txt", "tinyshakespeare.txt")


def load(corpora: Path) -> dict[str, list[str]]:
    texts = {
        name: [json.loads(line)["text"] for line in (corpora / rel).read_text(encoding="utf-8").splitlines()]
        for name, rel in JSONL.items()
    }
    books = [(corpora / "books" / name).read_text(encoding="utf-8-sig") for name in BOOKS]
    texts["books_prose"] = [book[i : i + 8000] for book in books for i in range(0, len(book), 8000)]
    return texts


def measure(texts: list[str], repeats: int) -> dict[str, object]:
    mb = sum(len(t.encode()) for t in texts) / 1e6
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            redact_pii(text)
        best = min(best, time.perf_counter() - start)
    found: Counter[str] = Counter()
    for text in texts:
        found.update(redact_pii(text)[1])
    gated = sum(1 for t in texts if may_contain_pii(t))
    return {
        "docs": len(texts),
        "mb": round(mb, 3),
        "mb_per_s": round(mb / best, 1),
        "docs_scanned_share": round(gated / len(texts), 3),
        "found": dict(sorted(found.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=REPO_ROOT.parent / "shared" / "corpora")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    texts = load(args.corpora)
    results = {name: measure(docs, args.repeats) for name, docs in texts.items()}
    everything = [t for name in JSONL for t in texts[name]]
    results["web_and_domain"] = measure(everything, args.repeats)
    print(json.dumps({"benchmark": "pii.redact_pii", "corpora": str(args.corpora), "results": results}, indent=2))


if __name__ == "__main__":
    main()
