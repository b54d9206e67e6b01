"""Language ID backends on held-out sentences and on the UDHR. Prints JSON.

Held-out: benchmarks/data/langid_sentences.tsv, real public sentences in 33 languages that are not the UDHR
(sources and licences in the file). Accuracy per language, per length (short: at most 8 words, or 16
characters in scripts written without spaces), the confusions, and the same split into a "tune" and a "test"
half by a hash of each sentence: the tune half is where rules were looked for, the test half checks them.
UDHR (when ../shared/corpora is there): accuracy per document and per paragraph, how often a monolingual
document is wrongly called code-switched, and throughput on one core.

    python -m benchmarks.langid [--corpora ../shared/corpora] [--backends fasttext langdetect]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fm_pipeline.curation.langid.backends import BACKENDS, LanguageDetector, get_detector
from fm_pipeline.curation.langid.scripts import main_script
from fm_pipeline.curation.langid.segments import identify
from tools.corpora import SHARED_CORPORA

REPO_ROOT = Path(__file__).resolve().parents[1]
HELDOUT = REPO_ROOT / "benchmarks" / "data" / "langid_sentences.tsv"
MIN_SECONDS = 1.0  # repeat a timed pass until it has run this long, so fast backends time stably
SHORT_WORDS = 8
# Scripts written without spaces between words: their length is counted in characters, two per word.
UNSPACED_SCRIPTS = frozenset({"Han", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan"})


@dataclass(frozen=True)
class Sentence:
    """One held-out sentence: gold language, text, the repository it came from, split and length bucket."""

    lang: str
    text: str
    source: str

    @property
    def split(self) -> str:
        """"tune" or "test", from a hash of the text: stable under reordering and additions."""
        return "tune" if hashlib.blake2b(self.text.encode(), digest_size=8).digest()[0] % 2 == 0 else "test"

    @property
    def length(self) -> str:
        """Its length bucket, "short" (at most SHORT_WORDS words) or "medium"."""
        if main_script(self.text) in UNSPACED_SCRIPTS:
            return "short" if len(self.text) <= 2 * SHORT_WORDS else "medium"
        return "short" if len(self.text.split()) <= SHORT_WORDS else "medium"


def load_sentences(path: Path = HELDOUT) -> list[Sentence]:
    """The sentences of a held-out file; each "#source" line names the repository of the rows after it."""
    sentences, source = [], ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        if line.startswith("#source\t"):
            source = fields[2]
        elif line.strip() and not line.startswith("#"):
            if len(fields) != 2 or not source:
                raise ValueError(f"{path}:{number}: expected '<lang>\\t<text>' after a #source line")
            sentences.append(Sentence(fields[0], fields[1], source))
    return sentences


def _timed(run: Callable[[], list[str]]) -> tuple[list[str], float]:
    """Predictions of one pass, and seconds per pass (passes repeated for at least MIN_SECONDS)."""
    passes, start = 0, time.perf_counter()
    while True:
        predictions = run()
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return predictions, elapsed / passes


def _accuracy(pairs: Sequence[tuple[str, str]]) -> float:
    return round(sum(gold == predicted for gold, predicted in pairs) / len(pairs), 4) if pairs else 0.0


def heldout_scores(detector: LanguageDetector, sentences: Sequence[Sentence]) -> dict[str, Any]:
    """Accuracy overall, per half, per length and per language (with its halves), and the confusions."""
    predictions, seconds = _timed(lambda: [detector.detect(s.text)[0] for s in sentences])
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    per_language: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for sentence, predicted in zip(sentences, predictions, strict=True):
        pair = (sentence.lang, predicted)
        for group in ("all", sentence.split, sentence.length):
            groups[group].append(pair)
            per_language[sentence.lang][group].append(pair)
    return {
        "n": len(sentences),
        "accuracy": {group: _accuracy(groups[group]) for group in ("all", "tune", "test", "short", "medium")},
        "n_short": len(groups["short"]),
        "sentences_per_s": round(len(sentences) / seconds, 1),
        "per_language": {
            lang: {"n": len(by["all"])} | {group: _accuracy(by[group]) for group in ("all", "tune", "test", "short")}
            for lang, by in sorted(per_language.items())
        },
        "confusions": dict(
            Counter(f"{gold}->{predicted}" for gold, predicted in groups["all"] if gold != predicted).most_common()
        ),
    }


def _udhr_scores(detector: LanguageDetector, texts: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    predictions, seconds = _timed(lambda: [detector.detect(text)[0] for text in texts])
    errors = Counter(f"{g}->{p}" for g, p in zip(gold, predictions, strict=True) if g != p)
    megabytes = sum(len(text.encode()) for text in texts) / 1e6
    return {
        "n": len(texts),
        "accuracy": _accuracy(list(zip(gold, predictions, strict=True))),
        "per_s": round(len(texts) / seconds, 1),
        "mb_per_s": round(megabytes / seconds, 3),
        "errors": dict(errors.most_common()),
    }


def udhr_benchmark(path: Path, detector: LanguageDetector) -> dict[str, Any]:
    """Figures for one backend on the UDHR documents of `path` (udhr.jsonl) and their paragraphs."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = [row["text"] for row in rows]
    doc_gold = [row["meta"]["gold_lang"] for row in rows]
    paragraphs, paragraph_gold = [], []
    for text, gold in zip(docs, doc_gold, strict=True):
        for line in text.split("\n"):
            if line.strip():
                paragraphs.append(line.strip())
                paragraph_gold.append(gold)
    identified = [identify(text, detector) for text in docs]
    return {
        "languages": len(set(doc_gold)),
        "documents": _udhr_scores(detector, docs, doc_gold),
        "paragraphs": _udhr_scores(detector, paragraphs, paragraph_gold),
        "identify_accuracy": round(sum(r.lang == g for r, g in zip(identified, doc_gold, strict=True)) / len(docs), 4),
        "false_code_switched_docs": sum(r.segments is not None for r in identified),
    }


def benchmark(corpora: Path, backends: Sequence[str], heldout: Path = HELDOUT) -> dict[str, Any]:
    """Figures for each backend on the held-out sentences, and on the UDHR when `corpora` holds it."""
    sentences = load_sentences(heldout)
    counts = Counter(s.lang for s in sentences)
    udhr = corpora / "multilingual" / "udhr.jsonl"
    results: dict[str, Any] = {}
    for name in backends:
        start = time.perf_counter()
        detector = get_detector(name)
        load_s = round(time.perf_counter() - start, 3)
        results[name] = {"load_s": load_s, "heldout": heldout_scores(detector, sentences)}
        if udhr.is_file():
            results[name]["udhr"] = udhr_benchmark(udhr, detector)
    return {
        "heldout": {
            "file": str(heldout.relative_to(REPO_ROOT)) if heldout.is_relative_to(REPO_ROOT) else str(heldout),
            "sentences": len(sentences),
            "languages": len(counts),
            "languages_with_20": sum(n >= 20 for n in counts.values()),
        },
        "udhr": str(udhr) if udhr.is_file() else None,
        "cpu_cores_used": len(os.sched_getaffinity(0)),
        "default_backend": get_detector().name,
        "backends": results,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--heldout", type=Path, default=HELDOUT)
    parser.add_argument("--backends", nargs="+", default=sorted(BACKENDS), choices=sorted(BACKENDS))
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # throughput on one core
    print(json.dumps(benchmark(args.corpora, args.backends, args.heldout), indent=2))


if __name__ == "__main__":
    main()
