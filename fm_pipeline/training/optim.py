"""AdamW with decoupled weight decay on matrices only, and a cosine schedule with linear warmup."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], device_type: str,
    lr_scale: Callable[[str], float] | None = None, include_frozen: bool = False,
) -> torch.optim.AdamW:
    """Decay weight matrices and embeddings, not biases and norm gains (as in GPT-2/nanoGPT); the fused
    kernel on CUDA saves a launch per parameter.

    `lr_scale(name)` multiplies a parameter's learning rate (discriminative learning rates); the scheduler's
    factor applies on top of each group's own rate. `include_frozen` also hands the optimizer parameters
    that do not require grad now, for schedules that unfreeze them later (AdamW skips a parameter whose grad
    is None, so a frozen one is neither updated nor decayed).
    """
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad or include_frozen:
            scale = lr_scale(name) if lr_scale else 1.0
            groups.setdefault((p.dim() >= 2, scale), []).append(p)
    param_groups = [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr": lr * scale}
        for (decay, scale), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))
    ]
    return torch.optim.AdamW(param_groups, lr=lr, betas=betas, fused=device_type in ("cuda", "cpu"))


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """The multiplier of the peak learning rate at `step`: linear warmup, then cosine decay to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return min_ratio
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, lr: float, min_lr: float
) -> LambdaLR:
    """A LambdaLR: its state_dict is plain numbers, so it saves and loads without pickled code."""
    min_ratio = min_lr / lr if lr > 0 else 0.0
    return LambdaLR(optimizer, lambda step: lr_factor(step, warmup_steps, total_steps, min_ratio))
