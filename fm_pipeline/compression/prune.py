"""Pruning: global magnitude (unstructured) and structured (whole attention heads and MLP channels).

Unstructured pruning zeroes the smallest weights of every block's linear layers, ranked together (the tied
embedding/output table is left dense), optionally gradually over a fine-tune (Zhu & Gupta's cubic schedule)
and with a recovery fine-tune. Masks live in `torch.nn.utils.prune`'s reparametrization during training, so
pruned weights get no gradient; the result is stored as `SparseLinear` (bitmask + non-zeros).

Structured pruning removes heads and channels for real: the model is rebuilt from a config with per-layer
head counts and MLP widths, with the kept rows and columns copied in, so it is smaller and faster.
Importance is first-order Taylor (|Σ w·∂L/∂w| over a head's or channel's weights on a few batches, Molchanov
et al.) or, without data, the L2 norm of those weights.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from fm_pipeline.compression.modules import SparseLinear, set_module
from fm_pipeline.compression.reconstruct import DEFAULT_RIDGE, reconstruct_pruned
from fm_pipeline.compression.tuning import TuneData, tune
from fm_pipeline.modeling.models import build_model

# -- unstructured -----------------------------------------------------------------------------------------


def prunable_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every Linear inside the transformer blocks (not the output layer, whose weight is the embedding table
    when tied, and which every token's prediction goes through)."""
    return [(p, m) for p, m in model.named_modules() if isinstance(m, nn.Linear) and p != "head"]


def effective_weight(module: nn.Linear) -> torch.Tensor:
    """The effective weight, masked when pruning is under way."""
    if hasattr(module, "weight_orig"):
        return module.weight_orig.detach() * module.weight_mask
    return module.weight.detach()


