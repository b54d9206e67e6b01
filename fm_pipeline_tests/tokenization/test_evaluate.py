"""Tokenizer evaluation: numbers recomputed independently where they are exact, a round trip that catches
real failures, and parity against English on the validation split and on parallel text (UDHR)."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import pytest
import sentencepiece as spm

from fm_pipeline.curation.words import split_words
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.parquet_io import ShardWriter, iter_rows, list_shards
from fm_pipeline.tokenization.evaluate import evaluate_tokenizer, flat_metrics
from fm_pipeline.tokenization.train import TrainResult


@pytest.fixture(scope="module")
def report(trained: TrainResult, sample_splits: dict[str, Path]) -> dict:
    return evaluate_tokenizer(trained.model_path, list_shards(sample_splits["val"]))


def test_counts_are_exact(report: dict, trained: TrainResult, sample_splits: dict[str, Path]) -> None:
    sp = spm.SentencePieceProcessor(model_file=str(trained.model_path))
    rows = list(iter_rows(list_shards(sample_splits["val"]), columns=["lang", "text"]))
    by_lang: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_lang[row["lang"]].append(row["text"])
    assert set(report["by_lang"]) == set(by_lang) and len(by_lang) >= 5
    for lang, texts in by_lang.items():
        metrics = report["by_lang"][lang]
        tokens = sum(len(sp.encode(t)) for t in texts)
        words = sum(len(split_words(t)) for t in texts)
        size = sum(len(t.encode("utf-8")) for t in texts)
        assert (metrics["docs"], metrics["tokens"], metrics["words"], metrics["bytes"]) == (
            len(texts), tokens, words, size)
        assert metrics["fertility"] == round(tokens / words, 4)
        assert metrics["bytes_per_token"] == round(size / tokens, 4)
        assert metrics["chars_per_token"] == round(sum(map(len, texts)) / tokens, 4)
    assert report["overall"]["docs"] == len(rows)
    assert report["overall"]["tokens"] == sum(m["tokens"] for m in report["by_lang"].values())
    assert report["vocab_size"] == trained.vocab_size


def test_numbers_are_sane(report: dict) -> None:
    assert report["round_trip"] == {"checked": report["overall"]["docs"], "failures": 0, "examples": [],
                                    "changed_by_normalization": 0}
    assert report["parity_reference"] == "en"
    assert report["by_lang"]["en"]["parity_vs_en"] == 1.0
    for lang, metrics in report["by_lang"].items():
        assert metrics["unk_tokens"] == 0, lang
        assert metrics["parity_vs_en"] > 0, lang
        if lang != "und":  # "und" here is one document holding a lone emoji: all byte pieces
            assert 0 <= metrics["byte_fallback_share"] < 0.35, lang
            assert 1.0 <= metrics["bytes_per_token"] < 8, lang
    # A 4,000-piece vocabulary, more than half of it characters, splits English words in two or three.
    assert 1.0 < report["by_lang"]["en"]["fertility"] < 3.5
    # Space-less scripts count every character as a word: about one token per character.
    assert 0.5 < report["by_lang"]["zh"]["fertility"] < 2


def test_lossy_settings_round_trip_against_the_normalized_text(
    trained_lossy_settings: TrainResult, sample_splits: dict[str, Path]
) -> None:
    report = evaluate_tokenizer(trained_lossy_settings.model_path, list_shards(sample_splits["val"]))
    assert report["round_trip"]["failures"] == 0
    # Case folding and the NMT whitespace rules change nearly every document: the lossy tokenizer.
    assert report["round_trip"]["changed_by_normalization"] >= report["overall"]["docs"] - 2


def test_round_trip_failures_are_counted_with_examples(sample_texts: dict[str, list[str]], tmp_path: Path) -> None:
    """Without byte fallback, a character the model lacks decodes as ⁇: a failure, reported with context."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sample_texts["train"]), model_writer=model,
                                   model_type="bpe", vocab_size=3000, character_coverage=0.999, minloglevel=2)
    (tmp_path / "m.model").write_bytes(model.getvalue())
    with ShardWriter(tmp_path / "val", CORPUS_SCHEMA) as writer:
        for i, text in enumerate(["plain english words", "Georgian ქართული inside", "more text here"]):
            writer.write({"id": f"d{i}", "text": text, "source": "t", "lang": "en", "lang_score": 1.0, "url": None,
                          "meta": "{}"})
    report = evaluate_tokenizer(tmp_path / "m.model", list_shards(tmp_path / "val"))
    assert report["round_trip"]["checked"] == 3 and report["round_trip"]["failures"] == 1
    (example,) = report["round_trip"]["examples"]
    assert example["id"] == "d1" and example["position"] == len("Georgian ")
    assert "ქართული" in example["expected"] and "ქართული" not in example["decoded"]
    assert report["by_lang"]["en"]["unk_tokens"] >= 1


def test_parity_on_parallel_text(trained: TrainResult, sample_splits: dict[str, Path], shared_corpora: Path) -> None:
    """UDHR: the same declaration in 41 languages, in 8 chunks aligned across languages."""
    parallel: dict[str, list[str]] = defaultdict(list)
    with (shared_corpora / "multilingual" / "udhr.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            parallel[row["meta"]["gold_lang"]].append(row["text"])
    report = evaluate_tokenizer(trained.model_path, list_shards(sample_splits["val"]), parallel=parallel)
    parity = report["parity_parallel"]
    assert set(parity) == set(parallel) and parity["en"] == 1.0
    # Languages the tokenizer saw cost less than scripts it never saw (Tamil, Thai: byte fallback).
    seen = max(parity[lang] for lang in ("es", "fr", "de", "zh", "ko"))
    assert seen < min(parity["ta"], parity["th"])
    with pytest.raises(ValueError, match="English"):
        evaluate_tokenizer(trained.model_path, [], parallel={"fr": ["x"]})
    with pytest.raises(ValueError, match="'fr'"):
        evaluate_tokenizer(trained.model_path, [], parallel={"en": ["a", "b"], "fr": ["x"]})


def test_flat_metrics(report: dict) -> None:
    flat = flat_metrics(report)
    assert flat["tokenizer/round_trip_failures"] == 0.0
    assert flat["tokenizer/en/parity_vs_en"] == 1.0
    assert flat["tokenizer/all/bytes_per_token"] == report["overall"]["bytes_per_token"]
    assert "tokenizer/all/parity_vs_en" not in flat  # no parity for the whole split
    assert all(isinstance(v, float) for v in flat.values())
