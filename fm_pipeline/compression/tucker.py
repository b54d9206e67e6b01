"""Tucker decomposition of the feed-forward weights across layers.

The L same-shaped matrices of one feed-forward projection (every layer's `mlp.up`, or every layer's `mlp.down`)
form a tensor (L, out, in). Tucker-2 keeps the layer mode whole and compresses the other two:
W_l ≈ U · G_l · Vᵀ with U (out, r_out) and V (in, r_in) shared by all layers and a core G_l (r_out, r_in) per
layer, so the stack stores out·r_out + in·r_in + L·r_out·r_in weights instead of L·out·in. Layers of one model
share much of their row and column spaces, which a per-layer SVD cannot exploit.

Factors by HOSVD (De Lathauwer et al. 2000): U = the top r_out left singular vectors of the mode-1 unfolding
[W_1 … W_L], V likewise of [W_1ᵀ … W_Lᵀ], G_l = Uᵀ W_l V; exact when the tensor has multilinear rank at most
(r_out, r_in). `iterations` > 0 refines them by HOOI (alternating: U from [W_l V], V from [W_lᵀ U])."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from fm_pipeline.compression.layers import TuckerFactors, TuckerLinear
from fm_pipeline.compression.modules import set_module
from fm_pipeline.compression.tuning import TuneData, tune

PROJECTIONS = ("mlp.up", "mlp.down")


def _leading(matrix: torch.Tensor, rank: int) -> torch.Tensor:
    u, _, _ = torch.linalg.svd(matrix, full_matrices=False)
    return u[:, :rank]


def tucker2(weights: Sequence[torch.Tensor], rank_out: int, rank_in: int, iterations: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(U, V, cores) of the stack of (out, in) matrices `weights`, computed in float64."""
    w = torch.stack([m.detach().double() for m in weights])
    out_dim, in_dim = w.shape[1:]
    layers = w.shape[0]
    if not (1 <= rank_out <= min(out_dim, layers * rank_in) and 1 <= rank_in <= min(in_dim, layers * rank_out)):
        raise ValueError(f"ranks ({rank_out}, {rank_in}) must be within the dimensions ({out_dim}, {in_dim}) and "
                         f"each at most {layers} layers times the other (the multilinear rank bound)")
    u = _leading(torch.cat(list(w), dim=1), rank_out)
    v = _leading(torch.cat(list(w.transpose(1, 2)), dim=1), rank_in)
    for _ in range(iterations):
        u = _leading(torch.cat(list(w @ v), dim=1), rank_out)
        v = _leading(torch.cat(list(w.transpose(1, 2) @ u), dim=1), rank_in)
    cores = u.T @ w @ v
    return u, v, cores


def stored_weights(layers: int, out_dim: int, in_dim: int, rank_out: int, rank_in: int) -> int:
    return out_dim * rank_out + in_dim * rank_in + layers * rank_out * rank_in


def tucker_ffn(
    model: nn.Module, rank_ratio: float = 0.5, data: TuneData | None = None, recovery_steps: int = 0,
    lr: float = 3e-4, iterations: int = 2,
) -> tuple[nn.Module, dict[str, dict[str, int]]]:
    """A copy with each feed-forward projection stack replaced by its Tucker-2 at ranks round(rank_ratio ×
    dimension) (each capped at L times the other, beyond which a rank adds nothing) where that stores fewer
    weights, optionally fine-tuned after; returns the model and, per projection, the ranks and weights stored
    before and after."""
    if not 0.0 < rank_ratio <= 1.0:
        raise ValueError(f"rank_ratio must be in (0, 1], not {rank_ratio}")
    model = copy.deepcopy(model)
    blocks = model.decoder.blocks
    done: dict[str, dict[str, int]] = {}
    for name in PROJECTIONS:
        linears = [b.get_submodule(name) for b in blocks]
        shapes = {tuple(m.weight.shape) for m in linears}
        if len(shapes) != 1:
            continue  # per-layer widths (a structurally pruned model): no common tensor
        out_dim, in_dim = shapes.pop()
        r_out, r_in = max(1, round(rank_ratio * out_dim)), max(1, round(rank_ratio * in_dim))
        r_out, r_in = min(r_out, len(linears) * r_in), min(r_in, len(linears) * r_out)
        after = stored_weights(len(linears), out_dim, in_dim, r_out, r_in)
        if after >= len(linears) * out_dim * in_dim:
            continue
        u, v, cores = tucker2([m.weight for m in linears], r_out, r_in, iterations)
        factors = TuckerFactors(out_dim, in_dim, r_out, r_in).to(linears[0].weight.device)
        with torch.no_grad():
            factors.u.copy_(u.float())
            factors.v.copy_(v.float())
        for i, (block, linear) in enumerate(zip(blocks, linears, strict=True)):
            module = TuckerLinear(factors, linear.bias is not None).to(linear.weight.device)
            with torch.no_grad():
                module.core.copy_(cores[i].float())
                if linear.bias is not None:
                    module.bias.copy_(linear.bias)
            set_module(block, name, module)
        done[name] = {"rank_out": r_out, "rank_in": r_in, "weights_before": len(linears) * out_dim * in_dim,
                      "weights_after": after}
    if recovery_steps and data is not None:
        tune(model, data, recovery_steps, lr)
    return model.eval(), done
