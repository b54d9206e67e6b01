"""Language ID backends on the UDHR in 41 languages: accuracy per document and per paragraph, how often a
monolingual document is wrongly called code-switched, and throughput on one core. Prints JSON.

    python benchmarks/langid.py [--corpora ../shared/corpora] [--backends fasttext langdetect]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fm_pipeline.curation.langid import BACKENDS, LanguageDetector, get_detector, identify

REPO_ROOT = Path(__file__).resolve().parents[1]
MIN_SECONDS = 1.0  # repeat a timed pass until it has run this long, so fast backends time stably


def _timed(run: Callable[[], list[str]]) -> tuple[list[str], float]:
    """Predictions of one pass, and seconds per pass (passes repeated for at least MIN_SECONDS)."""
    passes, start = 0, time.perf_counter()
    while True:
        predictions = run()
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return predictions, elapsed / passes


def _score(detector: LanguageDetector, texts: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    predictions, seconds = _timed(lambda: [detector.detect(text)[0] for text in texts])
    errors = Counter(f"{g}->{p}" for g, p in zip(gold, predictions, strict=True) if g != p)
    megabytes = sum(len(text.encode()) for text in texts) / 1e6
    return {
        "n": len(texts),
        "accuracy": round(sum(g == p for g, p in zip(gold, predictions, strict=True)) / len(texts), 4),
        "per_s": round(len(texts) / seconds, 1),
        "mb_per_s": round(megabytes / seconds, 3),
        "errors": dict(errors.most_common()),
    }


def benchmark(corpora: Path, backends: Sequence[str]) -> dict[str, Any]:
    """Figures for each backend on `corpora`/multilingual/udhr.jsonl."""
    path = corpora / "multilingual" / "udhr.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = [row["text"] for row in rows]
    doc_gold = [row["meta"]["gold_lang"] for row in rows]
    paragraphs, paragraph_gold = [], []
    for text, gold in zip(docs, doc_gold, strict=True):
        for line in text.split("\n"):
            if line.strip():
                paragraphs.append(line.strip())
                paragraph_gold.append(gold)

    results: dict[str, Any] = {}
    for name in backends:
        start = time.perf_counter()
        detector = get_detector(name)
        load_s = time.perf_counter() - start
        identified = [identify(text, detector) for text in docs]
        results[name] = {
            "load_s": round(load_s, 3),
            "documents": _score(detector, docs, doc_gold),
            "paragraphs": _score(detector, paragraphs, paragraph_gold),
            "identify_accuracy": round(
                sum(r.lang == g for r, g in zip(identified, doc_gold, strict=True)) / len(docs), 4
            ),
            "false_code_switched_docs": sum(r.segments is not None for r in identified),
        }
    return {
        "corpus": str(path),
        "languages": len(set(doc_gold)),
        "cpu_cores_used": len(os.sched_getaffinity(0)),
        "default_backend": get_detector().name,
        "backends": results,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=REPO_ROOT.parent / "shared" / "corpora")
    parser.add_argument("--backends", nargs="+", default=sorted(BACKENDS), choices=sorted(BACKENDS))
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # throughput on one core
    print(json.dumps(benchmark(args.corpora, args.backends), indent=2))


if __name__ == "__main__":
    main()