def global_magnitude_masks(modules: Sequence[nn.Linear], sparsity: float) -> list[torch.Tensor]:
    """Masks zeroing exactly round(sparsity × total) weights, the smallest in magnitude across all modules."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), not {sparsity}")
    scores = torch.cat([effective_weight(m).abs().flatten() for m in modules])
    flat = torch.ones_like(scores)
    n_pruned = round(sparsity * scores.numel())
    if n_pruned:
        flat[torch.topk(scores, n_pruned, largest=False).indices] = 0.0
    return [chunk.view_as(m.weight) for chunk, m in zip(flat.split([m.weight.numel() for m in modules]), modules,
                                                          strict=True)]


def set_masks(modules: Sequence[nn.Linear], masks: Sequence[torch.Tensor]) -> None:
    """Install (first call) or update (in place, later calls) the pruning masks."""
    for module, mask in zip(modules, masks, strict=True):
        if hasattr(module, "weight_mask"):
            module.weight_mask.copy_(mask)
        else:
            torch_prune.custom_from_mask(module, "weight", mask)


def cubic_sparsity(step: int, final: float, ramp_steps: int) -> float:
    """Zhu & Gupta (2017): s_t = s_f · (1 - (1 - t/n)³), fast at first and gentle near the end."""
    t = min(1.0, step / max(1, ramp_steps))
    return final * (1.0 - (1.0 - t) ** 3)


def to_sparse_storage(model: nn.Module) -> nn.Module:
    """Make the masks permanent and store every pruned layer as a `SparseLinear` (in place)."""
    for path, module in prunable_linears(model):
        if hasattr(module, "weight_mask"):
            torch_prune.remove(module, "weight")
        set_module(model, path, SparseLinear.from_dense(module.weight, module.bias))
    return model


def prune_unstructured(
    model: nn.Module, sparsity: float, data: TuneData | None = None, recovery_steps: int = 0, lr: float = 3e-4,
    gradual: bool = False, prune_every: int = 10,
) -> nn.Module:
    """A copy of `model` with `sparsity` of its block weights zeroed by global magnitude, in sparse storage.

    With `recovery_steps` (and `data`), the pruned model is fine-tuned with its masks fixed. With `gradual`,
    sparsity instead rises on the cubic schedule every `prune_every` steps over the first three quarters of
    the fine-tune, and the rest recovers at the final sparsity.
    """
    model = copy.deepcopy(model)
    modules = [m for _, m in prunable_linears(model)]
    if gradual and not (recovery_steps and data):
        raise ValueError("gradual pruning happens during a fine-tune: give data and recovery_steps")
    if not gradual:
        set_masks(modules, global_magnitude_masks(modules, sparsity))
    if recovery_steps and data is not None:
        ramp = max(1, int(0.75 * recovery_steps))

        def step_masks(step: int) -> None:
            if step == 1 or (step - 1) % prune_every == 0 or step == ramp:
                with torch.no_grad():
                    set_masks(modules, global_magnitude_masks(modules, cubic_sparsity(step, sparsity, ramp)))

        tune(model, data, recovery_steps, lr, before_step=step_masks if gradual else None)
        if gradual:  # the ramp ends exactly at the final sparsity; this only guards a short fine-tune
            with torch.no_grad():
                set_masks(modules, global_magnitude_masks(modules, sparsity))
    return to_sparse_storage(model).eval()


# -- structured -------------------------------------------------------------------------------------------


def _blocks(model: nn.Module) -> nn.ModuleList:
    if model.config.architecture != "decoder_only":
        raise ValueError("structured pruning is implemented for decoder_only models")
    return model.decoder.blocks


def _head_rows(n_head: int, n_kv_head: int, head_dim: int, keep_kv: Sequence[int]) -> tuple[list[int], list[int]]:
    """Rows of the fused QKV projection (queries, keys, values, in that order) and columns of the output
    projection that belong to the kept key/value groups and their query heads."""
    group = n_head // n_kv_head
    keep_q = [h for g in keep_kv for h in range(g * group, (g + 1) * group)]

    def rows(heads: Iterable[int], offset: int) -> list[int]:
        return [(offset + h) * head_dim + i for h in heads for i in range(head_dim)]

    qkv = rows(keep_q, 0) + rows(keep_kv, n_head) + rows(keep_kv, n_head + n_kv_head)
    return qkv, rows(keep_q, 0)


def _kept_groups(n_head: int, n_kv_head: int, removed: Iterable[int], layer: int) -> list[int]:
    """Key/value groups left after removing query heads `removed`; with grouped-query attention a group
    goes only as a whole (its key/value head and every query head that reads it)."""
    removed = set(removed)
    group = n_head // n_kv_head
    gone = {h // group for h in removed}
    partial = [g for g in gone if not set(range(g * group, (g + 1) * group)) <= removed]
    if partial:
        raise ValueError(f"layer {layer}: heads of key/value groups {partial} must be removed together")
    kept = [g for g in range(n_kv_head) if g not in gone]
    if not kept:
        raise ValueError(f"layer {layer}: at least one attention head must remain")
    return kept


def remove_structures(
    model: nn.Module, heads: dict[int, Sequence[int]] | None = None, channels: dict[int, Sequence[int]] | None = None
) -> nn.Module:
    """A new, smaller model without the named query heads (per layer) and MLP channels (per layer)."""
    heads, channels = heads or {}, channels or {}
    config = model.config
    blocks = _blocks(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    layer_heads, layer_kv, layer_ff = [], [], []
    for i, block in enumerate(blocks):
        n_head, n_kv = block.attn.n_head, block.attn.n_kv_head
        keep_kv = _kept_groups(n_head, n_kv, heads.get(i, ()), i)
        qkv_rows, out_cols = _head_rows(n_head, n_kv, config.head_dim, keep_kv)
        prefix = f"decoder.blocks.{i}."
        state[prefix + "attn.qkv.weight"] = state[prefix + "attn.qkv.weight"][qkv_rows]
        if config.bias:
            state[prefix + "attn.qkv.bias"] = state[prefix + "attn.qkv.bias"][qkv_rows]
        state[prefix + "attn.out.weight"] = state[prefix + "attn.out.weight"][:, out_cols]
        layer_kv.append(len(keep_kv))
        layer_heads.append(len(keep_kv) * (n_head // n_kv))

        d_ff = block.mlp.down.in_features
        gone = set(channels.get(i, ()))
        keep = [c for c in range(d_ff) if c not in gone]
        if not keep:
            raise ValueError(f"layer {i}: at least one MLP channel must remain")
        up_rows = keep + [d_ff + c for c in keep] if block.mlp.swiglu else keep
        state[prefix + "mlp.up.weight"] = state[prefix + "mlp.up.weight"][up_rows]
        if config.bias:
            state[prefix + "mlp.up.bias"] = state[prefix + "mlp.up.bias"][up_rows]
        state[prefix + "mlp.down.weight"] = state[prefix + "mlp.down.weight"][:, keep]
        layer_ff.append(len(keep))
    new_config = replace(config, layer_n_head=layer_heads, layer_n_kv_head=layer_kv, layer_d_ff=layer_ff)
    smaller = build_model(new_config).to(next(model.parameters()).device)
    smaller.load_state_dict({k: v.contiguous() for k, v in state.items()}, strict=True)
    return smaller.eval()


def structure_importance(
    model: nn.Module, batches: Sequence[dict[str, torch.Tensor]] | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, a score per key/value group of heads and per MLP channel (higher: more important).
    Taylor scores when `batches` are given (the loss's first-order change if the group were zeroed),
    else L2 norms of the group's weights."""
    blocks = _blocks(model)
    grads: dict[int, torch.Tensor] = {}
    if batches:
        model.zero_grad(set_to_none=True)
        was_training = model.training
        model.eval()
        params = {id(p) for b in blocks for p in b.parameters()}
        for batch in batches:
            device = next(model.parameters()).device
            _, loss = model(**{k: v.to(device) for k, v in batch.items()})
            loss.backward()
        grads = {id(p): p.grad.detach().clone() for b in blocks for p in b.parameters() if id(p) in params}
        model.zero_grad(set_to_none=True)
        model.train(was_training)

    def contribution(p: torch.Tensor) -> torch.Tensor:
        """Elementwise w·g (Taylor), or w² (magnitude)."""
        return p.detach() * grads[id(p)] if grads else p.detach() ** 2

    def score(total: torch.Tensor) -> torch.Tensor:
        return total.abs() if grads else total.sqrt()

    head_scores, channel_scores = [], []
    head_dim = model.config.head_dim
    for block in blocks:
        attn, mlp = block.attn, block.mlp
        qkv, out = contribution(attn.qkv.weight).sum(dim=1), contribution(attn.out.weight).sum(dim=0)
        per_group = []
        for g in range(attn.n_kv_head):
            rows, cols = _head_rows(attn.n_head, attn.n_kv_head, head_dim, [g])
            per_group.append(qkv[rows].sum() + out[cols].sum())
        head_scores.append(score(torch.stack(per_group)))
        up, down = contribution(mlp.up.weight).sum(dim=1), contribution(mlp.down.weight).sum(dim=0)
        d_ff = mlp.down.in_features
        per_channel = up[:d_ff] + up[d_ff:] + down if mlp.swiglu else up + down
        channel_scores.append(score(per_channel))
    return head_scores, channel_scores


