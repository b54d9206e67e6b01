"""Where steps run. The default is Dagster's: the multiprocess executor, every core of one machine. With
`FM_PIPELINE_EXECUTOR=k8s` (and `pip install 'fm-pipeline[k8s]'`), every step runs in its own Kubernetes pod
through `dagster-k8s`'s `k8s_job_executor`, configured per run by `deploy/k8s/run_config.yaml`; the training op
asks for its GPU through its `dagster-k8s/config` tag. `in_process` runs every step in the run's process."""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "FM_PIPELINE_EXECUTOR"
EXECUTORS = ("multiprocess", "in_process", "k8s")


def executor_from_env(name: str | None = None) -> dg.ExecutorDefinition | None:
    """The executor `name` (default: `FM_PIPELINE_EXECUTOR`, else multiprocess); None means Dagster's default."""
    name = (name or os.environ.get(EXECUTOR_ENV) or "multiprocess").strip().lower()
    if name == "multiprocess":
        return None
    if name == "in_process":
        return dg.in_process_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor  # an optional dependency: `pip install 'fm-pipeline[k8s]'`

        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected one of {', '.join(EXECUTORS)}")
