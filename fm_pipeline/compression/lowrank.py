"""Low-rank factorization: each block Linear W (out × in) becomes B·A from its truncated SVD, at the smallest
rank keeping a given share of the squared singular values (the "energy", ‖W_r‖²_F / ‖W‖²_F). A layer is
factorized only where that rank stores fewer weights, r·(in + out) < in·out."""

from __future__ import annotations

import copy

import torch
from torch import nn

from fm_pipeline.compression.modules import LowRankLinear, set_module
from fm_pipeline.compression.prune import prunable_linears
from fm_pipeline.compression.tuning import TuneData, tune


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """The smallest r with Σ_{i<r} σ_i² ≥ energy · Σ σ_i²."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], not {energy}")
    power = singular_values.double() ** 2
    retained = torch.cumsum(power, 0) / power.sum()
    return min(int((retained < energy - 1e-12).sum()) + 1, len(singular_values))


def factorize(linear: nn.Linear, rank: int) -> LowRankLinear:
    """W ≈ (U_r √S_r)(√S_r V_rᵀ): the best rank-r approximation (Eckart-Young), split evenly between factors."""
    w = linear.weight.detach().double()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    module = LowRankLinear(linear.in_features, linear.out_features, rank, linear.bias is not None)
    module = module.to(linear.weight.device)
    with torch.no_grad():
        module.a.weight.copy_((root[:, None] * vh[:rank]).float())
        module.b.weight.copy_((u[:, :rank] * root).float())
        if linear.bias is not None:
            module.b.bias.copy_(linear.bias)
    return module


def low_rank(
    model: nn.Module, energy: float = 0.9, data: TuneData | None = None, recovery_steps: int = 0, lr: float = 3e-4
) -> tuple[nn.Module, dict[str, int]]:
    """A copy with every block Linear factorized where it saves weights, optionally fine-tuned after;
    returns the model and the rank chosen per factorized layer."""
    model = copy.deepcopy(model)
    ranks = {}
    for path, linear in prunable_linears(model):
        s = torch.linalg.svdvals(linear.weight.detach().double())
        rank = rank_for_energy(s, energy)
        if rank * (linear.in_features + linear.out_features) < linear.in_features * linear.out_features:
            set_module(model, path, factorize(linear, rank))
            ranks[path] = rank
    if recovery_steps and data is not None:
        tune(model, data, recovery_steps, lr)
    return model.eval(), ranks
