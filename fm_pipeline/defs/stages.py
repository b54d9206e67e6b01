"""The end of every data stage, the same way: the lineage record, the data version, one MLflow run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from fm_pipeline.defs.metadata import lake_path, mlflow_metadata
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.lake.fingerprint import HashCache, data_files
from fm_pipeline.lake.lineage import RECORD, write_stage_record


@dataclass
class StageResult:
    data_version: str
    run_id: str
    record: dict[str, Any]

    def metadata(self, out: Path) -> dict[str, Any]:
        """The lake path, the MLflow run and the data version, for the materialization."""
        return {**mlflow_metadata(self.run_id), "data_version": self.data_version, "path": lake_path(out)}


def finish_stage(
    context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowTracking, *, out: Path,
    inputs: Sequence[Path], code_version: str, params: dict[str, Any], metrics: dict[str, float],
    outputs: Sequence[Path] | None = None, data_version: str | None = None,
    splits: dict[str, Sequence[Path]] | None = None, provenance: Path | None = None,
    extra: dict[str, Any] | None = None, artifacts: Sequence[Path] = (), cache: HashCache | None = None,
) -> StageResult:
    """Write `out/_lineage.json` (inputs, outputs and their hashes; the data version defaults to the hash of the
    output data files), then log one MLflow run with `params`, `metrics`, the record and `artifacts`."""
    asset = context.assets_def.key.to_user_string()
    partition = context.partition_key if context.has_partition_key else None
    record = write_stage_record(
        out, asset=asset, partition=partition, lake_root=lake.base(), code_version=code_version,
        inputs=inputs, outputs=data_files(out) if outputs is None else outputs, data_version=data_version,
        splits=splits, provenance=provenance, extra=extra, cache=cache,
    )
    run_id = mlflow_tracking.log_stage(
        context, params={**params, "code_version": code_version},
        metrics={**metrics}, artifacts=[out / RECORD, *artifacts],
        tags={"fm.data_version": record["data_version"]},
    )
    return StageResult(record["data_version"], run_id, record)
