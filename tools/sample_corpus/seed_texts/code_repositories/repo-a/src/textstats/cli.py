# SPDX-License-Identifier: MIT
# Copyright (c) 2023 The textstats authors
"""Command-line entry point: `textstats FILE...` prints simple corpus statistics."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from textstats.tokenize import dominant_script, ngrams, sentences, type_token_ratio, words


def analyse(text: str, top: int) -> dict[str, object]:
    """Compute statistics for one document."""
    tokens = words(text)
    sents = sentences(text)
    bigrams = Counter(" ".join(bg) for bg in ngrams(tokens, 2))
    return {
        "characters": len(text),
        "words": len(tokens),
        "sentences": len(sents),
        "avg_sentence_words": round(len(tokens) / len(sents), 2) if sents else 0.0,
        "type_token_ratio": round(type_token_ratio(tokens), 4),
        "script": dominant_script(text),
        "top_words": Counter(tokens).most_common(top),
        "top_bigrams": bigrams.most_common(top),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textstats", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="UTF-8 text files to analyse")
    parser.add_argument("--top", type=int, default=10, help="how many frequent items to list")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status = 0
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"textstats: {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        stats = analyse(text, args.top)
        if args.json:
            print(json.dumps({"file": str(path), **stats}, ensure_ascii=False))
            continue
        print(f"== {path}")
        for key, value in stats.items():
            if isinstance(value, list):
                value = ", ".join(f"{item} ({count})" for item, count in value)
            print(f"{key:>20}: {value}")
    return status


if __name__ == "__main__":
    sys.exit(main())
