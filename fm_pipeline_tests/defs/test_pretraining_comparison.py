"""pretrained_checkpoint with `compare`: the sparse counterpart trains at equal compute beside the published dense
model, in a nested MLflow run, and the comparison table lands in the materialization's metadata; only the dense
model is published and registered."""

from __future__ import annotations

import json

import dagster as dg
import mlflow

from fm_pipeline.defs.resources import MlflowTracking
from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.training.equal_compute import COLUMNS
from fm_pipeline_tests.defs.materialize_pretraining import materialize
from fm_pipeline_tests.defs.test_resume_pretraining import RUN_CONFIG, build_lake


def _with(**settings) -> dict:
    run_config = json.loads(json.dumps(RUN_CONFIG))
    run_config["ops"]["pretrained_checkpoint"]["ops"]["prepare_pretraining"]["config"].update(settings)
    return run_config


def test_the_sparse_counterpart_is_compared_in_the_metadata_and_a_nested_run(tiny_corpus, fm_home):
    build_lake(tiny_corpus, fm_home / "lake")
    result = materialize(dg.DagsterInstance.ephemeral(), _with(compare=["moe_2", "dense", "moe_2"]))
    assert result.success
    (mat,) = result.asset_materializations_for_node("pretrained_checkpoint")
    meta = {k: v.value for k, v in mat.metadata.items()}
    table = meta["comparison"].splitlines()
    assert table[0] == "| " + " | ".join(COLUMNS) + " |"
    rows = [dict(zip(COLUMNS, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in table[2:]]
    assert [(r["model"], r["published"], r["moe_experts"]) for r in rows] == [("dense", "True", "0"),
                                                                               ("moe_2", "False", "2")]
    dense, sparse = rows
    assert dense["steps"] == sparse["steps"] == "120" and dense["tokens_seen"] == sparse["tokens_seen"]
    assert int(sparse["parameters_active"]) - int(dense["parameters_active"]) == 2 * 32 * 2  # the routers
    assert float(dense["val_loss"]) == round(meta["eval/val_loss"], 4)
    assert meta["comparison/dense/val_loss"] == float(dense["val_loss"])
    assert meta["comparison/moe_2/val_ppl"] == float(sparse["val_ppl"])
    assert dense["moe_max_load"] == "" and 0.5 <= float(sparse["moe_max_load"]) <= 1.0
    assert float(sparse["moe_dropped"]) >= 0.0

    lake = fm_home / "lake"
    assert "moe_experts" not in json.loads((lake / "pretrained_checkpoint" / ckpt.CONFIG).read_text())
    candidate = lake / "pretrained_checkpoint.candidates" / "moe_2"
    assert json.loads((candidate / ckpt.CONFIG).read_text())["moe_experts"] == 2
    assert (candidate / ckpt.WEIGHTS).is_file()

    mlflow.set_tracking_uri(MlflowTracking().resolved_uri())
    parent = mlflow.get_run(meta["mlflow_run_id"])
    assert parent.data.metrics["comparison/moe_2/val_loss"] == float(sparse["val_loss"])
    (child,) = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert child.data.tags["fm.compare"] == "moe_2" and child.info.status == "FINISHED"
    assert round(child.data.metrics["eval/val_loss"], 4) == float(sparse["val_loss"])
    assert child.data.params["model.moe_experts"] == "2"
    versions = mlflow.MlflowClient().search_model_versions("name='fm-pipeline-pretrained'")
    assert [v.run_id for v in versions] == [parent.info.run_id], "only the published model is registered"


def test_an_unknown_architecture_fails_before_training(tiny_corpus, fm_home):
    build_lake(tiny_corpus, fm_home / "lake")
    result = materialize(dg.DagsterInstance.ephemeral(), _with(compare=["sparse"]))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "pretrained_checkpoint.prepare_pretraining"
    assert "unknown architecture variant 'sparse'" in failure.step_failure_data.error.message
