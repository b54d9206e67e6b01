"""The data and the loop behind every short fine-tune of compression (recovery after pruning or
factorization, quantization-aware training, distillation): `training.finetune` on windows of a token file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.lake.layout import TRAIN
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.objectives import Objective
from fm_pipeline.tokenization.packed import PackedTokens
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.finetune import FinetuneConfig, FinetuneResult, LossFn, finetune, objective_loss


@dataclass
class TuneData:
    """Where fine-tuning batches come from: a packed token split and the model's objective."""

    tokens: PackedTokens
    objective: Objective
    block_size: int
    batch_size: int = 16
    seed: int = 0

    @classmethod
    def open(cls, tokens: Path | PackedTokens, tokenizer: Path | spm.SentencePieceProcessor, config: ModelConfig,
             batch_size: int = 16, seed: int = 0, split: str = TRAIN) -> TuneData:
        sp = tokenizer if isinstance(tokenizer, spm.SentencePieceProcessor) else spm.SentencePieceProcessor(
            model_file=str(tokenizer))
        packed = tokens if isinstance(tokens, PackedTokens) else PackedTokens.open(Path(tokens), split)
        return cls(packed, Objective.for_model(config, sp), config.block_size, batch_size, seed)

    @classmethod
    def from_texts(cls, texts: Iterable[str], sp: spm.SentencePieceProcessor, config: ModelConfig,
                   batch_size: int = 16, seed: int = 0, max_tokens: int | None = None) -> TuneData:
        """Batches from a few documents held in memory (a domain's training text for calibration), encoded as a
        token file frames them (BOS ... EOS), in order until `max_tokens` are reached."""
        documents, total = [], 0
        for text in texts:
            if max_tokens is not None and total >= max_tokens:
                break
            documents.append(sp.encode(text, add_bos=True, add_eos=True))
            total += len(documents[-1])
        packed = PackedTokens.from_documents(documents, sp.get_piece_size())
        return cls(packed, Objective.for_model(config, sp), config.block_size, batch_size, seed)

    def sampler(self) -> WindowSampler:
        """A fresh sampler: every fine-tune sees the same batches, so techniques are compared on equal data."""
        length = self.objective.window_length(self.block_size)
        return WindowSampler(self.tokens, length, self.batch_size, self.seed)

    def batches(self, n: int) -> list[dict[str, torch.Tensor]]:
        """`n` batches of model inputs (for importance scores and calibration)."""
        sampler = self.sampler()
        return [self.objective.make_batch(sampler.next_batch(), sampler.generator) for _ in range(n)]


def tune(
    model: nn.Module, data: TuneData, steps: int, lr: float, *, loss_fn: LossFn = objective_loss,
    before_step: Callable[[int], None] | None = None,
) -> FinetuneResult:
    """`steps` steps of AdamW (warmup a tenth of them, cosine to lr/10); the model is left in eval mode."""
    config = FinetuneConfig(steps=steps, lr=lr, warmup_steps=max(1, steps // 10), log_every=max(1, steps // 10))
    return finetune(model, data.sampler(), data.objective, config, loss_fn=loss_fn, before_step=before_step)
