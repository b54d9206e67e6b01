"""How well the tokenizer serves each language, measured on the validation split.

Per language (the `lang` column), over whole documents:

- `fertility`: tokens per word, words as `curation.words.split_words` counts them (whitespace-delimited, and
  one per character in space-less scripts, so Chinese and Japanese fertility is tokens per character);
- `chars_per_token`, `bytes_per_token` (UTF-8): compression;
- `byte_fallback_share`: share of tokens that are `<0xNN>` byte pieces, i.e. characters the vocabulary lacks;
- `unk_tokens`: `<UNK>` tokens, 0 whenever byte fallback is on;
- `parity_vs_en`: the language's tokens per UTF-8 byte divided by English's. On text that is not parallel
  this is the only comparison that does not depend on what the documents say; it charges a script's bytes
  per character to the tokenizer (a Hangul syllable is 3 bytes), so read it across tokenizers, not as an
  absolute premium. When `parallel` texts are given (the same content in every language, aligned by index),
  `parity_parallel` is the tokenizer premium of Petrov et al. (2023): tokens for the language's version of
  the texts divided by tokens for the English version.

The round trip checks decode(encode(x)) == normalize(x) on every document, where normalize(x) is the
tokenizer's own normalization (identity by default, so the decoded text is the document itself);
`changed_by_normalization` counts documents that normalization alters at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import sentencepiece as spm

from fm_pipeline.curation.words import split_words
from fm_pipeline.lake.parquet_io import iter_rows
from fm_pipeline.tokenization.spm_model import read_model

_BATCH_DOCS = 256
_SNIPPET_CHARS = 40


@dataclass
class _Counts:
    docs: int = 0
    words: int = 0
    chars: int = 0
    bytes: int = 0
    tokens: int = 0
    byte_tokens: int = 0
    unk_tokens: int = 0

    def add(self, text: str, ids: list[int], byte_ids: frozenset[int], unk_id: int) -> None:
        self.docs += 1
        self.words += len(split_words(text))
        self.chars += len(text)
        self.bytes += len(text.encode("utf-8"))
        self.tokens += len(ids)
        self.byte_tokens += sum(1 for i in ids if i in byte_ids)
        self.unk_tokens += ids.count(unk_id)

    def metrics(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        return {
            "docs": self.docs,
            "words": self.words,
            "chars": self.chars,
            "bytes": self.bytes,
            "tokens": self.tokens,
            "fertility": ratio(self.tokens, self.words),
            "chars_per_token": ratio(self.chars, self.tokens),
            "bytes_per_token": ratio(self.bytes, self.tokens),
            "byte_fallback_share": ratio(self.byte_tokens, self.tokens),
            "unk_tokens": self.unk_tokens,
        }


class _RoundTrip:
    """decode(encode(x)) against the normalized x, with the first few failures kept as examples."""

    def __init__(self, add_dummy_prefix: bool, max_examples: int) -> None:
        self.add_dummy_prefix = add_dummy_prefix
        self.max_examples = max_examples
        self.checked = self.failures = self.changed = 0
        self.examples: list[dict[str, Any]] = []

    def expected(self, sp: spm.SentencePieceProcessor, text: str) -> str:
        """What decoding should give: the normalized text, whitespace unescaped, the dummy prefix dropped."""
        normalized = sp.normalize(text).replace("\u2581", " ")
        return normalized[1:] if self.add_dummy_prefix and normalized.startswith(" ") else normalized

    def check(self, doc_id: str, lang: str, text: str, expected: str, decoded: str) -> None:
        self.checked += 1
        self.changed += expected != text
        if decoded == expected:
            return
        self.failures += 1
        if len(self.examples) < self.max_examples:
            at = next((i for i, (a, b) in enumerate(zip(expected, decoded, strict=False)) if a != b),
                      min(len(expected), len(decoded)))
            lo = max(0, at - _SNIPPET_CHARS // 2)
            self.examples.append({
                "id": doc_id,
                "lang": lang,
                "position": at,
                "expected": expected[lo : lo + _SNIPPET_CHARS],
                "decoded": decoded[lo : lo + _SNIPPET_CHARS],
            })


def _parallel_parity(sp: spm.SentencePieceProcessor, parallel: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Tokens for each language's version of the texts ÷ tokens for the English version."""
    if "en" not in parallel:
        raise ValueError("parallel texts need an English version ('en') to compare against")
    english = parallel["en"]
    en_tokens = sum(map(len, sp.encode(list(english))))
    parity = {}
    for lang, texts in sorted(parallel.items()):
        if len(texts) != len(english):
            raise ValueError(f"parallel texts for {lang!r} are {len(texts)}, English has {len(english)}")
        parity[lang] = round(sum(map(len, sp.encode(list(texts)))) / en_tokens, 4)
    return parity


