"""A tiny multilingual corpus (the sample books in en, de, fr, es), a SentencePiece model trained on it and
its packed token files: what `tokenized_corpus` holds, small enough for tests that train models."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm
import torch

import fm_pipeline
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline.training.config import TrainConfig

BOOKS = Path(fm_pipeline.__file__).parent / "sample_data" / "raw" / "books"
LANGS = ("en", "de", "fr", "es")


@dataclass(frozen=True)
class TinyCorpus:
    root: Path
    tokenizer: Path
    tokens: Path
    val_docs: Path
    """Parquet (id, text, lang), like `balanced_shards/val`."""


def paragraphs(lang: str) -> list[str]:
    """Every paragraph of the sample books in `lang`: one test document each."""
    out = []
    for path in sorted((BOOKS / lang).iterdir()):
        out += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40]
    return out


def _write_split(folder: Path, rows: list[dict[str, str]]) -> Path:
    folder.mkdir(parents=True)
    path = folder / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def train_tokenizer(texts: list[str], prefix: Path, vocab_size: int = 400) -> Path:
    """BPE with the pipeline's special ids (pad 0, unk 1, bos 2, eos 3, control <MASK> 4)."""
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(prefix), model_type="bpe", vocab_size=vocab_size,
        character_coverage=1.0, pad_id=0, pad_piece="<PAD>", unk_id=1, unk_piece="<UNK>", bos_id=2,
        bos_piece="<BOS>", eos_id=3, eos_piece="<EOS>", control_symbols=["<MASK>"], num_threads=1, minloglevel=2,
    )
    return prefix.with_suffix(".model")


def build_tiny_corpus(root: Path) -> TinyCorpus:
    """Every fifth paragraph of each language goes to val, the rest to train."""
    train_rows, val_rows = [], []
    for lang in LANGS:
        for i, text in enumerate(paragraphs(lang)):
            (val_rows if i % 5 == 4 else train_rows).append({"id": f"{lang}-{i}", "text": text, "lang": lang})
    train_shard = _write_split(root / "shards" / "train", train_rows)
    val_shard = _write_split(root / "shards" / "val", val_rows)
    tokenizer = train_tokenizer([r["text"] for r in train_rows], root / "tokenizer")
    encode_corpus(tokenizer, {"train": [train_shard], "val": [val_shard]}, root / "tokens", processes=1)
    return TinyCorpus(root, tokenizer, root / "tokens", val_shard.parent)


def tiny_config(corpus: TinyCorpus, out_dir: Path, architecture: str = "decoder_only", **overrides) -> TrainConfig:
    """A 2-layer, 32-wide model on 32-token windows: a step takes milliseconds on a CPU."""
    config = TrainConfig(
        model=ModelConfig(architecture=architecture, n_layer=2, n_head=2, d_model=32, block_size=32),
        token_dir=str(corpus.tokens), tokenizer_path=str(corpus.tokenizer), out_dir=str(out_dir),
        steps=20, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_every=10, eval_batches=2,
        checkpoint_every=10, log_every=5, device="cpu", seed=0,
    )
    return replace(config, **overrides)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> TinyCorpus:
    return build_tiny_corpus(tmp_path_factory.mktemp("tiny_corpus"))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two spinning threads
    make every step several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
