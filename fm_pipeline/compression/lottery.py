"""Lottery-ticket pruning: iterative magnitude pruning with rewinding (Frankle & Carbin 2019; rewinding to an
early step, Frankle et al. 2020).

Each round removes `rate` of the weights still alive, by global magnitude over the block Linears, rewinds every
parameter (the survivors, embeddings and norms alike) to the rewind point, and retrains with the masks fixed.
After R rounds exactly `remaining_r = remaining_{r-1} - round(rate · remaining_{r-1})` weights survive.

The rewind point: we compress a model that is already trained, so this is the fine-tuning-stage lottery ticket
(Chen et al. 2020, BERT): `rewind_step` 0 rewinds to the pretrained (here: adapted) weights, which are what the
ticket must win from, and the first masks come from their magnitudes. `rewind_step` k > 0 first trains the dense
model for `steps` steps, keeping its weights at step k as the rewind point (late rewinding; k >= `steps`: its
end, i.e. no rewinding, plain iterative pruning with fine-tuning), and prunes from the trained weights. Masks
live in `torch.nn.utils.prune`'s reparametrization, so a pruned weight is exactly zero in every forward pass and
gets no gradient; the result is stored as `SparseLinear`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from fm_pipeline.compression.prune import effective_weight, prunable_linears, set_masks, to_sparse_storage
from fm_pipeline.compression.tuning import TuneData, tune


def lottery_schedule(total: int, rate: float, rounds: int) -> list[int]:
    """Weights alive after each round: round(rate × alive) more pruned per round."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), not {rate}")
    alive, out = total, []
    for _ in range(rounds):
        alive -= round(rate * alive)
        out.append(alive)
    return out


def prune_remaining(modules: Sequence[nn.Linear], masks: Sequence[torch.Tensor], rate: float) -> list[torch.Tensor]:
    """New masks with round(rate × alive) more weights removed: the smallest in magnitude among those alive,
    ranked globally; pruned weights stay pruned."""
    scores = torch.cat([effective_weight(m).abs().flatten() for m in modules])
    flat = torch.cat([mask.flatten() for mask in masks]).clone()
    alive = flat.nonzero().squeeze(1)
    n = round(rate * alive.numel())
    if n:
        flat[alive[torch.topk(scores[alive], n, largest=False).indices]] = 0.0
    return [chunk.view_as(m.weight) for chunk, m in zip(flat.split([m.weight.numel() for m in modules]), modules,
                                                          strict=True)]


@torch.no_grad()
def _rewind(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Every parameter back to the rewind point; masked layers hold it in `weight_orig`."""
    for name, param in model.named_parameters():
        key = name.replace("weight_orig", "weight")
        param.copy_(state[key])


@dataclass
class LotteryResult:
    alive: list[int]
    """Weights alive in the block Linears after each round."""
    sparsity: list[float]
    rewind_step: int
    losses: list[float] = field(default_factory=list)
    """The last retraining loss of each round."""


def _dense_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters under their plain names (a masked layer's effective weight under `weight`), copied."""
    return {name.replace("weight_orig", "weight"): p.detach().clone() for name, p in model.named_parameters()}


def lottery_ticket(
    model: nn.Module, data: TuneData, rounds: int = 3, rate: float = 0.2, steps: int = 100, lr: float = 3e-4,
    rewind_step: int = 0,
) -> tuple[nn.Module, LotteryResult]:
    """A copy of `model` pruned by `rounds` rounds of magnitude pruning (`rate` of the alive weights each),
    rewinding and retraining `steps` steps per round; returned in sparse storage."""
    model = copy.deepcopy(model)
    modules = [m for _, m in prunable_linears(model)]
    if rewind_step == 0:
        rewind = _dense_state(model)
    else:
        snapshot: dict[str, dict[str, torch.Tensor]] = {}

        def keep(step: int) -> None:
            if step == rewind_step + 1:
                snapshot["state"] = _dense_state(model)

        tune(model, data, steps, lr, before_step=keep)
        rewind = snapshot.get("state") or _dense_state(model)
    masks = [torch.ones_like(m.weight) for m in modules]
    total = sum(m.numel() for m in masks)
    result = LotteryResult([], [], rewind_step)
    for _ in range(rounds):
        with torch.no_grad():
            masks = prune_remaining(modules, masks, rate)
            set_masks(modules, masks)
            _rewind(model, rewind)
        result.losses.append(tune(model, data, steps, lr).final_loss if steps else float("nan"))
        alive = int(sum(m.weight_mask.sum() for m in modules))
        result.alive.append(alive)
        result.sparsity.append(1.0 - alive / total)
    return to_sparse_storage(model).eval(), result
