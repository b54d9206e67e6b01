"""language_adapted_checkpoint materialized for one language partition on a tiny lake: balanced shards of the
sample books (en, de, fr, es) with the sample's German and English reference articles (a translation pair),
the tiny tokenizer and a tiny pretrained checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fm_pipeline.definitions import defs
from fm_pipeline.defs.partitions import LANGUAGE_PARTITIONS, adaptable_languages
from fm_pipeline_tests.adaptation.conftest import domain_data
from fm_pipeline_tests.adaptation.test_language import reference_rows

__all__ = ["domain_data"]
KEY = dg.AssetKey("language_adapted_checkpoint")


def test_adaptable_languages_need_train_text_and_val_documents():
    assert adaptable_languages({"en": 10, "de": 5, "und": 7, "fr": 0, "ja": 3}, {"en": 2, "de": 1, "und": 1, "fr": 1}) \
        == ["de", "en"]


def tiny_lake(home: Path, domain_data, tiny_corpus) -> Path:
    lake = home / "lake"
    extra = [r for r in reference_rows() if r["lang"] in ("en", "de")]
    for split in ("train", "val"):
        rows = pq.read_table(tiny_corpus.root / "shards" / split / "part-00000.parquet").to_pylist()
        rows = [{**r, "meta": "{}"} for r in rows] + (extra if split == "train" else [])
        (lake / "balanced_shards" / split).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), lake / "balanced_shards" / split / "part-00000.parquet")
    (lake / "tokenizer").mkdir()
    shutil.copyfile(tiny_corpus.tokenizer, lake / "tokenizer" / "tokenizer.model")
    shutil.copytree(domain_data.checkpoint, lake / "pretrained_checkpoint")
    return lake


def test_materializes_one_language_partition_with_forgetting_and_comparison(fm_home, domain_data, tiny_corpus):
    lake = tiny_lake(fm_home, domain_data, tiny_corpus)
    run_config = {"ops": {"language_adapted_checkpoint": {"config": {
        "steps": 6, "compare": ["adapter", "alignment"]}}}}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(LANGUAGE_PARTITIONS, ["de", "en", "es", "fr"])
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, asset_selection=[KEY], partition_key="de",
                                        run_config=run_config)
        assert result.success
        (record,) = instance.fetch_materializations(KEY, limit=5).records
        (check,) = result.get_asset_check_evaluations()
    assert record.partition_key == "de"
    meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    out = lake / "language_adapted_checkpoint" / "de"
    assert {"model.safetensors", "config.json", "_lineage.json"} <= {p.name for p in out.iterdir()}
    saved = json.loads((out / "language_adapt_result.json").read_text())
    assert meta["adapt/strategy"] == "continual" and meta["adapt/language"] == "de"
    assert meta["eval/lang_ppl_before"] == saved["before"]["de"]["val_ppl"]
    assert meta["eval/lang_ppl_after"] == saved["after"]["de"]["val_ppl"]
    assert meta["adapt/parallel_pairs"] == 4
    forgetting = meta["forgetting"].splitlines()
    assert [line.split("|")[1].strip() for line in forgetting[2:]] == ["en", "es", "fr"]
    comparison = meta["comparison"].splitlines()
    assert [line.split("|")[1].strip() for line in comparison[2:]] == ["adapter", "alignment", "continual"]
    candidates = lake / "language_adapted_checkpoint" / "_candidates" / "de"
    assert (candidates / "adapter" / "language_adapter.safetensors").is_file()
    assert check.check_name == "language_improved_others_kept"
    assert check.passed == (meta["eval/lang_bpb_after"] < meta["eval/lang_bpb_before"]
                            and meta["eval/max_forgetting"] < 0.10)
    lineage = json.loads((out / "_lineage.json").read_text())
    assert lineage["asset"] == "language_adapted_checkpoint" and lineage["partition"] == "de"
    mlflow.set_tracking_uri(f"sqlite:///{fm_home}/mlflow/mlflow.db")
    parent = mlflow.get_run(meta["mlflow_run_id"])
    children = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["adapt.strategy"] for c in children) == ["adapter", "alignment", "continual"]
    assert all("train/loss" in c.data.metrics and "eval/max_forgetting" in c.data.metrics for c in children)
    # the published checkpoint, and only it, is a version of the language's registered model
    assert meta["registered_model_version"] == "fm-pipeline-lang-de/1"
    (version,) = mlflow.MlflowClient().search_model_versions("name='fm-pipeline-lang-de'")
    (published,) = [c for c in children if c.data.tags["adapt.strategy"] == "continual"]
    assert (int(version.version), version.run_id) == (1, published.info.run_id)
    assert version.source == f"{published.info.artifact_uri}/checkpoint"
    assert published.data.tags["registered_model_version"] == "fm-pipeline-lang-de/1"
    assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == ["fm-pipeline-lang-de"]


@pytest.mark.parametrize("strategy", ["alignment"])
def test_alignment_without_parallel_text_fails_with_a_reason(fm_home, domain_data, tiny_corpus, strategy):
    tiny_lake(fm_home, domain_data, tiny_corpus)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(LANGUAGE_PARTITIONS, ["fr"])
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[KEY], partition_key="fr", raise_on_error=False,
            run_config={"ops": {"language_adapted_checkpoint": {"config": {"strategy": strategy, "steps": 2}}}})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "no 'fr' document in balanced_shards translates" in failure.step_failure_data.error.message
