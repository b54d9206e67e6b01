"""Multilingual alignment: pull the mean-pooled states of parallel sentences together with a contrastive loss.

InfoNCE (van den Oord et al., 2018; as in LaBSE and mSimCSE) over a batch of B pairs: the cosine similarity
matrix of the two sides, divided by a temperature, is a B-way classification whose right answer is the
diagonal, in both directions. Retrieval accuracy measures the same thing without training: the share of
sentences whose nearest neighbour (cosine) on the other side is their own translation.

Parallel text in the pipeline comes from documents that carry `meta.translation_of` (the sample's reference
articles are exact translations, paragraph for paragraph); the UDHR (41 languages, article-aligned) serves the
benchmarks and tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.adaptation.probe import hidden_states, mean_pooled
from fm_pipeline.lake.parquet_io import iter_rows, list_shards

REPEAT_MARK = "#rep"
"""balanced_shards writes an upsampled document again with this mark and a number after its id."""


@dataclass(frozen=True)
class ParallelPair:
    source: str
    target: str


def embed(model: nn.Module, sp: spm.SentencePieceProcessor, texts: Sequence[str]) -> torch.Tensor:
    """(N, d) mean-pooled final hidden states of each text's first `block_size` tokens (BOS included), one
    forward pass, with gradients when the caller wants them. Causal attention never looks at the padding that
    follows a shorter text, and the mean covers real tokens only."""
    device = next(model.parameters()).device
    ids = [sp.encode(t, add_bos=True)[: model.config.block_size] for t in texts]
    lengths = torch.tensor([len(i) for i in ids])
    batch = torch.full((len(ids), int(lengths.max())), model.config.pad_id, dtype=torch.long)
    for row, seq in enumerate(ids):
        batch[row, : len(seq)] = torch.tensor(seq)
    if model.config.architecture != "decoder_only":
        return torch.stack([mean_pooled(hidden_states(model, batch[r : r + 1, : lengths[r]].to(device)),
                                        lengths[r : r + 1].to(device))[0] for r in range(len(ids))])
    return mean_pooled(hidden_states(model, batch.to(device)), lengths.to(device))


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE: row i of `a` and row i of `b` are the positive pair, every other row a negative."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    labels = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def retrieval_accuracy(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy of finding row i of `b` as the cosine-nearest neighbour of row i of `a` (`forward`), and
    the other way round (`backward`); `mean` of the two. A tie goes to the lowest index."""
    sim = F.normalize(a.double(), dim=-1) @ F.normalize(b.double(), dim=-1).T
    target = torch.arange(len(a), device=sim.device)
    forward = float((sim.argmax(dim=1) == target).double().mean())
    backward = float((sim.argmax(dim=0) == target).double().mean())
    return {"forward": forward, "backward": backward, "mean": (forward + backward) / 2}


@torch.no_grad()
def pair_retrieval(model: nn.Module, sp: spm.SentencePieceProcessor, pairs: Sequence[ParallelPair],
                   batch_size: int = 32) -> dict[str, float]:
    """`retrieval_accuracy` of the model's pooled states over every pair (each side against all the others)."""
    was_training = model.training
    model.eval()
    a = torch.cat([embed(model, sp, [p.source for p in pairs[i : i + batch_size]]).float()
                   for i in range(0, len(pairs), batch_size)])
    b = torch.cat([embed(model, sp, [p.target for p in pairs[i : i + batch_size]]).float()
                   for i in range(0, len(pairs), batch_size)])
    model.train(was_training)
    return retrieval_accuracy(a, b)


def paragraph_pairs(source: str, target: str) -> list[ParallelPair]:
    """The paragraphs of two translated documents, paired in order when both have as many; else the documents
    themselves as one pair (a translation may merge paragraphs, and pairing them off by one would be wrong)."""
    src = [p.strip() for p in source.split("\n\n") if p.strip()]
    tgt = [p.strip() for p in target.split("\n\n") if p.strip()]
    if len(src) == len(tgt):
        return [ParallelPair(s, t) for s, t in zip(src, tgt, strict=True)]
    return [ParallelPair(source.strip(), target.strip())]


def translation_pairs(rows: Iterable[dict], lang: str, pivot: str = "en") -> list[ParallelPair]:
    """Parallel paragraphs of `lang` (source) and `pivot` (target): every `lang` row whose `meta` names the
    pivot document it translates (`translation_of`), when that document is among the rows. Repeats written by
    balancing count once; pairs come in the order of the translated documents' ids."""
    by_id: dict[str, dict] = {}
    for row in rows:
        by_id.setdefault(row["id"].split(REPEAT_MARK)[0], row)
    pairs = []
    for doc_id in sorted(by_id):
        row = by_id[doc_id]
        meta = row.get("meta") or {}
        meta = json.loads(meta) if isinstance(meta, str) else meta
        original = by_id.get(meta.get("translation_of") or "")
        if row["lang"] == lang and original is not None and original["lang"] == pivot:
            pairs += paragraph_pairs(row["text"], original["text"])
    return pairs


def lake_translation_pairs(folders: Sequence[Path], lang: str, pivot: str = "en") -> list[ParallelPair]:
    """`translation_pairs` over the Parquet shards of `folders` (balanced_shards/train and val)."""
    shards = [s for folder in folders for s in list_shards(Path(folder))]
    return translation_pairs(iter_rows(shards, ["id", "text", "lang", "meta"]), lang, pivot)


class AlignmentLoss:
    """A `loss_fn` for `training.finetune`: the model's own objective on the sampler's batch plus `weight` ×
    InfoNCE on `batch_pairs` parallel pairs drawn (without replacement, from a seeded generator) each step."""

    def __init__(self, sp: spm.SentencePieceProcessor, pairs: Sequence[ParallelPair], weight: float,
                 temperature: float, batch_pairs: int, seed: int) -> None:
        if len(pairs) < 2:
            raise ValueError(f"contrastive alignment needs at least 2 parallel pairs, not {len(pairs)}")
        self.sp, self.pairs, self.weight, self.temperature = sp, list(pairs), weight, temperature
        self.batch_pairs = min(batch_pairs, len(self.pairs))
        self.generator = torch.Generator().manual_seed(seed)
        self.history: list[float] = []

    def contrastive(self, model: nn.Module) -> torch.Tensor:
        picks = torch.randperm(len(self.pairs), generator=self.generator)[: self.batch_pairs].tolist()
        chosen = [self.pairs[i] for i in picks]
        loss = info_nce(embed(model, self.sp, [p.source for p in chosen]),
                        embed(model, self.sp, [p.target for p in chosen]), self.temperature)
        self.history.append(float(loss.detach()))
        return loss

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        _, lm_loss = model(**batch)
        return lm_loss + self.weight * self.contrastive(model)
