"""Materialize `pretrained_checkpoint` alone, in this process, as a Dagster step runs it; from the command line
the process SIGKILLs itself at a chosen moment of training, as a preempted pod would:

    python -m fm_pipeline_tests.defs.materialize_pretraining RUN_CONFIG.json MOMENT STEP

(`FM_PIPELINE_HOME` names the lake; MOMENT and STEP as in `fm_pipeline_tests.training.killed_run`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg
import torch

from fm_pipeline.definitions import defs
from fm_pipeline_tests.training.killed_run import install_kill


def materialize(instance: dg.DagsterInstance, run_config: dict) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("pretrained_checkpoint")],
                                  run_config=run_config, raise_on_error=False)


def main() -> None:
    config, moment, step = sys.argv[1:4]
    torch.set_num_threads(1)  # as the in-process run it is compared with
    install_kill(moment, int(step))
    materialize(dg.DagsterInstance.ephemeral(), json.loads(Path(config).read_text()))
    raise SystemExit("the materialization finished: it should have been killed")


if __name__ == "__main__":
    main()