def _removal(
    model: nn.Module, head_scores: Sequence[torch.Tensor], channel_scores: Sequence[torch.Tensor],
    head_fraction: float, mlp_fraction: float,
) -> dict[str, dict[int, list[int]]]:
    """The least important `head_fraction` of each layer's key/value head groups and `mlp_fraction` of its MLP
    channels (at least one of each stays)."""
    heads, channels = {}, {}
    for i, block in enumerate(_blocks(model)):
        group = block.attn.n_head // block.attn.n_kv_head
        n_groups = min(round(head_fraction * block.attn.n_kv_head), block.attn.n_kv_head - 1)
        gone = torch.argsort(head_scores[i])[:n_groups].tolist()
        heads[i] = sorted(h for g in gone for h in range(g * group, (g + 1) * group))
        n_channels = min(round(mlp_fraction * len(channel_scores[i])), len(channel_scores[i]) - 1)
        channels[i] = sorted(torch.argsort(channel_scores[i])[:n_channels].tolist())
    return {"heads": heads, "channels": channels}


BUDGET_SCALES = (1.0, 0.75, 0.5, 0.25)
"""Shares of the configured fractions tried, largest first, when pruning to a loss budget."""


def prune_structured(
    model: nn.Module, head_fraction: float = 0.25, mlp_fraction: float = 0.5, data: TuneData | None = None,
    importance_batches: int = 8, recovery_steps: int = 0, lr: float = 3e-4, max_ppl_ratio: float | None = None,
    check_loss: Callable[[nn.Module], float] | None = None, reconstruct_batches: int = 0,
    ridge: float = DEFAULT_RIDGE,
) -> tuple[nn.Module, dict[str, Any]]:
    """Remove the least important `head_fraction` of each layer's key/value head groups and `mlp_fraction` of
    its MLP channels (at least one of each stays), refit what remains to the unpruned blocks' outputs on
    `reconstruct_batches` batches of `data` (`reconstruct.reconstruct_pruned`, ridge `ridge`; 0: no refit), then
    optionally fine-tune to recover. Importance and refit both read `data`: give it the text of the model's use.
    Returns the smaller model and what was removed: {"heads": {layer: [query heads]}, "channels": {layer:
    [channels]}}, and with a refit "reconstruction": per block, the attention and MLP output errors before and
    after.

    With `max_ppl_ratio` and `check_loss` (a model's mean loss on text of the use it is compressed for, say
    the domain's training documents), the fractions shrink by `BUDGET_SCALES` until the pruned model's
    perplexity there is within that multiple of the unpruned model's: a model that pruning hurts more (one
    adapted to a narrow domain) loses less of itself. The full share is tried first (with a refit it usually
    fits), then the rest by bisection (the cost grows with the share); the smallest is kept when none fits. The
    returned dict then also holds "scale" and "check_ppl_ratio"."""
    if (max_ppl_ratio is None) != (check_loss is None):
        raise ValueError("pruning to a perplexity budget needs both max_ppl_ratio and check_loss")
    if reconstruct_batches and data is None:
        raise ValueError("a refit after pruning needs calibration data")
    batches = data.batches(importance_batches) if data is not None and importance_batches else None
    refit_batches = data.batches(reconstruct_batches) if reconstruct_batches else None
    head_scores, channel_scores = structure_importance(model, batches)

    def cut(scale: float) -> tuple[nn.Module, dict[str, Any]]:
        plan: dict[str, Any] = _removal(model, head_scores, channel_scores, head_fraction * scale,
                                        mlp_fraction * scale)
        pruned = remove_structures(model, plan["heads"], plan["channels"])
        if refit_batches:
            plan["reconstruction"] = reconstruct_pruned(model, pruned, refit_batches, ridge)
        return pruned, plan

    if max_ppl_ratio is None:
        smaller, removed = cut(1.0)
    else:
        base = check_loss(model)
        tried: dict[int, tuple[nn.Module, dict[str, Any], float]] = {}

        def at(i: int) -> tuple[nn.Module, dict[str, Any], float]:
            if i not in tried:
                pruned, plan = cut(BUDGET_SCALES[i])
                tried[i] = pruned, plan, math.exp(check_loss(pruned) - base)
            return tried[i]

        lo, hi = (0, 0) if at(0)[2] <= max_ppl_ratio else (1, len(BUDGET_SCALES) - 1)
        while lo < hi:  # the largest share within budget, by bisection: cost rises with it
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if at(mid)[2] <= max_ppl_ratio else (mid + 1, hi)
        smaller, removed, ratio = at(lo)
        removed = {**removed, "scale": BUDGET_SCALES[lo], "check_ppl_ratio": round(ratio, 5)}
    if recovery_steps and data is not None:
        tune(smaller, data, recovery_steps, lr)
    return smaller, removed
