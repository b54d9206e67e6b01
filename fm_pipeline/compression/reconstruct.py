"""Least-squares reconstruction after structured pruning: each pruned block's attention output projection and
MLP down projection are refitted so the block reproduces what the unpruned block computes, on calibration text.

Removing heads and channels drops terms from two sums: the output projection's over heads and the down
projection's over channels. The weights that remain were trained alongside the removed ones, so they no longer
add up to the same output. Refitting them to it is an ordinary ridge regression per projection (He et al. 2017,
"Channel pruning"; FLAP and SliceGPT use the same idea for LLMs): closed form, a second or two for a small
model, no optimizer and no learning rate.

Blocks are refitted in order, each on the residual stream of the pruned model as its earlier blocks were
already refitted (as SparseGPT processes layers), so a block also absorbs the error of those before it. The
targets are the unpruned block's own outputs on those same inputs, so reconstruction can only bring the pruned
model back towards its parent, never past it: it is recovery, not more training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

DEFAULT_RIDGE = 1e-2
"""Ridge strength relative to the mean of XᵀX's diagonal: scale-free, and enough to keep the system well posed
when a few windows of calibration text make some kept channels nearly collinear."""


class _NormalEquations:
    """XᵀX, XᵀY and ‖Y‖² accumulated batch by batch in float64, so memory is one batch, not the calibration
    set; X gets a column of ones when the projection has a bias."""

    def __init__(self, bias: bool) -> None:
        self.bias = bias
        self.xtx: torch.Tensor | None = None
        self.xty: torch.Tensor | None = None
        self.yy = 0.0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.reshape(-1, x.shape[-1]).double(), y.reshape(-1, y.shape[-1]).double()
        if self.bias:
            x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)
        xtx, xty = x.T @ x, x.T @ y
        self.xtx = xtx if self.xtx is None else self.xtx + xtx
        self.xty = xty if self.xty is None else self.xty + xty
        self.yy += float(y.pow(2).sum())

    def solve(self, ridge: float) -> torch.Tensor:
        """S ((in [+ 1]) × out) minimising ‖XS - Y‖² + ridge·mean(diag XᵀX)·‖S‖²."""
        if self.xtx is None:
            raise ValueError("reconstruction needs at least one calibration batch")
        a = self.xtx.clone()
        a.diagonal().add_(ridge * a.diagonal().mean())
        return torch.linalg.solve(a, self.xty)

    def relative_error(self, s: torch.Tensor) -> float:
        """‖XS - Y‖² / ‖Y‖², from the accumulated sums alone."""
        residual = (s * (self.xtx @ s)).sum() - 2 * (s * self.xty).sum() + self.yy
        return float(residual.clamp_min(0.0)) / max(self.yy, 1e-12)


@torch.no_grad()
def _refit(
    pruned_block: nn.Module, parent_block: nn.Module, part: str, inputs: Sequence[torch.Tensor],
    rope: nn.Module | None, ridge: float,
) -> tuple[float, float]:
    """Refit `part` ("attn" or "mlp") of `pruned_block` on the block inputs `inputs`; returns its relative
    squared error against the parent's `part` before and after."""
    module, parent = getattr(pruned_block, part), getattr(parent_block, part)
    linear = module.out if part == "attn" else module.down
    equations = _NormalEquations(linear.bias is not None)
    captured: list[torch.Tensor] = []
    hook = linear.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        for x in inputs:
            if part == "attn":
                h = pruned_block.norm_attn(x)
                module(h, rope=rope)
                want = parent(h, rope=rope)
            else:  # the MLP reads the stream after the (already refitted) attention
                x = x + pruned_block.attn(pruned_block.norm_attn(x), rope=rope)
                h = pruned_block.norm_mlp(x)
                module(h)
                want = parent(h)
            equations.add(captured.pop(), want)
    finally:
        hook.remove()
    current = linear.weight.T.double()
    if linear.bias is not None:
        current = torch.cat([current, linear.bias.double()[None]])
    solution = equations.solve(ridge)
    linear.weight.copy_(solution[: linear.in_features].T)
    if linear.bias is not None:
        linear.bias.copy_(solution[-1])
    return equations.relative_error(current), equations.relative_error(solution)


@torch.no_grad()
def reconstruct_pruned(
    parent: nn.Module, pruned: nn.Module, batches: Sequence[dict[str, torch.Tensor]], ridge: float = DEFAULT_RIDGE,
) -> list[dict[str, float]]:
    """Refit, in place and block by block, the attention output and MLP down projections of `pruned` (a
    decoder-only model made from `parent` by `prune.remove_structures`, same depth and width) so each block
    reproduces `parent`'s block on `batches` (model inputs: "idx"). Returns per block the relative squared error
    of its attention and MLP outputs against the parent's, before and after."""
    if pruned.config.architecture != "decoder_only" or pruned.config.n_layer != parent.config.n_layer:
        raise ValueError("reconstruction refits a decoder_only model pruned from `parent` (same depth)")
    if pruned.config.moe_experts:
        raise ValueError("reconstruction refits dense MLPs, not experts")
    was_training = pruned.training
    pruned.eval()
    parent.eval()
    rope = pruned.decoder.rope
    device = next(pruned.parameters()).device
    stream = [pruned.embed(b["idx"].to(device)) for b in batches]
    report = []
    for pruned_block, parent_block in zip(pruned.decoder.blocks, parent.decoder.blocks, strict=True):
        attn = _refit(pruned_block, parent_block, "attn", stream, rope, ridge)
        mlp = _refit(pruned_block, parent_block, "mlp", stream, rope, ridge)
        report.append({"attn_error_before": attn[0], "attn_error_after": attn[1],
                       "mlp_error_before": mlp[0], "mlp_error_after": mlp[1]})
        stream = [pruned_block(x, None, None, None, rope) for x in stream]
    pruned.train(was_training)
    return report
