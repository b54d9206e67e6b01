"""What the train op launches under torchrun: the library's entry point (`fm_pipeline.training.run`) plus, on
rank 0, the op's MLflow run and Dagster Pipes:

    torchrun --nproc_per_node 8 -m fm_pipeline.defs.train_launch --config train.json --mlflow-run-id <id>

With `--mlflow-run-id` rank 0 logs into that (already created) MLflow run, so the launching op keeps the run's
lifecycle. Launched through Dagster Pipes (`PipesSubprocessClient`), rank 0 also streams its progress into the
op's log and reports the result as a Pipes message, so the op needs no shared file. Neither Dagster nor MLflow
is imported by the other ranks. The training code (torch) is imported when the launch runs, not when the code
location (which holds this module) loads.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from typing import Any

from fm_pipeline.training.callbacks import LogCallback, RunInfo, TrainingCallback, TrainResult

PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"  # set by a Dagster Pipes client that launched this process


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
        from fm_pipeline.training.run import result_to_json

        self.pipes.report_custom_message(json.loads(result_to_json(result)))


def main(argv: list[str] | None = None) -> None:
    from fm_pipeline.training.run import arguments, is_main_rank, run

    parser = arguments()
    parser.add_argument("--mlflow-run-id",
                        help="log into this existing MLflow run (MLFLOW_TRACKING_URI picks the store)")
    parser.add_argument("--registered-model", default="fm-pipeline-pretrained",
                        help="registered model to add the final checkpoint to, with --mlflow-run-id")
    args = parser.parse_args(argv)
    callbacks: list[TrainingCallback] = []
    with ExitStack() as stack:
        if is_main_rank() and PIPES_CONTEXT_ENV in os.environ:
            # dagster-pipes is a small, dependency-free package meant for launched processes like this one
            from dagster_pipes import open_dagster_pipes

            callbacks.append(PipesCallback(stack.enter_context(open_dagster_pipes())))
        if args.mlflow_run_id and is_main_rank():
            import mlflow  # here, not at the top: the other ranks need not pay for importing it

            from fm_pipeline.defs.mlflow_logger import MlflowLogger

            stack.enter_context(mlflow.start_run(run_id=args.mlflow_run_id))
            callbacks.append(MlflowLogger(args.registered_model))
        run(args, callbacks)


if __name__ == "__main__":
    main()
