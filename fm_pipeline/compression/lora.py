"""LoRA and AdaLoRA as compression: a smaller base (the teacher structurally pruned, no recovery) plus a
low-rank delta on each of its block Linears, fitted towards the teacher by distillation with the base frozen.
The delta is stored beside the base (`LoRALinear`), so the size counts both, and merged into it for inference.

LoRA (Hu et al. 2021): ΔW = B·A at one rank for every layer, A random and B zero at the start.

AdaLoRA (Zhang et al. 2023): ΔW = P·diag(λ)·Q, SVD-shaped, every layer starting at `initial_rank`. Each
triplet (P[:, i], λ_i, Q[i, :]) is scored by the smoothed sensitivity times its uncertainty of every entry
(I = |w·∂L/∂w|, Ī ← β₁Ī + (1-β₁)I, U ← β₂U + (1-β₂)|I - Ī|, s = Ī·U; a triplet's score s(λ_i) + mean s(P[:, i])
+ mean s(Q[i, :])), and every `interval` steps only the budget's best triplets, ranked across all layers, keep
their λ: the budget falls on a cubic schedule from all of them to `target_rank` per layer on average, so rank
goes where it lowers the loss most. A penalty ‖PᵀP - I‖² + ‖QQᵀ - I‖² keeps P and Q near orthogonal, so λ
carries the scale. The kept triplets become an ordinary `LoRALinear` delta of per-layer rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.compression.layers import LoRALinear
from fm_pipeline.compression.modules import set_module
from fm_pipeline.compression.prune import prunable_linears


class SVDDeltaLinear(nn.Module):
    """Training-time AdaLoRA layer: frozen base + P·diag(λ·mask)·Q."""

    def __init__(self, linear: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = linear.requires_grad_(False)
        self.p = nn.Parameter(torch.randn(linear.out_features, rank, device=linear.weight.device) * 0.02)
        self.lam = nn.Parameter(torch.zeros(rank, device=linear.weight.device))
        self.q = nn.Parameter(torch.randn(rank, linear.in_features, device=linear.weight.device) * 0.02)
        self.register_buffer("mask", torch.ones(rank, device=linear.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.q) * (self.lam * self.mask), self.p)

    def to_lora(self) -> nn.Module:
        """The kept triplets as a `LoRALinear` (B = P·diag(λ), A = Q), or the bare base if none is kept."""
        kept = self.mask.nonzero().squeeze(1)
        if not kept.numel():
            return self.base
        lora = LoRALinear.wrap(self.base, kept.numel())
        with torch.no_grad():
            lora.a.copy_(self.q[kept])
            lora.b.copy_(self.p[:, kept] * self.lam[kept])
        return lora


def budget(step: int, total_steps: int, initial: int, target: int, warmup: float = 0.1, final: float = 0.2) -> int:
    """AdaLoRA's schedule: `initial` for the first `warmup` share of the steps, then a cubic fall to `target`,
    reached when the last `final` share begins."""
    start, end = round(warmup * total_steps), total_steps - round(final * total_steps)
    if step <= start:
        return initial
    if step >= end:
        return target
    return target + math.ceil((initial - target) * (1 - (step - start) / (end - start)) ** 3)


class RankAllocator:
    """Importance tracking (gradient hooks), the budget's masks and the orthogonality penalty of a set of
    `SVDDeltaLinear` layers."""

    def __init__(self, layers: Sequence[SVDDeltaLinear], target_total: int, total_steps: int, interval: int = 10,
                 beta1: float = 0.85, beta2: float = 0.85, ortho_weight: float = 0.1) -> None:
        self.layers, self.target, self.total_steps, self.interval = list(layers), target_total, total_steps, interval
        self.beta1, self.beta2, self.ortho_weight = beta1, beta2, ortho_weight
        self.initial = sum(layer.lam.numel() for layer in self.layers)
        self.smoothed: dict[int, torch.Tensor] = {}
        self.uncertainty: dict[int, torch.Tensor] = {}
        for layer in self.layers:
            for param in (layer.p, layer.lam, layer.q):
                param.register_hook(lambda grad, param=param: self._observe(param, grad))

    def _observe(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        with torch.no_grad():
            sensitivity = (param.detach() * grad).abs()
            key = id(param)
            if key not in self.smoothed:
                self.smoothed[key], self.uncertainty[key] = sensitivity, torch.zeros_like(sensitivity)
                return
            bar = self.beta1 * self.smoothed[key] + (1 - self.beta1) * sensitivity
            self.uncertainty[key] = self.beta2 * self.uncertainty[key] + (1 - self.beta2) * (sensitivity - bar).abs()
            self.smoothed[key] = bar

    def _score(self, param: torch.Tensor) -> torch.Tensor:
        key = id(param)
        if key not in self.smoothed:
            return torch.zeros_like(param)
        return self.smoothed[key] * self.uncertainty[key]

    def scores(self) -> list[torch.Tensor]:
        """Per layer, one importance per triplet."""
        return [self._score(layer.lam) + self._score(layer.p).mean(0) + self._score(layer.q).mean(1)
                for layer in self.layers]

    @torch.no_grad()
    def apply_budget(self, keep: int) -> None:
        """Keep the `keep` best triplets across all layers (ties by position), mask the rest."""
        flat = torch.cat(self.scores())
        mask = torch.zeros_like(flat)
        mask[torch.topk(flat, keep, sorted=False).indices] = 1.0
        for layer, chunk in zip(self.layers, mask.split([layer.lam.numel() for layer in self.layers]), strict=True):
            layer.mask.copy_(chunk)

    def before_step(self, step: int) -> None:
        b = budget(step, self.total_steps, self.initial, self.target)
        if b < self.initial and (step % self.interval == 0 or b == self.target):
            self.apply_budget(b)

    def finish(self) -> None:
        """The final masks at exactly the target budget."""
        self.apply_budget(self.target)

    def regularizer(self) -> torch.Tensor:
        terms = []
        for layer in self.layers:
            p, q = layer.p, layer.q
            eye = torch.eye(p.shape[1], device=p.device)
            terms.append((p.T @ p - eye).pow(2).sum() + (q @ q.T - eye).pow(2).sum())
        return self.ortho_weight * torch.stack(terms).sum()


def add_lora(model: nn.Module, rank: int) -> nn.Module:
    """Freeze `model` (in place) and wrap every block Linear in a rank-`rank` `LoRALinear`."""
    model.requires_grad_(False)
    for path, linear in prunable_linears(model):
        set_module(model, path, LoRALinear.wrap(linear, rank))
    return model


def add_svd_deltas(model: nn.Module, rank: int) -> list[SVDDeltaLinear]:
    """Freeze `model` (in place) and wrap every block Linear in an `SVDDeltaLinear` of `rank` triplets."""
    model.requires_grad_(False)
    layers = []
    for path, linear in prunable_linears(model):
        layer = SVDDeltaLinear(linear, rank)
        set_module(model, path, layer)
        layers.append(layer)
    return layers


def finish_svd_deltas(model: nn.Module) -> dict[str, int]:
    """Replace every `SVDDeltaLinear` by its kept triplets (in place); the rank each layer got."""
    ranks = {}
    for path, module in [(p, m) for p, m in model.named_modules() if isinstance(m, SVDDeltaLinear)]:
        ranks[path] = int(module.mask.sum())
        set_module(model, path, module.to_lora())
    return ranks
