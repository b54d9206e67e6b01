"""Command-line entry point, the same for one process and for torchrun:

    python -m fm_pipeline.training.run --config train.json
    torchrun --nproc_per_node 8 -m fm_pipeline.training.run --config train.json --mlflow-run-id <id>

Rank 0 logs progress to stderr, writes `<out_dir>/train_result.json` and, with `--mlflow-run-id`, logs into
that (already created) MLflow run, so a parent process can launch training and keep the run's lifecycle.
Launched through Dagster Pipes (`PipesSubprocessClient`), rank 0 also streams its progress into the Dagster
op's log and reports the result as a Pipes message, so the launching op needs no shared file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fm_pipeline.training.callbacks import Deadline, LogCallback, RunInfo, TrainingCallback, TrainResult
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train

RESULT_FILE = "train_result.json"
PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"  # set by a Dagster Pipes client that launched this process


def result_to_json(result: TrainResult) -> str:
    return json.dumps({**asdict(result), "checkpoint": str(result.checkpoint)}, indent=2)


class PipesCallback(TrainingCallback):
    """Progress lines into the launching op's Dagster log, and the result as a custom Pipes message."""

    def __init__(self, pipes: Any) -> None:
        self.pipes = pipes
        self.log = LogCallback(pipes.log)

    def on_train_start(self, info: RunInfo) -> None:
        self.log.on_train_start(info)

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.log.on_step(step, metrics)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.log.on_eval(step, metrics)

    def on_train_end(self, result: TrainResult) -> None:
        self.pipes.report_custom_message(json.loads(result_to_json(result)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a model from a TrainConfig, in one process or under torchrun.")
    parser.add_argument("--config", type=Path, required=True, help="a TrainConfig as JSON")
    parser.add_argument("--mlflow-run-id",
                        help="log into this existing MLflow run (MLFLOW_TRACKING_URI picks the store)")
    parser.add_argument("--registered-model", default="fm-pipeline-pretrained",
                        help="registered model to add the final checkpoint to, with --mlflow-run-id")
    parser.add_argument("--max-runtime-s", type=float, default=None,
                        help="stop with an error at the first step after this many seconds (rank 0 decides)")
    args = parser.parse_args(argv)

    main_rank = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    config = TrainConfig.from_json(args.config)
    callbacks: list[TrainingCallback] = [LogCallback(logging.getLogger("fm_pipeline.training"))]
    if args.max_runtime_s is not None:
        callbacks.append(Deadline(args.max_runtime_s))
    with ExitStack() as stack:
        if main_rank and PIPES_CONTEXT_ENV in os.environ:
            # dagster-pipes is a small, dependency-free package meant for launched processes like this one
            from dagster_pipes import open_dagster_pipes

            callbacks.append(PipesCallback(stack.enter_context(open_dagster_pipes())))
        if args.mlflow_run_id and main_rank:
            import mlflow  # here, not at the top: the other ranks need not pay for importing it

            from fm_pipeline.training.mlflow_logger import MlflowLogger

            stack.enter_context(mlflow.start_run(run_id=args.mlflow_run_id))
            callbacks.append(MlflowLogger(args.registered_model))
        result = train(config, callbacks)
    if main_rank:
        (Path(config.out_dir) / RESULT_FILE).write_text(result_to_json(result) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
