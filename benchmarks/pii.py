"""PII redaction: recall and precision on a labelled set, false positives on clean text, and speed.
Prints one JSON object.

    python -m benchmarks.pii [--corpora ../shared/corpora] [--repeats 5] [--copies 2] [--seed 15]

Labelled set: the clean carrier text of the shared corpora (UDHR in 41 languages, PubMed, SciCite, CUAD;
lines holding their real contact details removed) with seeded generated values inserted
(`benchmarks.pii_samples`: seven types, many formats each, sentences in nine languages). A value
is recalled when one detection of its type covers all of it; precision counts detections that overlap a
value of their type. The same set also measures the independent detector of the `no_pii_in_kept` check
(libphonenumber, python-stdnum): its recall is what a redactor miss would have to slip past.

False positives: detections in the untouched corpora that are not real contact details, per 100 documents.

Speed: MB = UTF-8 bytes of input text; the best of `--repeats` timed passes (one core). Common Crawl pages
and the domain corpora are the documents the pipeline redacts; the books, cut into ~8 KB documents, stand
for long prose without PII. For each corpus: the share of documents that pass the cheap gate (and so get
every detector) and what was found.
"""

from __future__ import annotations

import argparse
import json
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks.pii_samples import (
    TYPES,
    Labelled,
    false_positives,
    is_contact_detail,
    labelled_set,
    score,
)
from fm_pipeline.curation.pii.detectors import may_contain_pii
from fm_pipeline.curation.pii.redact import pii_spans, redact_pii
from fm_pipeline.curation.pii_audit import audit_pii
from tools.corpora import SHARED_CORPORA

JSONL = {
    "web": "web/common_crawl_en.jsonl",
    "biomedical": "domain/biomedical.jsonl",
    "legal": "domain/legal.jsonl",
    "scientific": "domain/scientific.jsonl",
}
CLEAN = {"udhr": "multilingual/udhr.jsonl", "pubmed": "domain/biomedical.jsonl",
         "scicite": "domain/scientific.jsonl", "cuad": "domain/legal.jsonl"}
BOOKS = ("botchan.txt", "tinyshakespeare.txt")


def read_jsonl(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def load(corpora: Path) -> dict[str, list[str]]:
    texts = {name: read_jsonl(corpora / rel) for name, rel in JSONL.items()}
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


def without_contact_lines(text: str) -> str:
    """The carrier without the lines that hold its real contact details, so that finding them is not
    counted against precision (other detections in it still are)."""
    real = {text.rfind("\n", 0, start) + 1 for start, end, kind in pii_spans(text)
            if is_contact_detail(text, start, end, kind)}
    kept, pos = [], 0
    for line in text.split("\n"):
        if pos not in real:
            kept.append(line)
        pos += len(line) + 1
    return "\n".join(kept)


def _fold(value: str) -> str:
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in unicodedata.normalize("NFKC", value))


def audit_recall(docs: list[Labelled]) -> dict[str, object]:
    """Share of the labelled values the independent detector reports (by string: it gives no offsets)."""
    found = Counter[str]()
    total = Counter[str]()
    for doc in docs:
        reported = audit_pii(doc.text)
        for start, end, kind in doc.spans:
            value = _fold(doc.text[start:end])
            total[kind] += 1
            found[kind] += any(k == kind and (value in s or s in value) for k, s in reported)
    return {"recall": round(sum(found.values()) / sum(total.values()), 4),
            "recall_by_type": {k: round(found[k] / total[k], 4) for k in TYPES if total[k]}}


def timed(fn: Callable[[str], object], texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        fn(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=2, help="passes over the carriers (3 values each)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()

    clean = {name: read_jsonl(args.corpora / rel) for name, rel in CLEAN.items()}
    carriers = [without_contact_lines(t) for name in CLEAN for t in clean[name]]
    docs = labelled_set(carriers * args.copies, seed=args.seed)
    labelled = score(docs, pii_spans)
    labelled["false_positives"] = labelled["false_positives"][:20]
    fps = {name: false_positives(texts, pii_spans) for name, texts in clean.items()}
    all_docs = [t for texts in clean.values() for t in texts]
    mb = sum(len(t.encode()) for t in all_docs) / 1e6

    texts = load(args.corpora)
    speed = {name: measure(docs_, args.repeats) for name, docs_ in texts.items()}
    speed["web_and_domain"] = measure([t for name in JSONL for t in texts[name]], args.repeats)
    print(json.dumps({
        "benchmark": "pii",
        "corpora": str(args.corpora),
        "labelled": {"docs": len(docs), **labelled},
        "false_positives_per_100_clean_docs": {
            "docs": {name: len(texts_) for name, texts_ in clean.items()},
            "per_100": round(100 * sum(map(len, fps.values())) / len(all_docs), 3),
            "by_corpus": {name: round(100 * len(f) / len(clean[name]), 3) for name, f in fps.items()},
            "examples": [f for found in fps.values() for f in found][:20],
        },
        "audit_detector": {**audit_recall(docs),
                           "mb_per_s_on_clean_corpora": round(mb / timed(audit_pii, all_docs), 2),
                           "redactor_mb_per_s_on_same": round(mb / timed(redact_pii, all_docs), 1)},
        "speed": speed,
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
