"""Resources: where the lake is, and MLflow tracking with exactly one run per asset or op execution.

MLflow is imported when a run starts, not with the code location: loading `fm_pipeline.definitions` (every CLI
command, the forkserver that forks the steps, each Kubernetes pod) would otherwise pay about a second for it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from fm_pipeline.lake import paths

if TYPE_CHECKING:
    import mlflow


class LakeResource(dg.ConfigurableResource):
    """Paths under `$FM_PIPELINE_HOME/lake/<asset_key>/[<partition>/]` (or under `root` when set)."""

    root: str | None = None

    def base(self) -> Path:
        """The lake's root folder."""
        return Path(self.root) if self.root else paths.lake_root()

    def path(self, asset_key: str, partition: str | None = None) -> Path:
        base = self.base()
        return base / asset_key / partition if partition else base / asset_key


class MlflowTracking(dg.ConfigurableResource):
    """Starts one MLflow run per asset/op execution and always ends it (FAILED when the step raises).

    `dagster-mlflow` leaves runs RUNNING when used from assets; this resource owns the run's whole life.
    """

    tracking_uri: str | None = None
    experiment: str = "fm-pipeline"

    def resolved_uri(self) -> str:
        return self.tracking_uri or paths.mlflow_tracking_uri()

    def _experiment_id(self) -> str:
        import mlflow

        existing = mlflow.get_experiment_by_name(self.experiment)
        if existing is not None:
            return existing.experiment_id
        artifacts = None
        if self.resolved_uri().startswith("sqlite:"):
            root = paths.mlflow_artifact_root()
            root.mkdir(parents=True, exist_ok=True)
            artifacts = root.as_uri()
        return mlflow.create_experiment(self.experiment, artifact_location=artifacts)

    @contextmanager
    def start_run(
        self, context: dg.OpExecutionContext | dg.AssetExecutionContext, run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Iterator[mlflow.ActiveRun]:
        """An MLflow run tagged with the Dagster run id, asset key and partition of `context`."""
        import mlflow

        uri = self.resolved_uri()
        if uri.startswith("sqlite:"):
            paths.pipeline_home().joinpath("mlflow").mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        all_tags: dict[str, Any] = {"dagster.run_id": context.run_id, **(tags or {})}
        if context.has_assets_def:
            all_tags["dagster.asset_key"] = "/".join(context.assets_def.key.path)
        if context.has_partition_key:
            all_tags["dagster.partition"] = context.partition_key
        name = run_name or all_tags.get("dagster.asset_key") or context.op_def.name
        with mlflow.start_run(experiment_id=self._experiment_id(), run_name=name, tags=all_tags) as run:
            yield run

    def log_into(
        self, run_id: str, params: Mapping[str, Any] | None = None, metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None, artifacts: Mapping[str | None, Sequence[Path]] | None = None,
    ) -> None:
        """Params, metrics (at step 0), tags and artifacts (by folder in the run, None for its root) into the run
        `run_id`, open or ended: by id, so a run another step started keeps its own start and end."""
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        client = MlflowClient(self.resolved_uri())
        now = get_current_time_millis()
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                         params=[Param(k, str(v)) for k, v in (params or {}).items()],
                         tags=[RunTag(k, v) for k, v in (tags or {}).items()])
        for folder, files in (artifacts or {}).items():
            for path in files:
                client.log_artifact(run_id, str(path), folder)
