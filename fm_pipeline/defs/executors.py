"""Where steps run. The default is Dagster's multiprocess executor (every core of one machine) with its
`forkserver` start method preloading this code location: each step is forked from a process that imported
`fm_pipeline.definitions` once per run, instead of a fresh interpreter importing it again (about 5 s a step
under `spawn`, most of a small stage's run). `start_method: {spawn: {}}` in the run config restores spawn.
With `FM_PIPELINE_EXECUTOR=k8s` (and `pip install 'fm-pipeline[k8s]'`), every step runs in its own Kubernetes
pod through `dagster-k8s`'s `k8s_job_executor`, configured per run by `deploy/k8s/run_config.yaml`; the training
op asks for its GPU through its `dagster-k8s/config` tag. `in_process` runs every step in the run's process."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import dagster as dg

EXECUTOR_ENV = "FM_PIPELINE_EXECUTOR"
EXECUTORS = ("multiprocess", "in_process", "k8s")
CODE_LOCATION = "fm_pipeline.definitions"
"""The module the step processes need; the forkserver imports it before forking any step."""


def default_start_method() -> dict[str, Any]:
    """`forkserver` preloading the code location where the platform has it (POSIX), else `spawn`."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        return {"forkserver": {"preload_modules": [CODE_LOCATION]}}
    return {"spawn": {}}


def _with_default_start(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "start_method": config.get("start_method") or default_start_method()}


multiprocess_forkserver = dg.multiprocess_executor.configured(
    _with_default_start, name="multiprocess", config_schema=dg.multiprocess_executor.config_schema.as_field(),
    description="Dagster's multiprocess executor; steps forked from a forkserver that preloaded the code location",
)
"""The multiprocess executor with the same run config as Dagster's (`max_concurrent`, `retries`,
`start_method`, ...); only the start method's default differs."""


def executor_from_env(name: str | None = None) -> dg.ExecutorDefinition:
    """The executor `name` (default: `FM_PIPELINE_EXECUTOR`, else multiprocess)."""
    name = (name or os.environ.get(EXECUTOR_ENV) or "multiprocess").strip().lower()
    if name == "multiprocess":
        return multiprocess_forkserver
    if name == "in_process":
        return dg.in_process_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor  # an optional dependency: `pip install 'fm-pipeline[k8s]'`

        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected one of {', '.join(EXECUTORS)}")
