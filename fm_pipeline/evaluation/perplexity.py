"""Perplexity and bits per UTF-8 byte, overall and per language, for the three pretraining objectives.

Loss per token depends on the tokenizer; bits per byte does not, so it compares models with different
vocabularies: bpb = total nats / ln 2 / total UTF-8 bytes of the text the scored tokens cover.

For decoder_only every token but a document's first is scored, and bpb is exact. The masked objectives
(encoder_only, encoder_decoder) score only the tokens they hide; their per-token loss is spread over all of
the window's tokens, a pseudo-bpb to compare runs of one architecture, not architectures with each other.
Masks come from a fixed seed, so every evaluation of the same data scores the same positions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.modeling.models import IGNORE_INDEX
from fm_pipeline.modeling.objectives import Objective
from fm_pipeline.tokenization.packed import PackedTokens

LN2 = math.log(2.0)
EVAL_SEED = 0


@dataclass
class LossTally:
    """Sums that make the metrics: nats over the predicted tokens, and the tokens and bytes they stand for."""

    nats: float = 0.0
    predicted: int = 0
    tokens: float = 0.0
    bytes: float = 0.0

    def add(self, nats: float, predicted: int, tokens: float, n_bytes: float) -> None:
        self.nats += nats
        self.predicted += predicted
        self.tokens += tokens
        self.bytes += n_bytes

    def metrics(self) -> dict[str, float]:
        """val_loss (nats per predicted token), val_ppl = e^loss, and val_bpb when bytes are known."""
        loss = self.nats / self.predicted if self.predicted else float("nan")
        out = {"val_loss": loss, "val_ppl": math.exp(loss) if loss < 700 else float("inf")}
        if self.bytes:
            out["val_bpb"] = loss * self.tokens / self.bytes / LN2
        return out


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """`{"val_loss": .., "by_lang": {"en": {"val_loss": ..}}}` -> `{"val_loss": .., "val_loss/en": ..}`."""
    flat = {k: v for k, v in metrics.items() if k != "by_lang"}
    for lang, per_lang in metrics.get("by_lang", {}).items():
        flat.update({f"{k}/{lang}": v for k, v in per_lang.items()})
    return flat


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None and dtype != torch.float32 else nullcontext()


@torch.no_grad()
def score_windows(
    model: nn.Module, objective: Objective, windows: torch.Tensor, generator: torch.Generator,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[float, int]:
    """(summed nats, predicted tokens) of a (B, L) batch of windows under the model's objective."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in objective.make_batch(windows, generator).items()}
    targets = batch.pop("targets")
    with _autocast(device, autocast_dtype):
        logits, _ = model(**batch)
    targets = targets.masked_fill(targets == objective.pad_id, IGNORE_INDEX)
    nats = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    return nats.item(), int((targets != IGNORE_INDEX).sum())


def document_windows(ids: torch.Tensor, architecture: str, block_size: int) -> list[torch.Tensor]:
    """Consecutive windows covering a document. For next-token prediction they overlap by one token, so every
    token after the first is predicted exactly once; for the masked objectives they are split evenly, so no
    window is too short to hide a span in."""
    if architecture == "decoder_only":
        return [ids[i : i + block_size + 1] for i in range(0, max(len(ids) - 1, 1), block_size)]
    return list(torch.tensor_split(ids, math.ceil(len(ids) / block_size)))


