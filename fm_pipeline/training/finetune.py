"""A short training loop for a model that already exists: continued pretraining on a domain, adapters,
recovery fine-tunes after pruning, quantization-aware training, distillation.

The pretraining loop (`loop.train`) owns what a long run needs (DDP, resumable checkpoints, the
tokenizer check); this one takes a built model, a `WindowSampler` and an `Objective`, and lets the caller
choose the loss, the learning rate per parameter and what happens before each step (gradual unfreezing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from fm_pipeline.modeling.objectives import Objective
from fm_pipeline.training.callbacks import TrainingCallback
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.optim import build_optimizer, build_scheduler

LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]


def objective_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's own pretraining loss on the objective's batch."""
    _, loss = model(**batch)
    return loss


@dataclass
class FinetuneConfig:
    steps: int = 200
    lr: float = 1e-4
    min_lr_ratio: float = 0.1
    """The cosine schedule ends at lr * min_lr_ratio."""
    warmup_steps: int = 20
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    log_every: int = 10


@dataclass
class FinetuneResult:
    steps: int
    final_loss: float
    tokens_per_s: float
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)


def finetune(
    model: nn.Module,
    sampler: WindowSampler,
    objective: Objective,
    config: FinetuneConfig,
    *,
    loss_fn: LossFn = objective_loss,
    lr_scale: Callable[[str], float] | None = None,
    before_step: Callable[[int], None] | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> FinetuneResult:
    """Train `model` in place for `config.steps` steps on batches from `sampler`.

    Only parameters that require grad are updated; when `before_step` is given (it may change which
    parameters require grad), every parameter is handed to the optimizer so ones unfrozen later train too.
    `lr_scale(name)` multiplies a parameter's learning rate. Runs in fp32 on CPU and bf16 autocast on CUDA.
    """
    device = next(model.parameters()).device
    optimizer = build_optimizer(model, config.lr, config.weight_decay, config.betas, device.type,
                                lr_scale=lr_scale, include_frozen=before_step is not None)
    scheduler = build_scheduler(optimizer, config.warmup_steps, config.steps, config.lr,
                                config.lr * config.min_lr_ratio)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    history: list[dict[str, float]] = []
    loss_value = float("nan")
    tokens = 0
    start = time.perf_counter()
    model.train()
    for step in range(1, config.steps + 1):
        if before_step is not None:
            before_step(step)
        windows = sampler.next_batch()
        batch = {k: v.to(device) for k, v in objective.make_batch(windows, sampler.generator).items()}
        with autocast:
            loss = loss_fn(model, batch)
        if loss.requires_grad:  # a schedule may begin with everything frozen
            loss.backward()
        trainable = [p for p in model.parameters() if p.grad is not None]
        max_norm = config.grad_clip if config.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, max_norm) if trainable else torch.zeros(())
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += windows.numel()
        if step % config.log_every == 0 or step == config.steps:
            loss_value = loss.item()
            metrics = {"loss": loss_value, "lr": lr, "grad_norm": float(grad_norm),
                       "tokens_per_s": tokens / (time.perf_counter() - start)}
            history.append({"step": step, **metrics})
            for cb in callbacks:
                cb.on_step(step, metrics)
    model.eval()
    wall = time.perf_counter() - start
    return FinetuneResult(config.steps, loss_value, tokens / wall if wall else 0.0, wall, history)
