"""The fine-tuning strategies by name and their knobs (`finetune` runs them): plain data, readable where torch
is not imported (the Dagster code location's config schema)."""

from __future__ import annotations

from dataclasses import dataclass

STRATEGIES = ("full", "gradual_unfreezing", "discriminative_lr", "knowledge_distillation", "multi_task_learning")


@dataclass
class TaskTrainConfig:
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3
    """Peak rate of the top group (heads and top block); `full` trains every parameter at it."""
    warmup_share: float = 0.1
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_len: int = 128
    """Tokens per example (BOS included), at most the model's block size."""
    dropout: float = 0.1
    layer_lr_decay: float = 2.6
    kd_temperature: float = 2.0
    kd_alpha: float = 0.5
    seed: int = 0
    device: str = "cpu"
