"""`benchmarks.tokenize_bench` on a sliver of the public corpora: distinct documents only, the cold / warm /
same-text rates all measured, and both encode_corpus runs byte-identical."""

from __future__ import annotations

from pathlib import Path

from benchmarks import tokenize_bench


def test_distinct_text_cold_and_warm(shared_corpora: Path) -> None:
    report = tokenize_bench.benchmark(shared_corpora, 0.2, 2, 3000)
    corpus = report["corpus"]
    assert corpus["documents"] == corpus["distinct_documents"]  # no text repeats
    assert 0.2 <= corpus["mb"] < 0.3
    rates = report["in_memory_1_thread"]["corpus_documents"]
    for key in ("sp_encode", "encoder_cold", "encoder_warm", "encoder_same_text_again"):
        assert rates[f"{key}_mb_per_cpu_s"] > 0
    assert report["in_memory_1_thread"]["one_1mb_book_same_ids"]
    assert report["outputs_byte_identical"]


def test_take_never_repeats_a_document(shared_corpora: Path) -> None:
    docs = tokenize_bench.documents(shared_corpora)
    everything = tokenize_bench.take(docs, 1000.0)
    assert [d.id for d in everything] == [d.id for d in docs]
    assert len({d.text for d in everything}) == len(everything)
