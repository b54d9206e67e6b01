"""A tiny pretrained checkpoint (trained on the tiny multilingual corpus) and the sample biomedical corpus as
Parquet train/val splits, shared by the adaptation tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm
import torch

import fm_pipeline
from fm_pipeline.modeling.checkpoint import save_checkpoint
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import Objective, fit_to_tokenizer
from fm_pipeline.tokenization.packed import PackedTokens
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.finetune import FinetuneConfig, finetune
from fm_pipeline_tests.training.tiny_corpus import TinyCorpus, one_thread, tiny_corpus

__all__ = ["one_thread", "tiny_corpus"]

DOMAIN_CORPUS = Path(fm_pipeline.__file__).parent / "sample_data" / "domain"
TINY_SHAPE = {"n_layer": 2, "n_head": 2, "d_model": 32, "block_size": 32}


@dataclass(frozen=True)
class DomainData:
    checkpoint: Path
    tokenizer: Path
    domain_train: Path
    domain_val: Path
    general_train: Path
    general_val: Path
    probe_docs: dict[str, list[str]]


def domain_texts(domain: str) -> list[str]:
    path = DOMAIN_CORPUS / domain / f"{domain}-000.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_parquet(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True)
    rows = [{"id": f"doc-{i}", "text": text, "lang": "en"} for i, text in enumerate(texts)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    return folder


def tiny_model(corpus: TinyCorpus, architecture: str = "decoder_only", **shape) -> torch.nn.Module:
    sp = spm.SentencePieceProcessor(model_file=str(corpus.tokenizer))
    config = fit_to_tokenizer(ModelConfig(architecture=architecture, **{**TINY_SHAPE, **shape}), sp)
    torch.manual_seed(0)
    return build_model(config)


@pytest.fixture(scope="session")
def domain_data(tiny_corpus: TinyCorpus, tmp_path_factory: pytest.TempPathFactory) -> DomainData:
    """A 2-layer model trained 60 steps on the tiny corpus; biomedical documents 0, 5, 10, 15 as val."""
    root = tmp_path_factory.mktemp("domain_data")
    model = tiny_model(tiny_corpus)
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    sampler = WindowSampler(PackedTokens.open(tiny_corpus.tokens, "train"), 33, 8, seed=0)
    finetune(model, sampler, Objective.for_model(model.config, sp),
             FinetuneConfig(steps=60, lr=3e-3, warmup_steps=5, log_every=60))
    save_checkpoint(root / "pretrained", model, model.config, None)
    texts = domain_texts("biomedical")
    return DomainData(
        checkpoint=root / "pretrained", tokenizer=tiny_corpus.tokenizer,
        domain_train=write_parquet(root / "train", [t for i, t in enumerate(texts) if i % 5]),
        domain_val=write_parquet(root / "val", [t for i, t in enumerate(texts) if i % 5 == 0]),
        general_train=tiny_corpus.root / "shards" / "train", general_val=tiny_corpus.val_docs,
        probe_docs={d: domain_texts(d)[:8] for d in ("biomedical", "legal", "financial", "scientific")},
    )