def evaluate_tokenizer(
    model_path: Path,
    val_shards: Sequence[Path],
    parallel: Mapping[str, Sequence[str]] | None = None,
    max_examples: int = 5,
) -> dict[str, Any]:
    """Per-language tokenization metrics and a round-trip check over every document of `val_shards`.

    `parallel` maps a language to texts aligned by index with `parallel["en"]` (the same content
    translated); when given, `parity_parallel` is reported as well. Returns a JSON-ready dict:
    `vocab_size`, `overall` and `by_lang` (the metrics of the module docstring), `parity_reference`
    ("en", or None when the split has no English), `round_trip` (`checked`, `failures`, `examples`,
    `changed_by_normalization`) and, with `parallel`, `parity_parallel`.
    """
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    byte_ids = frozenset(i for i in range(sp.get_piece_size()) if sp.is_byte(i))
    unk_id = sp.unk_id()
    overall = _Counts()
    by_lang: dict[str, _Counts] = {}
    round_trip = _RoundTrip(read_model(Path(model_path)).normalizer.add_dummy_prefix, max_examples)
    rows = iter_rows([Path(s) for s in val_shards], columns=["id", "lang", "text"])
    while batch := list(islice(rows, _BATCH_DOCS)):
        texts = [row["text"] for row in batch]
        encoded = sp.encode(texts)
        decoded = sp.decode(encoded)
        for row, ids, back in zip(batch, encoded, decoded, strict=True):
            overall.add(row["text"], ids, byte_ids, unk_id)
            by_lang.setdefault(row["lang"], _Counts()).add(row["text"], ids, byte_ids, unk_id)
            round_trip.check(row["id"], row["lang"], row["text"], round_trip.expected(sp, row["text"]), back)
    reference = by_lang.get("en")
    report: dict[str, Any] = {
        "vocab_size": sp.get_piece_size(),
        "overall": overall.metrics(),
        "by_lang": {},
        "parity_reference": "en" if reference and reference.tokens else None,
        "round_trip": {
            "checked": round_trip.checked,
            "failures": round_trip.failures,
            "examples": round_trip.examples,
            "changed_by_normalization": round_trip.changed,
        },
    }
    for lang in sorted(by_lang):
        counts = by_lang[lang]
        metrics = counts.metrics()
        if report["parity_reference"] and counts.bytes and reference is not None:
            metrics["parity_vs_en"] = round((counts.tokens / counts.bytes) / (reference.tokens / reference.bytes), 4)
        else:
            metrics["parity_vs_en"] = None
        report["by_lang"][lang] = metrics
    if parallel is not None:
        report["parity_parallel"] = _parallel_parity(sp, parallel)
    return report


def flat_metrics(report: Mapping[str, Any], prefix: str = "tokenizer") -> dict[str, float]:
    """The report's numbers as flat `<prefix>/<name>` and `<prefix>/<lang>/<name>` keys, for MLflow metrics
    and Dagster metadata (None values, e.g. parity without English, are left out)."""
    out: dict[str, float] = {f"{prefix}/vocab_size": float(report["vocab_size"])}
    for name in ("checked", "failures", "changed_by_normalization"):
        out[f"{prefix}/round_trip_{name}"] = float(report["round_trip"][name])
    scopes = {"all": report["overall"], **report["by_lang"]}
    for scope, metrics in scopes.items():
        for name, value in metrics.items():
            if value is not None:
                out[f"{prefix}/{scope}/{name}"] = float(value)
    for lang, value in report.get("parity_parallel", {}).items():
        out[f"{prefix}/{lang}/parity_parallel"] = float(value)
    return out
