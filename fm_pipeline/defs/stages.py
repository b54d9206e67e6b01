"""The end of every asset, the same way: the lineage record `_lineage.json`, one MLflow run that carries it, and
the data version and metadata that name both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from fm_pipeline.defs.metadata import lake_path, mlflow_metadata
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.lake.fingerprint import HashCache, data_files
from fm_pipeline.lake.layout import LINEAGE_RECORD
from fm_pipeline.lake.lineage import write_stage_record


@dataclass
class StageResult:
    data_version: str
    run_id: str
    record: dict[str, Any]

    def metadata(self, path: Path, *, with_data_version: bool = True) -> dict[str, Any]:
        """The MLflow run, the input stages' data versions, the data version and the lake path, for the
        materialization; without the data version for a graph asset, whose data version Dagster derives."""
        versions = {f"lineage/{asset}": v for asset, v in sorted(self.record["input_versions"].items())}
        return {**mlflow_metadata(self.run_id), **versions,
                **({"data_version": self.data_version} if with_data_version else {}), "path": lake_path(path)}


def finish_stage(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, lake: LakeResource, mlflow_tracking: MlflowTracking,
    *, out: Path, inputs: Sequence[Path | dict[str, Any]], code_version: str, params: dict[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None, outputs: Sequence[Path] | None = None, data_version: str | None = None,
    splits: dict[str, Sequence[Path]] | None = None, provenance: Path | None = None,
    input_versions: dict[str, str] | None = None, extra: dict[str, Any] | None = None, artifacts: Sequence[Path] = (),
    artifact_folders: Mapping[str, Sequence[Path]] | None = None, cache: HashCache | None = None,
    run_id: str | None = None,
) -> StageResult:
    """Write `out/_lineage.json` (inputs, outputs and their hashes; the data version defaults to the hash of the
    output data files), then log into the asset's one MLflow run: `run_id`, which a model asset opens before it
    trains (for nested runs and per-step metrics), else a new run. It gets `params` with the code version (a
    model asset logs its own config as it trains), `metrics`, the record and `artifacts` at its root, the files
    of `artifact_folders` under their folder names, and tags with the data version and the input versions."""
    record = write_stage_record(
        out, asset=context.assets_def.key.to_user_string(),
        partition=context.partition_key if context.has_partition_key else None, lake_root=lake.base(),
        code_version=code_version, inputs=inputs, outputs=data_files(out) if outputs is None else outputs,
        data_version=data_version, splits=splits, provenance=provenance, input_versions=input_versions,
        extra=extra, cache=cache,
    )
    tags = {"fm.data_version": record["data_version"],
            **{f"fm.input_version.{asset}": v for asset, v in record["input_versions"].items()}}
    logged = {"params": {**params, "code_version": code_version} if params is not None else None,
              "metrics": metrics, "tags": tags,
              "artifacts": {None: [out / LINEAGE_RECORD, *artifacts], **(artifact_folders or {})}}
    if run_id is None:
        with mlflow_tracking.start_run(context, tags=tags) as run:
            mlflow_tracking.log_into(run.info.run_id, **logged)
        run_id = run.info.run_id
    else:
        mlflow_tracking.log_into(run_id, **logged)
    return StageResult(record["data_version"], run_id, record)
