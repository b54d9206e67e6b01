"""Tokenization throughput on real text: `encode_corpus` over Parquet shards with 1 and 2 processes, and the
bare SentencePiece encode rate on one thread. Prints one JSON object.

    python benchmarks/tokenize.py [--corpora ../shared/corpora] [--mb 20] [--tokenizer PATH]

The public corpora (books cut into ~2 KB documents, PubMed abstracts, contracts, citation contexts, Common
Crawl pages, the UDHR in 41 languages), normalized as the filter stage stores them, are repeated until about
`--mb` MB of text. The tokenizer is a BPE
model of 8,000 pieces trained on the same text with the pipeline's settings (`train.TokenizerConfig`: lossless
normalization, whitespace kept), or the model at `--tokenizer` when that file exists (a model trained there is
kept for the next run). Target: at least 5 MB/s per core.
"""

# ruff: noqa: E402 (the imports must follow the sys.path fix below)
from __future__ import annotations

import os
import sys

# This file shares its name with the standard library's `tokenize`, which `inspect` and `linecache` import;
# run as a script, its own folder heads sys.path and would shadow that module, so take the folder off first.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import io
import json
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sentencepiece as spm

from fm_pipeline.curation.documents import CORPUS_SCHEMA, Document
from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.curation.parquet_io import ShardWriter
from fm_pipeline.tokenization.encode import Encoder, encode_corpus
from fm_pipeline.tokenization.train import (
    SPECIAL_TOKEN_OPTIONS,
    TokenizerConfig,
)
from fm_pipeline_tests.text_chunks import chunk_text  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def tokenizer(path: Path, texts: list[str], vocab_size: int) -> tuple[Path, float]:
    """(model path, training seconds; 0 when an existing model is reused)."""
    if path.exists():
        return path, 0.0
    started = time.perf_counter()
    model = io.BytesIO()
    config = TokenizerConfig()  # the pipeline's normalization and whitespace settings
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(line for t in texts for line in t.splitlines() if line.strip()),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=config.character_coverage,
        normalization_rule_name=config.normalization_rule_name,
        remove_extra_whitespaces=config.remove_extra_whitespaces,
        allow_whitespace_only_pieces=config.allow_whitespace_only_pieces,
        input_sentence_size=200_000,
        shuffle_input_sentence=True,
        **SPECIAL_TOKEN_OPTIONS,
        minloglevel=2,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return path, time.perf_counter() - started


def write_shards(docs: list[Document], folder: Path, target_mb: float, shards: int) -> tuple[list[Path], float]:
    """Repeat the documents up to `target_mb` of UTF-8 text in about `shards` shards; (shards, MB written)."""
    written = 0
    with ShardWriter(folder, CORPUS_SCHEMA, shard_bytes=int(target_mb * 1e6 / shards) + 1) as writer:
        copy = 0
        while written < target_mb * 1e6:
            for doc in docs:
                writer.write({**doc.to_row(), "id": f"{doc.id}-{copy}"})
                written += len(doc.text.encode("utf-8"))
                if written >= target_mb * 1e6:
                    break
            copy += 1
    return writer.shards, written / 1e6


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped workers: a per-core rate that other load on the machine
    disturbs less than wall time does."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def _rate(encode: Callable[[], object], texts: list[str]) -> float:
    """MB of `texts` per CPU second of `encode()`, best of 3."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        encode()
        best = min(best, time.process_time() - started)
    return round(_mb(texts) / best, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=REPO_ROOT.parent / "shared" / "corpora")
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--tokenizer", type=Path, help="reuse this model if it exists, else train and keep it here")
    args = parser.parse_args()

    docs = documents(args.corpora)
    with tempfile.TemporaryDirectory() as tmp:
        model_path, train_s = tokenizer(args.tokenizer or Path(tmp) / "tokenizer.model",
                                        [d.text for d in docs], args.vocab_size)
        shards, mb = write_shards(docs, Path(tmp) / "train", args.mb, args.shards)

        encoder = Encoder(model_path.read_bytes())
        sp = encoder.sp
        sample = [d.text for d in docs]
        book = [(args.corpora / "books" / "tinyshakespeare.txt").read_text(encoding="utf-8")]
        in_memory = {
            name: {
                "mb": round(_mb(texts), 3),
                "sp_encode_whole_mb_per_cpu_s": _rate(lambda t=texts: sp.encode(t, out_type=int, num_threads=1), texts),
                "encoder_word_cache_mb_per_cpu_s": _rate(lambda t=texts: encoder.encode(t), texts),
            }
            for name, texts in (("corpus_documents", sample), ("one_1mb_book", book))
        }
        in_memory["corpus_documents"]["longest_document_chars"] = max(map(len, sample))
        in_memory["one_1mb_book"]["same_ids"] = encoder.encode(book) == sp.encode(book, out_type=int)

        runs = {}
        for processes in (1, 2):
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            stats = encode_corpus(model_path, {"train": shards}, Path(tmp) / f"tokens-{processes}", processes)
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
    print(
        json.dumps(
            {
                "corpus": {"mb": round(mb, 3), "documents": train["documents"], "shards": len(shards),
                           "languages": len(train["tokens_by_lang"])},
                "cpus": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "tokenizer": {"vocab_size": sp.get_piece_size(), "model_type": "bpe",
                              "train_seconds": round(train_s, 2), "reused": train_s == 0.0,
                              "long_documents_cut": encoder.cuttable},
                "tokens": train["tokens"],
                "bytes_per_token": train["bytes_per_token"],
                "in_memory_1_thread": {
                    **in_memory,
                    "note": "no Parquet, no packing; CPU time, best of 3",
                },
                "encode_corpus_1_process": runs[1],
                "encode_corpus_2_processes": {**runs[2], "note": "includes starting 2 spawn workers"},
                "outputs_byte_identical": identical,
                "target_mb_per_s_per_core": 5.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