def evaluate_texts(
    model: nn.Module, sp: spm.SentencePieceProcessor, docs: Iterable[tuple[str, str]],
    block_size: int | None = None, max_docs: int | None = None, max_docs_per_lang: int | None = None,
    autocast_dtype: torch.dtype | None = None, batch_size: int = 1,
) -> dict[str, Any]:
    """Loss, perplexity and bits per byte of `(lang, text)` documents, overall and in `by_lang`.

    Each document is tokenized with BOS/EOS as in the token files, scored in `block_size` windows, and
    divided by its own UTF-8 byte count, so per-language numbers are exact. `max_docs_per_lang` bounds the
    cost without losing the languages that come last in the input. With `batch_size` > 1 a decoder_only
    model scores up to that many windows (of several documents) per forward pass, padded at the end, which
    causal attention never looks at: the same numbers up to float rounding, several times faster on CPUs. The
    default of one window a time suits models whose numbers depend on the batch (dynamic quantization scales
    activations per batch) and the masked objectives (their windows have no padding mask).
    """
    config = model.config
    block_size = block_size or config.block_size
    objective = Objective.for_model(config, sp)
    generator = torch.Generator().manual_seed(EVAL_SEED)
    total, by_lang, seen = LossTally(), defaultdict(LossTally), Counter()
    batched = batch_size > 1 and config.architecture == "decoder_only"
    pending: list[tuple[str, int, list[torch.Tensor]]] = []  # lang, bytes, windows of documents not scored yet

    def tally(docs_windows: list[tuple[str, int, list[torch.Tensor]]]) -> None:
        scores = iter(_score_padded(model, objective, [w for *_, ws in docs_windows for w in ws], batch_size,
                                    autocast_dtype))
        for lang, n_bytes, windows in docs_windows:
            nats, predicted = map(sum, zip(*(next(scores) for _ in windows), strict=True))
            total.add(nats, predicted, predicted, n_bytes)
            by_lang[lang].add(nats, predicted, predicted, n_bytes)

    was_training = model.training
    model.eval()
    for lang, text in islice(docs, max_docs):
        n_bytes = len(text.encode("utf-8"))
        if not n_bytes or (max_docs_per_lang is not None and seen[lang] >= max_docs_per_lang):
            continue
        seen[lang] += 1
        ids = torch.tensor(sp.encode(text, add_bos=True, add_eos=True), dtype=torch.long)
        windows = document_windows(ids, config.architecture, block_size)
        if batched:
            pending.append((lang, n_bytes, windows))
            if sum(len(ws) for *_, ws in pending) >= batch_size:
                tally(pending)
                pending = []
            continue
        nats, predicted = 0.0, 0
        for window in windows:
            window_nats, window_predicted = score_windows(model, objective, window[None], generator, autocast_dtype)
            nats, predicted = nats + window_nats, predicted + window_predicted
        tokens = predicted if config.architecture == "decoder_only" else len(ids)
        total.add(nats, predicted, tokens, n_bytes)
        by_lang[lang].add(nats, predicted, tokens, n_bytes)
    if pending:
        tally(pending)
    model.train(was_training)
    return {**total.metrics(), "by_lang": {lang: t.metrics() for lang, t in sorted(by_lang.items())}}


@torch.no_grad()
def _score_padded(model: nn.Module, objective: Objective, windows: list[torch.Tensor], batch_size: int,
                  autocast_dtype: torch.dtype | None) -> Iterator[tuple[float, int]]:
    """(nats, predicted tokens) of each next-token window, `batch_size` windows per forward pass, each padded
    at its end with `pad_id` (a padded target is not scored; a padded input comes after every scored one)."""
    device = next(model.parameters()).device
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        batch = torch.full((len(chunk), max(len(w) for w in chunk)), objective.pad_id, dtype=torch.long)
        for row, window in enumerate(chunk):
            batch[row, : len(window)] = window
        idx, targets = batch[:, :-1].to(device), batch[:, 1:].to(device)
        with _autocast(device, autocast_dtype):
            logits, _ = model(idx=idx)
        targets = targets.masked_fill(targets == objective.pad_id, IGNORE_INDEX)
        nats = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
        predicted = (targets != IGNORE_INDEX).sum(dim=1)
        yield from zip(nats.sum(dim=1).tolist(), predicted.tolist(), strict=True)


def evaluate_packed(
    model: nn.Module, packed: PackedTokens, objective: Objective, block_size: int | None = None,
    batch_size: int = 16, max_batches: int | None = None, autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Loss and perplexity on consecutive windows from the start of a token file (the same windows every
    time, so numbers are comparable across steps). bpb uses the file's bytes per token (header
    `text_bytes`), exact when the windows cover the whole file."""
    block_size = block_size or model.config.block_size
    length = objective.window_length(block_size)
    n = packed.num_tokens
    starts = range(0, n - length + 1, block_size)
    if max_batches is not None:
        starts = starts[: max_batches * batch_size]
    bytes_per_token = packed.header.get("text_bytes", 0) / n if n else 0.0
    generator = torch.Generator().manual_seed(EVAL_SEED)
    tally = LossTally()
    was_training = model.training
    model.eval()
    for i in range(0, len(starts), batch_size):
        windows = np.stack([packed.tokens[s : s + length] for s in starts[i : i + batch_size]]).astype(np.int64)
        nats, predicted = score_windows(model, objective, torch.from_numpy(windows), generator, autocast_dtype)
        tokens = predicted if objective.architecture == "decoder_only" else windows.size
        tally.add(nats, predicted, tokens, tokens * bytes_per_token)
    model.train(was_training)
    return tally.metrics()
