"""Tiny models for the compression tests: the tiny corpus of the training tests, and a 2-layer, 64-wide model
trained on it for a few seconds (once per session), so quantization and pruning act on learned weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from fm_pipeline.compression.tuning import TuneData
from fm_pipeline.modeling.checkpoint import save_checkpoint
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import fit_to_tokenizer
from fm_pipeline_tests.training.tiny_corpus import TinyCorpus, one_thread, tiny_corpus

__all__ = ["one_thread", "tiny_corpus", "trained", "Trained"]


@dataclass
class Trained:
    corpus: TinyCorpus
    sp: spm.SentencePieceProcessor
    checkpoint: Path
    data: TuneData

    def model(self) -> torch.nn.Module:
        from fm_pipeline.modeling.checkpoint import load_checkpoint

        return load_checkpoint(self.checkpoint)[0].eval()


@pytest.fixture(scope="session")
def trained(tiny_corpus: TinyCorpus, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from fm_pipeline.compression.tuning import tune

    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    config = fit_to_tokenizer(ModelConfig(n_layer=2, n_head=4, d_model=64, block_size=32), sp)
    torch.manual_seed(0)
    model = build_model(config)
    data = TuneData.open(tiny_corpus.tokens, sp, config, batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tune(model, data, steps=60, lr=3e-3)
    torch.set_num_threads(threads)
    folder = save_checkpoint(tmp_path_factory.mktemp("teacher") / "ckpt", model, config, None)
    return Trained(tiny_corpus, sp, folder, data)
