"""Command-line entry point, the same for one process and for torchrun:

    python -m fm_pipeline.training.run --config train.json
    torchrun --nproc_per_node 8 -m fm_pipeline.training.run --config train.json

Rank 0 logs progress to stderr and writes `<out_dir>/train_result.json`. The Dagster train op launches
`fm_pipeline.defs.train_launch` instead, which is this entry point plus the op's MLflow run and Dagster Pipes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from fm_pipeline.training.callbacks import Deadline, LogCallback, TrainingCallback, TrainResult
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train

RESULT_FILE = "train_result.json"


def result_to_json(result: TrainResult) -> str:
    return json.dumps({**asdict(result), "checkpoint": str(result.checkpoint)}, indent=2)


def is_main_rank() -> bool:
    """Rank 0 under torchrun, or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


def arguments() -> argparse.ArgumentParser:
    """The entry point's arguments, for a launcher that adds its own."""
    parser = argparse.ArgumentParser(description="Train a model from a TrainConfig, in one process or under torchrun.")
    parser.add_argument("--config", type=Path, required=True, help="a TrainConfig as JSON")
    parser.add_argument("--max-runtime-s", type=float, default=None,
                        help="stop with an error at the first step after this many seconds (rank 0 decides)")
    return parser


def run(args: argparse.Namespace, callbacks: Sequence[TrainingCallback] = ()) -> None:
    """Train the config `args` names, logging progress (and stopping past `--max-runtime-s`), with `callbacks`
    after those; rank 0 writes the result file."""
    main_rank = is_main_rank()
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    config = TrainConfig.from_json(args.config)
    steps: list[TrainingCallback] = [LogCallback(logging.getLogger("fm_pipeline.training"))]
    if args.max_runtime_s is not None:
        steps.append(Deadline(args.max_runtime_s))
    result = train(config, [*steps, *callbacks])
    if main_rank:
        (Path(config.out_dir) / RESULT_FILE).write_text(result_to_json(result) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    run(arguments().parse_args(argv))


if __name__ == "__main__":
    main()
