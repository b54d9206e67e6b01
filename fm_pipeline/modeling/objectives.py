"""Pretraining objectives: how a window of token ids becomes model inputs and targets for each architecture,
so one training loop (`model(**make_batch(...))`) serves all three, and `Objective`, which binds them to the
special ids of the tokenizer in use.

- decoder_only: next-token prediction, targets = inputs shifted by one.
- encoder_only: BERT's masked LM, 15% of tokens predicted, of which 80% masked, 10% random, 10% kept.
- encoder_decoder: T5's span corruption, noise spans replaced by sentinels in the encoder input and spelt out
  after their sentinels in the decoder target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import sentencepiece as spm
import torch
import torch.nn.functional as F

from fm_pipeline.modeling.config import ARCHITECTURES, ModelConfig
from fm_pipeline.modeling.models import IGNORE_INDEX


def mask_tokens(
    ids: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    generator: torch.Generator | None = None,
    mask_prob: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of (B, T) ids -> (inputs, labels). Each non-special token is chosen with `mask_prob`; a
    chosen token becomes `mask_id` (80%), a random non-special token (10%) or stays (10%), so the model cannot
    rely on seeing [MASK] where it must predict. Labels hold the original id where chosen and -100 elsewhere.
    Special ids (and `mask_id` itself) are never chosen nor drawn as random replacements."""
    special = torch.tensor(sorted({*special_ids, mask_id}), dtype=ids.dtype, device=ids.device)
    chosen = (torch.rand(ids.shape, generator=generator, device=ids.device) < mask_prob) & ~torch.isin(ids, special)
    labels = ids.masked_fill(~chosen, IGNORE_INDEX)
    action = torch.rand(ids.shape, generator=generator, device=ids.device)
    ordinary = torch.arange(vocab_size, dtype=ids.dtype, device=ids.device)
    ordinary = ordinary[~torch.isin(ordinary, special)]
    random_ids = ordinary[torch.randint(len(ordinary), ids.shape, generator=generator, device=ids.device)]
    inputs = torch.where(chosen & (action < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    return inputs, labels


def _random_segmentation(rows: int, total: int, parts: int, generator: torch.Generator | None) -> torch.Tensor:
    """(rows, parts) lengths of non-empty runs summing to `total`, every split equally likely: the runs end at
    `parts - 1` distinct cut points drawn from 1..total-1."""
    cuts = torch.rand(rows, total - 1, generator=generator).argsort(dim=1)[:, : parts - 1] + 1
    ends = torch.cat((cuts.sort(dim=1).values, torch.full((rows, 1), total)), dim=1)
    return ends.diff(dim=1, prepend=torch.zeros(rows, 1, dtype=ends.dtype))


def span_counts(length: int, noise_density: float = 0.15, mean_span: float = 3.0) -> tuple[int, int]:
    """(noise tokens, noise spans) for a window of `length`: fixed numbers, as in T5, so every corrupted window
    of a batch has the same input (length - noise + spans) and target (noise + spans) lengths."""
    noise = min(max(round(length * noise_density), 1), length - 1)
    spans = max(round(noise / mean_span), 1)
    return noise, min(spans, noise, length - noise)


def span_corrupt(
    ids: torch.Tensor,
    sentinel_ids: Sequence[int],
    noise_density: float = 0.15,
    mean_span: float = 3.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """T5 span corruption of (B, L) ids -> (inputs, targets).

    About `noise_density` of each row, in spans of mean length `mean_span` at random places (the row starts
    with kept tokens), is replaced in `inputs` by one sentinel per span (`sentinel_ids[0]`, `[1]`, ...);
    `targets` lists each sentinel followed by the tokens it hides. Putting every span back in place of its
    sentinel gives the original row."""
    batch, length = ids.shape
    noise, spans = span_counts(length, noise_density, mean_span)
    if len(sentinel_ids) < spans:
        raise ValueError(f"{spans} noise spans per row need as many sentinel ids, got {len(sentinel_ids)}")
    sentinels = torch.tensor(sentinel_ids[:spans], dtype=ids.dtype)
    # Runs alternate kept, noise, kept, noise...; a position is noise when it falls in an odd-numbered run.
    runs = torch.stack((_random_segmentation(batch, length - noise, spans, generator),
                        _random_segmentation(batch, noise, spans, generator)), dim=2).view(batch, 2 * spans)
    run_starts = torch.zeros(batch, length, dtype=torch.long).scatter_(1, runs.cumsum(dim=1)[:, :-1], 1)
    is_noise = run_starts.cumsum(dim=1) % 2 == 1
    starts = is_noise & ~F.pad(is_noise, (1, -1))
    sentinel = sentinels[(starts.cumsum(dim=1) - 1).clamp(min=0)].to(ids.device)
    is_noise, starts = is_noise.to(ids.device), starts.to(ids.device)
    inputs = torch.where(starts, sentinel, ids)[~is_noise | starts].view(batch, length - noise + spans)
    # A span start emits its sentinel, then its token; other noise positions emit their token only.
    targets = torch.stack((sentinel, ids), dim=2)[torch.stack((starts, is_noise), dim=2)].view(batch, noise + spans)
    return inputs, targets


def window_length(architecture: str, block_size: int) -> int:
    """Tokens per training window: one more than the context for decoder_only, whose targets are the inputs
    shifted by one; the context itself for the others (span corruption only shortens it)."""
    return block_size + 1 if architecture == "decoder_only" else block_size


def make_batch(
    architecture: str,
    windows: torch.Tensor,
    *,
    vocab_size: int,
    pad_id: int = 0,
    mask_id: int = 4,
    special_ids: Iterable[int] = (),
    sentinel_ids: Sequence[int] = (),
    generator: torch.Generator | None = None,
    mask_prob: float = 0.15,
    noise_density: float = 0.15,
    mean_span: float = 3.0,
) -> dict[str, torch.Tensor]:
    """(B, window_length) token windows -> keyword arguments of the architecture's `forward`: `idx` and
    `targets`, plus `decoder_idx` (targets shifted right behind `pad_id` as start token, as T5) for
    encoder_decoder. Windows come from a packed stream, so no padding mask is needed."""
    if architecture == "decoder_only":
        return {"idx": windows[:, :-1], "targets": windows[:, 1:]}
    if architecture == "encoder_only":
        specials = {*special_ids, pad_id, *sentinel_ids}
        idx, targets = mask_tokens(windows, mask_id, vocab_size, specials, generator, mask_prob)
        return {"idx": idx, "targets": targets}
    if architecture == "encoder_decoder":
        idx, targets = span_corrupt(windows, sentinel_ids, noise_density, mean_span, generator)
        decoder_idx = torch.cat((targets.new_full((targets.shape[0], 1), pad_id), targets[:, :-1]), dim=1)
        return {"idx": idx, "decoder_idx": decoder_idx, "targets": targets}
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")


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
