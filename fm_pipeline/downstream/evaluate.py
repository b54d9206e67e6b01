"""`evaluate_domain_adaptation`'s downstream half: each task fine-tuned and scored on the pretrained checkpoint
(the baseline) and on the domain-adapted one, by each strategy asked for, as table rows and flat metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fm_pipeline.downstream.finetune import run_strategy
from fm_pipeline.downstream.task_config import STRATEGIES, TaskTrainConfig
from fm_pipeline.downstream.tasks import TASK_ROOT, TASKS, read_task

BEFORE, AFTER = "pretrained", "adapted"


@dataclass(frozen=True)
class DownstreamScore:
    task: str
    strategy: str
    checkpoint: str
    """BEFORE (the pre-adaptation baseline) or AFTER."""
    f1: float
    steps: int
    wall_s: float


def evaluate_downstream(
    checkpoints: Mapping[str, tuple[Path, Path]], tasks: Sequence[str], strategies: Sequence[str],
    config: TaskTrainConfig, task_root: Path = TASK_ROOT, multi_task: Sequence[str] | None = None,
) -> list[DownstreamScore]:
    """Scores of every task × strategy × checkpoint. `checkpoints` maps BEFORE and AFTER to (checkpoint folder,
    tokenizer model); `multi_task` names the tasks multi-task learning shares its backbone with (default: all)."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {STRATEGIES}")
    data = {name: read_task(name, task_root) for name in dict.fromkeys([*tasks, *(multi_task or TASKS)])}
    scores = []
    for name in tasks:
        for strategy in strategies:
            for which in (BEFORE, AFTER):
                checkpoint, tokenizer = checkpoints[which]
                r = run_strategy(checkpoint, tokenizer, data[name], strategy, config, list(data.values()))
                scores.append(DownstreamScore(name, strategy, which, r.f1, r.steps, r.wall_s))
    return scores


def downstream_metrics(scores: Sequence[DownstreamScore], published: str) -> dict[str, float]:
    """`downstream/<task>/f1_before|f1_after` for the `published` strategy, and
    `downstream/<task>/<strategy>/f1_before|f1_after` for every strategy."""
    out: dict[str, float] = {}
    for s in scores:
        key = "f1_before" if s.checkpoint == BEFORE else "f1_after"
        out[f"downstream/{s.task}/{s.strategy}/{key}"] = s.f1
        if s.strategy == published:
            out[f"downstream/{s.task}/{key}"] = s.f1
    return out


def downstream_rows(scores: Sequence[DownstreamScore]) -> list[dict[str, Any]]:
    """Table rows: the baseline (pretrained) row of each task × strategy, then the adapted one with the change."""
    before = {(s.task, s.strategy): s.f1 for s in scores if s.checkpoint == BEFORE}
    rows = []
    for s in sorted(scores, key=lambda s: (s.task, s.strategy, s.checkpoint != BEFORE)):
        base = before.get((s.task, s.strategy))
        rows.append({"task": s.task, "strategy": s.strategy,
                     "checkpoint": "pretrained (baseline)" if s.checkpoint == BEFORE else "domain-adapted",
                     "f1": round(s.f1, 4),
                     "change": None if s.checkpoint == BEFORE or base is None else round(s.f1 - base, 4),
                     "wall_s": round(s.wall_s, 1)})
    return rows


def scores_to_dicts(scores: Sequence[DownstreamScore]) -> list[dict[str, Any]]:
    return [asdict(s) for s in scores]
