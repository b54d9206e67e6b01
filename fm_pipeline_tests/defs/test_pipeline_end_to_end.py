"""Every asset materialized in-process on the sample corpus, in dependency order, as `make run` does:
every check passes, the planted duplicates leave with the expected survivors, the tokenizer and token
files agree, and MLflow holds the tokenizer's run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pytest
import sentencepiece as spm
from tokenizers import Tokenizer

from fm_pipeline.downstream.tasks import TASK_OF_DOMAIN
from fm_pipeline.lake.lineage import trace
from fm_pipeline.lake.parquet_io import iter_rows, list_shards
from fm_pipeline.materialize import materialize_all
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum
from fm_pipeline_tests.defs.tiny_runs import RUN_CONFIG

pytestmark = pytest.mark.slow
TINY_ADAPTATION = {"ops": {"domain_adapted_checkpoint": {"config": {
    "steps": 8, "compare": ["lora"], "downstream_epochs": 2}}}}
TINY_COMPRESSION = {"ops": {"compressed_model": {"config": {
    "techniques": ["dynamic_int8", "prune_magnitude", "distill", "distill_features"], "recovery_steps": 4,
    "distill_steps": 4, "attention_weight": 0.5, "max_ppl_ratio": 1.5}}}}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dg.DagsterInstance]]:
    home = tmp_path_factory.mktemp("fm_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FM_PIPELINE_HOME", str(home))
        for var in ("MLFLOW_TRACKING_URI", "FM_RAW_CORPUS", "FM_DOMAIN_CORPUS"):
            mp.delenv(var, raising=False)
        with dg.instance_for_test() as instance:
            materialize_all(instance, {**RUN_CONFIG,
                                       "domain_adapted_checkpoint": TINY_ADAPTATION,
                                       "compressed_model": TINY_COMPRESSION})
            yield home, instance


def test_every_asset_check_passes(pipeline):
    _, instance = pipeline
    records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    seen = {(ev.asset_key.to_user_string(), ev.check_name) for ev in evaluations}
    assert [(ev.asset_key.to_user_string(), ev.check_name) for ev in evaluations if not ev.passed] == []
    assert seen >= {
        ("raw_corpus", "accounting"), ("filtered_corpus", "accounting"), ("filtered_corpus", "no_pii_in_kept"),
        ("deduped_corpus", "accounting"), ("balanced_shards", "accounting"), ("balanced_shards", "language_mix"),
        ("balanced_shards", "train_val_disjoint"), ("tokenizer", "round_trip"),
        ("tokenized_corpus", "matches_tokenizer"), ("domain_corpus", "accounting"),
        ("domain_corpus", "train_val_disjoint"),
    }


def test_pretrained_checkpoint_is_published_with_its_evaluation_and_mlflow_run(pipeline):
    home, instance = pipeline
    out = home / "lake" / "pretrained_checkpoint"
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    (mat,) = instance.fetch_materializations(dg.AssetKey("pretrained_checkpoint"), limit=1).records
    meta = mat.asset_materialization.metadata
    for key in ("eval/val_loss", "eval/val_ppl", "eval/val_bpb", "train/tokens_per_s", "mlflow_run_id"):
        assert key in meta, key
    val_loss = meta["eval/val_loss"].value
    assert meta["eval/val_ppl"].value == pytest.approx(math.exp(val_loss))
    assert len(meta["eval/val_bpb_by_lang"].value) >= 5, "the stratified val split covers several languages"
    # cross-lingual transfer: a head trained on English passages, scored on the sample's translations
    table = meta["crosslingual"].value.splitlines()
    assert table[0] == "| lang | passages | accuracy | macro_f1 |"
    assert [row.split("|")[1].strip() for row in table[2:]] == ["de", "en", "es", "fr", "ko"]
    assert {k for k in meta if k.startswith("crosslingual/")} == {
        f"crosslingual/{lang}/accuracy" for lang in ("de", "en", "es", "fr", "ko")}
    assert all(0.0 <= meta[f"crosslingual/{lang}/accuracy"].value <= 1.0 for lang in ("de", "en", "es", "fr", "ko"))
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow/mlflow.db")
    run = mlflow.get_run(meta["mlflow_run_id"].value)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster.asset_key"] == "pretrained_checkpoint"
    assert run.data.metrics["eval/val_bpb"] == pytest.approx(meta["eval/val_bpb"].value)
    first_loss = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")[0].value
    assert val_loss < first_loss - 1, "training went on lowering the loss after its first logged steps"
    versions = mlflow.MlflowClient().search_model_versions("name='fm-pipeline-pretrained'")
    assert [v.run_id for v in versions] == [run.info.run_id]


def test_filtered_metadata_and_dedup_survivors(pipeline):
    home, instance = pipeline
    (filtered,) = [r for r in instance.fetch_materializations(dg.AssetKey("filtered_corpus"), limit=10).records
                   if r.partition_key == "common_crawl"]
    meta = filtered.asset_materialization.metadata
    assert meta["rejected_by_reason"].value["adult:url"] == 2
    assert "| reason | id | lang | text |" in meta["rejected_samples"].value
    lake = home / "lake"
    removed = {r["id"]: r["duplicate_of"] for r in iter_rows(list_shards(lake / "deduped_corpus" / "removed"))}
    assert removed["en-sourdough-starter-mirror"] == "en-sourdough-starter"
    assert removed["zh-news-high-speed-rail-mirror"] == "zh-news-high-speed-rail"
    assert removed["en-product-backpack"] == "en-product-backpack-syndicated", "same source: the longer text survives"
    assert removed["es-noticias-sequia"] == "es-noticias-sequia-repost"
    assert len(removed) == 14
    train = {r["id"].split("#rep")[0] for r in iter_rows(list_shards(lake / "balanced_shards" / "train"), ["id"])}
    val = {r["id"] for r in iter_rows(list_shards(lake / "balanced_shards" / "val"), ["id"])}
    assert train and val and not train & val


def test_tokenizer_export_and_token_files_agree(pipeline):
    home, instance = pipeline
    lake = home / "lake"
    model = lake / "tokenizer" / "tokenizer.model"
    sp = spm.SentencePieceProcessor(model_file=str(model))
    assert [sp.id_to_piece(i) for i in range(5)] == ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "<MASK>"]
    hf = Tokenizer.from_file(str(lake / "tokenizer" / "tokenizer.json"))
    val_rows = list(iter_rows(list_shards(lake / "balanced_shards" / "val")))
    for row in val_rows:
        assert hf.encode(row["text"]).ids == sp.encode(row["text"])
    packed = PackedTokens.open(lake / "tokenized_corpus", "val", expected_checksum=tokenizer_checksum(model))
    assert len(packed) == len(val_rows)
    first = packed.document(0)
    assert first[0] == 2 and first[-1] == 3
    assert sp.decode(np.asarray(first[1:-1]).tolist()) == val_rows[0]["text"]
    (mat,) = instance.fetch_materializations(dg.AssetKey("tokenizer"), limit=1).records
    run_id = mat.asset_materialization.metadata["mlflow_run_id"].value
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow/mlflow.db")
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["tokenizer/round_trip_failures"] == 0
    assert run.data.params["tokenizer.sha256"] == tokenizer_checksum(model)
    assert json.loads((lake / "tokenized_corpus" / "train.json").read_text())["tokenizer_sha256"] == \
        tokenizer_checksum(model)


def test_domain_corpus_has_train_and_val_for_every_domain(pipeline):
    home, instance = pipeline
    records = instance.fetch_materializations(dg.AssetKey("domain_corpus"), limit=10).records
    by_domain = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert sorted(by_domain) == ["biomedical", "financial", "legal", "scientific"]
    for domain, meta in by_domain.items():
        assert meta["train_documents"].value >= 8 and meta["val_documents"].value == 2, domain
        assert meta["in_general_corpus"].value == 0, "the sample domains are not in the sample general corpus"
    assert by_domain["legal"]["rejected_by_reason"].value == {"c4:too_few_sentences": 2,
                                                              "gopher_repetition:dup_5gram_frac": 1}


def test_domain_adapted_checkpoint_compares_strategies_and_logs_nested_runs(pipeline):
    home, instance = pipeline
    records = instance.fetch_materializations(dg.AssetKey("domain_adapted_checkpoint"), limit=10).records
    by_domain = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert sorted(by_domain) == ["biomedical", "financial", "legal", "scientific"]
    for domain, meta in by_domain.items():
        assert meta["adapt/strategy"].value == "dapt"
        assert meta["eval/domain_ppl_after"].value < meta["eval/domain_ppl_before"].value, domain
        assert meta["eval/general_ppl_before"].value == pytest.approx(
            by_domain["biomedical"]["eval/general_ppl_before"].value), "every domain starts from one checkpoint"
        table = meta["comparison"].value
        assert table.splitlines()[0].startswith("| strategy | trainable_params |")
        assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == ["lora", "dapt"]
        assert meta["registered_model_version"].value == f"fm-pipeline-{domain}/1"
        task = TASK_OF_DOMAIN[domain]
        downstream = meta["downstream"].value.splitlines()
        assert downstream[0] == "| task | strategy | checkpoint | f1 | change | wall_s |"
        assert [[c.strip() for c in line.split("|")[1:4]] for line in downstream[2:]] == [
            [task, "discriminative_lr", "pretrained (baseline)"], [task, "discriminative_lr", "domain-adapted"]]
        for key in ("f1_before", "f1_after"):
            assert 0.0 <= meta[f"downstream/{task}/{key}"].value <= 1.0
        assert (home / "lake" / "domain_adapted_checkpoint" / domain / "model.safetensors").exists()
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow/mlflow.db")
    parent = mlflow.get_run(by_domain["legal"]["mlflow_run_id"].value)
    children = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["adapt.strategy"] for c in children) == ["dapt", "lora"]
    assert all("train/loss" in c.data.metrics for c in children)
    assert parent.data.metrics["downstream/cuad_clauses/f1_after"] == by_domain["legal"][
        "downstream/cuad_clauses/f1_after"].value


def test_compressed_model_publishes_a_candidate_within_budget_that_generates(pipeline):
    home, instance = pipeline
    records = instance.fetch_materializations(dg.AssetKey("compressed_model"), limit=10).records
    by_domain = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert sorted(by_domain) == ["biomedical", "financial", "legal", "scientific"]
    meta = by_domain["legal"]
    table = meta["comparison"].value
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        rows[cells["method"].split(" (published)")[0].strip("*")] = cells
    assert list(rows) == ["fp32", "dynamic_int8", "prune_magnitude", "distill", "distill_features"]
    assert meta["distill_features/loss_weights"].value == {"temperature": 2.0, "alpha": 0.5, "hidden_weight": 1.0,
                                                           "attention_weight": 0.5}
    (published,) = [name for name, cells in rows.items() if cells["method"].endswith("(published)")]
    assert meta["compression/method"].value == published
    assert float(rows["dynamic_int8"]["size ×"]) < 0.5, "int8 weights take well under half the fp32 bytes"
    assert int(rows["distill"]["weights"].replace(",", "")) < int(rows["fp32"]["weights"].replace(",", ""))
    eligible = {name: float(cells["size ×"]) for name, cells in rows.items() if float(cells["ppl ×"]) <= 1.5}
    assert meta["compression/size_ratio"].value == pytest.approx(eligible[published], abs=1e-3)
    summary = json.loads((home / "lake" / "compressed_model" / "legal" / "metrics.json").read_text())
    within = {c["name"]: c["metrics"] for c in summary["candidates"] if c["metrics"]["domain_ppl_ratio"] <= 1.5}
    fast = {name: m for name, m in within.items() if m["speedup"] >= 1.3}
    if fast:  # the default rule: the smallest of those at least 1.3x faster than fp32, else the fastest
        assert meta["compression/rule"].value == "size_at_speed"
        assert within[published]["size_bytes"] == min(m["size_bytes"] for m in fast.values())
    else:
        assert meta["compression/rule"].value == "fastest"
        assert within[published]["latency_ms_per_token"] == min(m["latency_ms_per_token"] for m in within.values())
    assert meta["compression/reason"].value == summary["reason"] and meta["compression/min_speedup"].value == 1.3
    assert "data:image/png;base64," in meta["size_vs_ppl"].value
    assert meta["registered_model_version"].value == "fm-pipeline-legal-compressed/1"
    out = home / "lake" / "compressed_model" / "legal"
    from fm_pipeline.compression.generate import generate

    text = generate(out, out / "tokenizer.model", "The parties agree", max_new_tokens=8, temperature=0)
    assert text == generate(out, out / "tokenizer.model", "The parties agree", max_new_tokens=8, temperature=0)
    assert text, "greedy decoding of the published model continues the prompt"
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow/mlflow.db")
    parent = mlflow.get_run(meta["mlflow_run_id"].value)
    children = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["compression.method"] for c in children) == [
        "distill", "distill_features", "dynamic_int8", "fp32", "prune_magnitude"]


def test_compressed_model_traces_back_to_the_raw_and_domain_files(pipeline):
    home, _ = pipeline
    found = trace(home / "lake" / "compressed_model" / "legal")
    assert found.consistent, found.problems
    assert {(s["asset"], s["partition"]) for s in found.stages} >= {
        ("compressed_model", "legal"), ("domain_adapted_checkpoint", "legal"), ("domain_corpus", "legal"),
        ("pretrained_checkpoint", None), ("tokenized_corpus", None), ("balanced_shards", None),
        ("raw_corpus", "books"), ("raw_corpus", "common_crawl")}
    fed = [f.path for f in found.fed("train")]
    for folder in ("/domain/legal/", "/raw/books/", "/raw/common_crawl/"):
        assert any(folder in path for path in fed), f"no file under {folder} fed the model: {fed}"
    assert not any("/domain/biomedical/" in path for path in fed), "another domain's files did not feed it"
    assert found.tokenizer and found.tokenizer["path"].endswith("tokenizer/tokenizer.model")


def test_balanced_shards_registers_language_partitions_and_the_default_run_adapts_none(pipeline):
    _, instance = pipeline
    (mat,) = instance.fetch_materializations(dg.AssetKey("balanced_shards"), limit=1).records
    languages = mat.asset_materialization.metadata["language_partitions"].value
    assert instance.get_dynamic_partitions("language") == languages
    assert {"en", "de", "fr", "es"} <= set(languages) and "und" not in languages
    assert not instance.fetch_materializations(dg.AssetKey("language_adapted_checkpoint"), limit=1).records
