"""Tokenization throughput on real, distinct text: `encode_corpus` over Parquet shards with 1 and 2 processes,
and in memory on one thread the word-cached `Encoder` cold (a fresh encoder) and warm (an encoder that has
already encoded other text), beside SentencePiece's own `encode`. Prints one JSON object.

    python -m benchmarks.tokenize_bench [--corpora ../shared/corpora] [--mb 8] [--tokenizer PATH]

The public corpora (books cut into ~2 KB documents, PubMed abstracts, contracts, citation contexts, Common
Crawl pages, the UDHR in 41 languages), normalized as the filter stage stores them, each document once: no
text repeats, so the word cache earns only what real text gives it (about 8.6 MB in all; `--mb` takes that
much at most). The tokenizer is a BPE model of 8,000 pieces trained on the same text by `train_tokenizer`,
as the `tokenizer` asset trains it (language-balanced sample, lossless normalization, whitespace kept), or the
model at `--tokenizer` when that file exists (a model trained there is kept for the next run). Target: at
least 5 MB/s per core.

In memory, the documents are split into halves A and B. `cold`: a fresh encoder over B. `warm`: a fresh
encoder encodes A first (not timed), then B is timed: the steady state of a long run, on text it has not seen.
`same_text_again`: B a second time on that encoder, every word cached, an upper bound. Each is the best of
3 CPU-time trials, each trial with its own fresh encoder. `encode_corpus` starts each process's encoder cold.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sentencepiece as spm

from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from fm_pipeline.lake.parquet_io import ShardWriter
from fm_pipeline.tokenization.encode import Encoder, encode_corpus
from fm_pipeline.tokenization.train import TokenizerConfig, train_tokenizer
from tools.corpora import SHARED_CORPORA
from tools.text_chunks import chunk_text


def documents(corpora: Path) -> list[Document]:
    """Books cut into ~2,000-character chunks, domain, web and UDHR documents, each normalized as the filter
    stage stores it (what `balanced_shards`, the tokenizer's input, holds), in a fixed shuffled order."""
    docs = []
    for name, lang in (("botchan.txt", "en"), ("tinyshakespeare.txt", "en"), ("wagahaiwa_nekodearu.txt", "ja")):
        text = (corpora / "books" / name).read_text(encoding="utf-8-sig")
        chunks = chunk_text(text, 2000, unit="line")
        docs += [Document(id=f"{name}-{i}", text=normalize_text(t), source="books", lang=lang)
                 for i, t in enumerate(chunks)]
    for rel in ("domain/biomedical.jsonl", "domain/legal.jsonl", "domain/scientific.jsonl",
                "web/common_crawl_en.jsonl", "multilingual/udhr.jsonl"):
        for line in (corpora / rel).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            lang = row.get("meta", {}).get("gold_lang", "en")
            docs.append(Document(id=row["id"], text=normalize_text(row["text"]), source=row["source"], lang=lang))
    random.Random(0).shuffle(docs)  # any --mb gets the same mix of sources and languages
    return docs


def tokenizer(path: Path, docs: list[Document], vocab_size: int, work: Path) -> tuple[Path, float]:
    """(model path, training seconds; 0 when an existing model is reused), trained as the `tokenizer` asset
    trains: `train_tokenizer` on Parquet shards of `docs`."""
    if path.exists():
        return path, 0.0
    started = time.perf_counter()
    result = train_tokenizer(write_shards(docs, work / "tokenizer_train", 1), work / "tokenizer",
                             TokenizerConfig(vocab_size=vocab_size))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(Path(result.model_path).read_bytes())
    return path, time.perf_counter() - started


def take(docs: list[Document], target_mb: float) -> list[Document]:
    """The leading documents, each once, up to `target_mb` of UTF-8 text."""
    out, written = [], 0
    for doc in docs:
        if written >= target_mb * 1e6:
            break
        out.append(doc)
        written += len(doc.text.encode("utf-8"))
    return out


def write_shards(docs: list[Document], folder: Path, shards: int) -> list[Path]:
    """`docs` in about `shards` Parquet shards."""
    size = sum(len(d.text.encode("utf-8")) for d in docs)
    with ShardWriter(folder, CORPUS_SCHEMA, shard_bytes=size // shards + 1) as writer:
        for doc in docs:
            writer.write(doc.to_row())
    return writer.shards


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped workers: a per-core rate that other load on the machine
    disturbs less than wall time does."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def _best_rate(trial: Callable[[], float], texts: list[str]) -> float:
    """MB of `texts` per CPU second, best of 3 trials; `trial()` returns the CPU seconds it timed."""
    return round(_mb(texts) / min(trial() for _ in range(3)), 2)


def _cpu_time(encode: Callable[[], object]) -> float:
    started = time.process_time()
    encode()
    return time.process_time() - started


def in_memory_rates(proto: bytes, texts: list[str]) -> dict[str, float]:
    """Cold, warm and same-text-again rates of `Encoder` on the second half of `texts`, and SentencePiece's."""
    first, second = texts[: len(texts) // 2], texts[len(texts) // 2 :]

    def cold() -> float:
        return _cpu_time(lambda: Encoder(proto).encode(second))

    def warmed() -> Encoder:
        encoder = Encoder(proto)
        encoder.encode(first)
        return encoder

    def warm() -> float:
        encoder = warmed()
        return _cpu_time(lambda: encoder.encode(second))

    def same_text_again() -> float:
        encoder = warmed()
        encoder.encode(second)
        return _cpu_time(lambda: encoder.encode(second))

    sp = spm.SentencePieceProcessor(model_proto=proto)
    return {
        "mb": round(_mb(second), 3),
        "sp_encode_mb_per_cpu_s": _best_rate(lambda: _cpu_time(lambda: sp.encode(second, num_threads=1)), second),
        "encoder_cold_mb_per_cpu_s": _best_rate(cold, second),
        "encoder_warm_mb_per_cpu_s": _best_rate(warm, second),
        "encoder_same_text_again_mb_per_cpu_s": _best_rate(same_text_again, second),
    }


def benchmark(corpora: Path, target_mb: float, shards: int, vocab_size: int,
              tokenizer_path: Path | None = None) -> dict[str, Any]:
    all_docs = documents(corpora)
    docs = take(all_docs, target_mb)
    texts = [d.text for d in docs]
    mb = _mb(texts)
    with tempfile.TemporaryDirectory() as tmp:
        model_path, train_s = tokenizer(tokenizer_path or Path(tmp) / "tokenizer.model", all_docs, vocab_size,
                                        Path(tmp))
        shard_paths = write_shards(docs, Path(tmp) / "train", shards)

        proto = model_path.read_bytes()
        encoder = Encoder(proto)
        sp = encoder.sp
        book = [(corpora / "books" / "tinyshakespeare.txt").read_text(encoding="utf-8")]
        in_memory = {
            "corpus_documents": {**in_memory_rates(proto, texts), "longest_document_chars": max(map(len, texts))},
            "one_1mb_book_cold_mb_per_cpu_s": _best_rate(lambda: _cpu_time(lambda: Encoder(proto).encode(book)),
                                                         book),
            "one_1mb_book_same_ids": encoder.encode(book) == sp.encode(book, out_type=int),
        }

        runs = {}
        for processes in (1, 2):
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            stats = encode_corpus(model_path, {"train": shard_paths}, Path(tmp) / f"tokens-{processes}", processes)
            seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
            tokens = stats["train"]["tokens"]
            runs[processes] = {
                "seconds": round(seconds, 3),
                "mb_per_s": round(mb / seconds, 2),
                "tokens_per_s": round(tokens / seconds),
                "mb_per_s_per_core": round(mb / seconds / processes, 2),
                "cpu_seconds": round(cpu, 3),
                "mb_per_cpu_s": round(mb / cpu, 2),
            }
        identical = all(
            (Path(tmp) / "tokens-1" / name).read_bytes() == (Path(tmp) / "tokens-2" / name).read_bytes()
            for name in ("train.bin", "train.idx.npy", "train.json")
        )

    train = stats["train"]
    return {
        "corpus": {"mb": round(mb, 3), "documents": train["documents"], "distinct_documents": len(set(texts)),
                   "shards": len(shard_paths), "languages": len(train["tokens_by_lang"])},
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "tokenizer": {"vocab_size": sp.get_piece_size(), "model_type": "bpe",
                      "train_seconds": round(train_s, 2), "reused": train_s == 0.0,
                      "long_documents_cut": encoder.cuttable},
        "tokens": train["tokens"],
        "bytes_per_token": train["bytes_per_token"],
        "in_memory_1_thread": {
            **in_memory,
            "note": "no Parquet, no packing; distinct documents; CPU time, best of 3 fresh encoders",
        },
        "encode_corpus_1_process": runs[1],
        "encode_corpus_2_processes": {**runs[2], "note": "includes starting 2 spawn workers"},
        "outputs_byte_identical": identical,
        "target_mb_per_s_per_core": 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--mb", type=float, default=8.0, help="MB of distinct text at most (all of it: ~8.6)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--tokenizer", type=Path, help="reuse this model if it exists, else train and keep it here")
    args = parser.parse_args()
    print(json.dumps(benchmark(args.corpora, args.mb, args.shards, args.vocab_size, args.tokenizer), indent=2))


if __name__ == "__main__":
    main()
