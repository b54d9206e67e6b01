"""Task heads on a pretrained language model: one linear head per task over the final hidden states, a shared
backbone (so several heads make a multi-task model), and the encoding of examples into padded id batches.

Hidden states are the decoder's for decoder_only (causal: a token sees its left context; a classifier mean-pools
every real position) and the encoder's, with padding masked, for encoder_only and encoder_decoder. Tagging labels
the first piece of each word; the other pieces are ignored (-100) in the loss and the word takes the first
piece's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.adaptation.probe import hidden_states, mean_pooled
from fm_pipeline.adaptation.schedules import layer_groups
from fm_pipeline.downstream.tasks import TAGGING, Example, TaskData

IGNORE = -100


class TaskModel(nn.Module):
    """A language model (`backbone`) with a linear head per task (`heads[name]`, `d_model` -> classes)."""

    def __init__(self, backbone: nn.Module, classes: dict[str, int], kinds: dict[str, str], dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.kinds = dict(kinds)
        d = backbone.config.d_model
        self.heads = nn.ModuleDict({name: nn.Linear(d, n) for name, n in classes.items()})
        for head in self.heads.values():
            nn.init.normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, task: str, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits: (B, T, tags) for a tagging task, (B, classes) for classification (mean over real tokens; every
        row holds at least its BOS). `mask` (B, T) is 1 on real tokens, right-padded."""
        h = self.drop(hidden_states(self.backbone, idx, mask))
        if self.kinds[task] != TAGGING:
            h = mean_pooled(h, mask.sum(dim=1))
        return self.heads[task](h)


def task_layer_groups(model: TaskModel) -> list[list[str]]:
    """The backbone's ULMFiT layer groups (`adaptation.schedules.layer_groups`) under `backbone.`, the task heads
    in the top group; for gradual unfreezing and discriminative learning rates over a `TaskModel`."""
    groups = [[f"backbone.{name}" for name in group] for group in layer_groups(model.backbone)]
    groups[0] = [name for name, _ in model.heads.named_parameters(prefix="heads")] + groups[0]
    return groups


@dataclass
class Encoded:
    """One task's examples as token ids: `ids[i]` starts with BOS; `targets[i]` is the class index
    (classification) or one index per id, IGNORE except at each word's first piece (tagging); `words[i]` the
    position of each word's first piece (tagging; a word cut off by `max_len` has none)."""

    ids: list[list[int]]
    targets: list[int | list[int]]
    words: list[list[int]]


def encode(task: TaskData, examples: Sequence[Example], sp: spm.SentencePieceProcessor, max_len: int) -> Encoded:
    index = {label: i for i, label in enumerate(task.labels)}
    ids_out, targets, words = [], [], []
    for ex in examples:
        ids = [sp.bos_id()]
        if task.spec.kind == TAGGING:
            tags, starts = [IGNORE], []
            for token, tag in zip(ex.tokens, ex.tags, strict=True):
                pieces = sp.encode(token)
                if len(ids) + len(pieces) > max_len:
                    break
                starts.append(len(ids))
                ids += pieces
                tags += [index[tag]] + [IGNORE] * (len(pieces) - 1)
            targets.append(tags)
            words.append(starts)
        else:
            ids += sp.encode(ex.text)[: max_len - 1]
            targets.append(index[ex.label])
            words.append([])
        ids_out.append(ids)
    return Encoded(ids_out, targets, words)


def collate(enc: Encoded, rows: Sequence[int], pad_id: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, mask, targets) for the rows `rows`, right-padded to the longest."""
    width = max(len(enc.ids[r]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    tagging = isinstance(enc.targets[rows[0]], list)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long) if tagging else torch.zeros(len(rows),
                                                                                                 dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(enc.ids[r])
        ids[i, :n] = torch.tensor(enc.ids[r])
        mask[i, :n] = 1
        if tagging:
            targets[i, :n] = torch.tensor(enc.targets[r])
        else:
            targets[i] = enc.targets[r]
    return ids.to(device), mask.to(device), targets.to(device)
