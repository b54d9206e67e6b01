"""The MLflow resource: one run per execution, tagged with Dagster ids, always ended."""

from pathlib import Path

import dagster as dg
import mlflow
import pytest

from fm_pipeline.defs.resources import LakeResource, MlflowTracking


def test_lake_paths_follow_the_contract(fm_home: Path):
    lake = LakeResource()
    assert lake.path("raw_corpus", "books") == fm_home / "lake" / "raw_corpus" / "books"
    assert lake.path("tokenizer") == fm_home / "lake" / "tokenizer"
    assert LakeResource(root="/data/lake").path("deduped_corpus") == Path("/data/lake/deduped_corpus")


def _asset_using_mlflow(fail: bool) -> dg.AssetsDefinition:
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["books"]), name="tracked")
    def tracked(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking) -> None:
        with mlflow_tracking.start_run(context):
            mlflow.log_metric("loss", 1.5)
            if fail:
                raise RuntimeError("training diverged")

    return tracked


@pytest.mark.parametrize("fail", [False, True])
def test_one_run_per_execution_tagged_and_ended(fm_home: Path, fail: bool):
    tracking = MlflowTracking(experiment="test-exp")
    with dg.instance_for_test() as instance:
        result = dg.materialize([_asset_using_mlflow(fail)], partition_key="books", instance=instance,
                                resources={"mlflow_tracking": tracking}, raise_on_error=False)
    assert result.success is (not fail)
    assert tracking.resolved_uri().startswith(f"sqlite:///{fm_home}/mlflow/")
    mlflow.set_tracking_uri(tracking.resolved_uri())
    runs = mlflow.search_runs(experiment_names=["test-exp"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == ("FAILED" if fail else "FINISHED")
    assert run.data.tags["dagster.run_id"] == result.run_id
    assert run.data.tags["dagster.asset_key"] == "tracked"
    assert run.data.tags["dagster.partition"] == "books"
    assert run.data.metrics["loss"] == 1.5
    assert mlflow.active_run() is None
    assert run.info.artifact_uri.startswith((fm_home / "mlflow" / "artifacts").as_uri())
