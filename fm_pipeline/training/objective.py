"""The pretraining objective of an architecture, bound to the special ids of the tokenizer in use."""

from __future__ import annotations

from dataclasses import dataclass, replace

import sentencepiece as spm
import torch

from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.objectives import make_batch, span_counts, window_length

MASK_PIECES = ("<MASK>", "<mask>", "[MASK]")


def _piece_id(sp: spm.SentencePieceProcessor, piece: str) -> int | None:
    """The id of `piece`, or None when the vocabulary lacks it (SentencePiece would answer the unknown id)."""
    i = sp.piece_to_id(piece)
    return i if sp.id_to_piece(i) == piece else None


@dataclass(frozen=True)
class Objective:
    """Turns (B, window) token windows into the keyword arguments of the model's forward."""

    architecture: str
    vocab_size: int
    pad_id: int
    mask_id: int
    special_ids: tuple[int, ...]
    sentinel_ids: tuple[int, ...]

    @classmethod
    def for_model(cls, config: ModelConfig, sp: spm.SentencePieceProcessor) -> Objective:
        """Specials (control pieces, unknown, mask, sentinels) are never masked nor drawn as replacements.

        Span corruption needs one sentinel per span: pieces `<extra_id_N>` when the tokenizer has them, else
        the top ids of the vocabulary, counting down, which is where T5 keeps its sentinels.
        """
        spans = span_counts(config.block_size)[1]
        sentinels = [_piece_id(sp, f"<extra_id_{i}>") for i in range(spans)]
        if None in sentinels:
            sentinels = list(range(config.vocab_size - 1, config.vocab_size - 1 - spans, -1))
        specials = tuple(i for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i))
        return cls(config.architecture, config.vocab_size, config.pad_id, config.mask_id, specials, tuple(sentinels))

    def window_length(self, block_size: int) -> int:
        return window_length(self.architecture, block_size)

    def make_batch(self, windows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return make_batch(
            self.architecture, windows, vocab_size=self.vocab_size, pad_id=self.pad_id, mask_id=self.mask_id,
            special_ids=self.special_ids, sentinel_ids=self.sentinel_ids, generator=generator,
        )


def fit_to_tokenizer(config: ModelConfig, sp: spm.SentencePieceProcessor) -> ModelConfig:
    """The model config with the tokenizer's vocabulary size, padding id and mask id, so the embedding
    table, the ignored targets and masked-LM inputs all match the ids in the token files."""
    mask_id = next((i for piece in MASK_PIECES if (i := _piece_id(sp, piece)) is not None), None)
    if mask_id is None and config.architecture == "encoder_only":
        raise ValueError(f"a masked LM needs a mask piece ({' or '.join(MASK_PIECES)}) in the tokenizer")
    return replace(
        config,
        vocab_size=sp.get_piece_size(),
        pad_id=sp.pad_id() if sp.pad_id() >= 0 else config.pad_id,
        mask_id=config.mask_id if mask_id is None else mask_id,
    )
