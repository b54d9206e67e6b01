"""Task-adaptive fine-tuning of a checkpoint with a task head, by one of the seed's strategies, and its score.

Strategies (every one starts from the checkpoint with freshly initialised heads, seeded):
- `full`: every parameter at one learning rate (the teacher of `knowledge_distillation`).
- `gradual_unfreezing`: ULMFiT's schedule over the heads + backbone layer groups (heads and top block first).
- `discriminative_lr`: ULMFiT's rates, lr / decay^depth per group from the top.
- `knowledge_distillation`: a `full` teacher is fine-tuned first; the student (the same checkpoint) then learns
  from alpha * cross-entropy + (1 - alpha) * T^2 * KL(teacher || student) on soft labels at temperature T.
- `multi_task_learning`: one shared backbone, one head per task, batches of every task in `tasks` interleaved
  (shuffled); scored on the target task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F

from fm_pipeline.adaptation.schedules import GradualUnfreezing, discriminative_lr
from fm_pipeline.downstream.heads import IGNORE, Encoded, TaskModel, collate, encode, task_layer_groups
from fm_pipeline.downstream.metrics import macro_f1, span_f1
from fm_pipeline.downstream.task_config import STRATEGIES, TaskTrainConfig
from fm_pipeline.downstream.tasks import TAGGING, Example, TaskData
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline.training.loop import resolve_device
from fm_pipeline.training.optim import build_optimizer, build_scheduler


@dataclass
class Trained:
    model: TaskModel
    sp: spm.SentencePieceProcessor
    steps: int
    wall_s: float


def _batches(encoded: dict[str, Encoded], batch_size: int, generator: torch.Generator) -> list[tuple[str, list[int]]]:
    """One epoch: each task's rows shuffled into batches, the batches of all tasks shuffled together."""
    batches = []
    for name in sorted(encoded):
        order = torch.randperm(len(encoded[name].ids), generator=generator).tolist()
        batches += [(name, order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _loss(logits: torch.Tensor, targets: torch.Tensor, teacher: torch.Tensor | None, config: TaskTrainConfig):
    flat, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    ce = F.cross_entropy(flat, flat_targets, ignore_index=IGNORE)
    if teacher is None:
        return ce
    keep = flat_targets != IGNORE
    t = config.kd_temperature
    kl = F.kl_div(F.log_softmax(flat[keep] / t, dim=-1), F.log_softmax(teacher.reshape(flat.shape)[keep] / t, dim=-1),
                  reduction="batchmean", log_target=True)
    return config.kd_alpha * ce + (1 - config.kd_alpha) * t * t * kl


def train_task_model(
    checkpoint: Path, tokenizer: Path, tasks: Sequence[TaskData], strategy: str, config: TaskTrainConfig,
    teacher: TaskModel | None = None,
) -> Trained:
    """Fine-tune the checkpoint with one head per task in `tasks` (one task except for multi-task learning).
    `teacher` (same tasks) turns on distillation."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    start = time.perf_counter()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    backbone, _ = load_checkpoint(Path(checkpoint), device)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    model = TaskModel(backbone, {t.name: len(t.labels) for t in tasks}, {t.name: t.spec.kind for t in tasks},
                      config.dropout).to(device)
    max_len = min(config.max_len, backbone.config.block_size)
    encoded = {t.name: encode(t, t.train, sp, max_len) for t in tasks}
    generator = torch.Generator().manual_seed(config.seed)
    epochs = [_batches(encoded, config.batch_size, generator) for _ in range(config.epochs)]
    total = sum(len(e) for e in epochs)

    groups = task_layer_groups(model)
    lr_scale: Callable[[str], float] | None = None
    before_step = None
    if strategy == "discriminative_lr":
        lr_scale = discriminative_lr(model, config.layer_lr_decay, groups)
    elif strategy == "gradual_unfreezing":
        before_step = GradualUnfreezing(model, max(1, total // (2 * len(groups))), groups)
    optimizer = build_optimizer(model, config.lr, config.weight_decay, (0.9, 0.999), device.type,
                                lr_scale=lr_scale, include_frozen=before_step is not None)
    scheduler = build_scheduler(optimizer, round(config.warmup_share * total), total, config.lr,
                                config.lr * config.min_lr_ratio)
    if teacher is not None:
        teacher.eval()
    model.train()
    step = 0
    for batches in epochs:
        for name, rows in batches:
            step += 1
            if before_step is not None:
                before_step(step)
            ids, mask, targets = collate(encoded[name], rows, sp.pad_id(), device)
            soft = None
            if teacher is not None:
                with torch.no_grad():
                    soft = teacher(name, ids, mask)
            loss = _loss(model(name, ids, mask), targets, soft, config)
            loss.backward()
            trainable = [p for p in model.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return Trained(model, sp, total, time.perf_counter() - start)


@torch.no_grad()
def predict(trained: Trained, task: TaskData, examples: Sequence[Example], config: TaskTrainConfig,
            batch_size: int = 64) -> list:
    """A label per example (classification) or a tag per token (tagging; tokens cut off by `max_len` get "O")."""
    model, device = trained.model, next(trained.model.parameters()).device
    enc = encode(task, examples, trained.sp, min(config.max_len, model.backbone.config.block_size))
    out: list = []
    for i in range(0, len(examples), batch_size):
        rows = list(range(i, min(i + batch_size, len(examples))))
        ids, mask, _ = collate(enc, rows, trained.sp.pad_id(), device)
        best = model(task.name, ids, mask).argmax(dim=-1).cpu()
        for j, r in enumerate(rows):
            if task.spec.kind == TAGGING:
                tags = [task.labels[int(best[j, p])] for p in enc.words[r]]
                out.append(tags + ["O"] * (len(examples[r].tokens) - len(tags)))
            else:
                out.append(task.labels[int(best[j])])
    return out


def score(task: TaskData, examples: Sequence[Example], predictions: Sequence) -> float:
    """Span F1 for tagging, macro F1 for classification."""
    if task.spec.kind == TAGGING:
        return span_f1([e.tags for e in examples], predictions)["f1"]
    return macro_f1([e.label for e in examples], predictions)


@dataclass(frozen=True)
class StrategyScore:
    task: str
    strategy: str
    f1: float
    steps: int
    wall_s: float


def run_strategy(checkpoint: Path, tokenizer: Path, task: TaskData, strategy: str, config: TaskTrainConfig,
                 all_tasks: Sequence[TaskData] = ()) -> StrategyScore:
    """Fine-tune by `strategy` and score on the task's test split. `all_tasks` are the tasks multi-task learning
    shares the backbone with (the target task is always among them)."""
    start = time.perf_counter()
    teacher, tasks = None, [task]
    if strategy == "knowledge_distillation":
        teacher = train_task_model(checkpoint, tokenizer, tasks, "full", config).model
    elif strategy == "multi_task_learning":
        tasks = [task] + [t for t in all_tasks if t.name != task.name]
    trained = train_task_model(checkpoint, tokenizer, tasks, strategy, config, teacher=teacher)
    f1 = score(task, task.test, predict(trained, task, task.test, config))
    return StrategyScore(task.name, strategy, f1, trained.steps, time.perf_counter() - start)
