"""The sample corpus as train/val shards, curated just enough for the tokenizer (normalized, language-labelled),
and a small tokenizer trained on it once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from fm_pipeline.curation.ingest import ingest_source
from fm_pipeline.curation.langid.backends import get_detector
from fm_pipeline.curation.langid.segments import identify
from fm_pipeline.curation.mixing.split import split_of
from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.parquet_io import ShardWriter, iter_rows, list_shards
from fm_pipeline.tokenization.train import TokenizerConfig, TrainResult, train_tokenizer

RAW = Path(__file__).resolve().parents[2] / "fm_pipeline" / "sample_data" / "raw"
SMALL_VOCAB = 4000  # the sample keeps ~2,700 characters at 99.95% coverage, so 4,000 leaves room for merges


@pytest.fixture(scope="session")
def sample_splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`train/` and `val/` shard folders from the raw sample corpus: ingested, normalized, labelled by
    fastText, split 80/20 by id hash (a larger val share than the pipeline's, so val holds many languages)."""
    root = tmp_path_factory.mktemp("sample_splits")
    detector = get_detector()
    folders = {split: root / split for split in ("train", "val")}
    writers = {split: ShardWriter(folder, CORPUS_SCHEMA) for split, folder in folders.items()}
    for source in sorted(p.name for p in RAW.iterdir() if p.is_dir()):
        ingest_source(source, RAW / source, root / "raw" / source)
        for row in iter_rows(list_shards(root / "raw" / source)):
            text = normalize_text(row["text"])
            if not text:
                continue
            result = identify(text, detector)
            writers[split_of(row["id"], 0.2)].write({**row, "text": text, "lang": result.lang,
                                                     "lang_score": result.score})
    for writer in writers.values():
        writer.close()
    return folders


@pytest.fixture(scope="session")
def trained(sample_splits: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A 4,000-piece tokenizer with the default settings, trained on the sample's train split."""
    out = tmp_path_factory.mktemp("tokenizer")
    return train_tokenizer(list_shards(sample_splits["train"]), out, TokenizerConfig(vocab_size=SMALL_VOCAB))


@pytest.fixture(scope="session")
def trained_lossy_settings(sample_splits: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The same with the lossy `nmt_nfkc_cf` normalization."""
    out = tmp_path_factory.mktemp("tokenizer_seed")
    config = TokenizerConfig.lossy_settings(vocab_size=SMALL_VOCAB)
    return train_tokenizer(list_shards(sample_splits["train"]), out, config)


@pytest.fixture(scope="session")
def sample_texts(sample_splits: dict[str, Path]) -> dict[str, list[str]]:
    """The documents of each split, as text."""
    return {split: [row["text"] for row in iter_rows(list_shards(folder), columns=["text"])]
            for split, folder in sample_splits.items()}
