"""The Definitions object loads, carries the contract's assets and partitions, and materializes raw_corpus."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from fm_pipeline.definitions import defs
from fm_pipeline.lake.paths import SOURCES

REPO = Path(__file__).resolve().parents[2]


def test_definitions_load_with_contract_assets_and_resources():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert "raw_corpus" in keys
    assert graph.get(dg.AssetKey("raw_corpus")).partitions_def.get_partition_keys() == list(SOURCES)
    language = graph.get(dg.AssetKey("language_adapted_checkpoint"))
    assert language.partitions_def == dg.DynamicPartitionsDefinition(name="language")
    assert {dg.AssetKey("balanced_shards"), dg.AssetKey("pretrained_checkpoint")} <= language.parent_keys
    assert {"lake", "mlflow_tracking"} <= set(defs.resources)
    defs.resolve_implicit_global_asset_job_def()


def test_workspace_and_instance_files():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "fm_pipeline.definitions"
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert instance["storage"]["sqlite"]["base_dir"] == {"env": "DAGSTER_HOME"}
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    assert instance["concurrency"]["runs"]["max_concurrent_runs"] >= 1


def test_instance_yaml_is_valid_dagster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        instance.event_log_storage.set_concurrency_slots("gpu", 1)
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
    assert (home / "history").is_dir(), "run storage lives under DAGSTER_HOME"


@pytest.mark.slow
def test_materialize_all_source_partitions_in_process(fm_home: Path):
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        for source in SOURCES:
            result = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("raw_corpus")],
                                            partition_key=source)
            assert result.success
            (mat,) = result.asset_materializations_for_node("raw_corpus")
            assert mat.metadata["kept"].value > 0, source
            checks = result.get_asset_check_evaluations()
            assert [(c.check_name, c.passed) for c in checks] == [("accounting", True)]
            assert (fm_home / "lake" / "raw_corpus" / source / "part-00000.parquet").exists()
