"""pretrained_checkpoint's architecture comparison: each variant in `compare` (`dense`, `moe_<N>`) trained at equal
compute beside the published model (library: `training.equal_compute`), each in a nested MLflow run of the train
op's run, and the table in the materialization's metadata. Only the published model is registered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.modeling.checkpoint_files import load_config
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.equal_compute import COLUMNS, comparison_row, variant_config, variant_name

if TYPE_CHECKING:
    import mlflow

FLAT_KEYS = ("val_loss", "val_ppl", "val_bpb", "tokens_per_s", "parameters_total", "parameters_active")
"""Per row, also flat metadata entries `comparison/<model>/<key>` and metrics of the parent MLflow run."""


def train_compared(context: dg.OpExecutionContext, config: TrainConfig, published: dict[str, Any],
                   names: Sequence[str], parent: mlflow.ActiveRun,
                   train_one: Callable[[TrainConfig, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the comparison, the published model's first, then one per variant of `names` trained by
    `train_one(config, mlflow_run_id)` (in-process or under torchrun, as the published model was) into its own
    nested MLflow run; [] without variants. The rows also go into the parent run (`comparison.json`, metrics)."""
    if not names:
        return []
    import mlflow  # in the train op's process, which has it already (see `defs.resources`)

    trained = load_config(Path(published["checkpoint"]))
    rows = [comparison_row(variant_name(trained), published, published=True)]
    for name in names:
        variant = variant_config(config, trained, name)
        context.log.info(f"comparing at equal compute: {name}, {variant.steps} steps, into {variant.out_dir}")
        with mlflow.start_run(run_name=name, nested=True, experiment_id=parent.info.experiment_id,
                              tags={"dagster.run_id": context.run_id, "fm.compare": name}) as child:
            rows.append(comparison_row(name, train_one(variant, child.info.run_id), published=False))
    mlflow.log_dict({"columns": COLUMNS, "rows": rows}, "comparison.json")
    mlflow.log_metrics(_flat(rows))
    return rows


def _flat(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    return {f"comparison/{row['model']}/{key}": float(row[key]) for row in rows for key in FLAT_KEYS
            if row.get(key) is not None}


def comparison_metadata(rows: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    """`comparison` (a table of `COLUMNS`, the published model first) and `comparison/<model>/<key>`; nothing
    when no variant was compared."""
    if not rows:
        return {}
    return {"comparison": dg.MetadataValue.md(markdown_table(rows, COLUMNS)), **_flat(rows)}
