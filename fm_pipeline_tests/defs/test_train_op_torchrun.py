import dagster as dg
import mlflow
import pytest

from fm_pipeline.defs.assets.pretrained_checkpoint import train_model
from fm_pipeline.defs.resources import MlflowTracking
from fm_pipeline_tests.training.tiny_corpus import tiny_config


@pytest.mark.slow
def test_train_op_launches_torchrun_through_pipes(tiny_corpus, fm_home, tmp_path, monkeypatch):
    """devices=2: the op runs torchrun (two gloo ranks) as a Pipes subprocess; rank 0's progress lands in the
    op's Dagster log, its result comes back as a Pipes message, and its metrics in the op's MLflow run. The
    compared sparse model trains under torchrun too, into a nested run."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = tiny_config(tiny_corpus, tmp_path / "out", steps=6, log_every=3, eval_every=3, checkpoint_every=3)

    @dg.op(out=dg.Out(dict))
    def plan() -> dict:
        return {"train_config": config.to_dict(), "devices": 2, "compare": ["moe_2"]}

    @dg.job(resource_defs={"mlflow_tracking": MlflowTracking()})
    def distributed():
        train_model(plan())

    instance = dg.DagsterInstance.ephemeral()
    result = distributed.execute_in_process(instance=instance)
    assert result.success
    out = result.output_for_node("train_model")
    assert out["step"] == 6 and out["tokens_seen"] == 6 * 2 * 8 * 32
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("step 6: loss" in line for line in logs)
    assert any("eval at step 3:" in line for line in logs)

    mlflow.set_tracking_uri(MlflowTracking().resolved_uri())
    run = mlflow.get_run(out["mlflow_run_id"])
    assert run.data.metrics["train/loss"] > 0 and "eval/val_loss" in run.data.metrics
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster.run_id"] == result.run_id
    dense, sparse = out["comparison"]
    assert (dense["model"], sparse["model"]) == ("dense", "moe_2")
    assert dense["tokens_seen"] == sparse["tokens_seen"] == out["tokens_seen"]
    (child,) = mlflow.search_runs(experiment_ids=[run.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert child.data.tags["fm.compare"] == "moe_2" and "train/moe_max_load" in child.data.metrics
    assert "registered_model_version" not in child.data.tags
