"""Fan-out by shard through Dagster: filtered_corpus, deduped_corpus and tokenized_corpus materialized with the
multiprocess executor, one step per group of shards, publish exactly the files of the library's single-step path;
a group that fails is the only step a re-execution from failure runs again."""

from __future__ import annotations

import hashlib
import shutil
from multiprocessing import forkserver
from pathlib import Path

import dagster as dg
import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository

from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.lake.fanout import groups_root, plan_groups
from fm_pipeline.lake.layout import KEPT, LINEAGE_RECORD, TOKENIZER_MODEL
from fm_pipeline.lake.lineage import read_stage_record
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.lake.paths import SOURCES, raw_corpus_root
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline_tests.training.tiny_corpus import LANGS, paragraphs, train_tokenizer

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
THREE_GROUPS = {"max_steps": 3, "shard_group_mb": 0.001, "processes": 1}
ONE_GROUP = {"max_steps": 1, "processes": 1}


@pytest.fixture(autouse=True)
def fresh_forkserver():
    """Each test its own forkserver: the steps of a run fork from it and inherit its environment, and a server
    kept from the previous test would still hold that test's FM_PIPELINE_HOME (a run launched by the Dagster
    UI starts in a new process, so it always gets a fresh one)."""
    yield
    forkserver._forkserver._stop()  # the standard library's own tests stop it this way


def _multiprocess_job() -> dg.ReconstructableJob:
    """The project's asset job as a code location loads it: the multiprocess executor (the default) starts
    each step in its own process, forked from a server that imported `fm_pipeline.definitions` once."""
    repo = ReconstructableRepository.for_module("fm_pipeline.definitions", "defs", str(REPO))
    return repo.get_reconstructable_job("__ASSET_JOB")


def _run(instance: dg.DagsterInstance, asset: str, config: dict, partition: str | None = None,
         reexecute: str | None = None) -> dg.ExecuteJobResult:
    options = dg.ReexecutionOptions.from_failure(reexecute, instance) if reexecute else None
    return dg.execute_job(
        _multiprocess_job(), instance=instance, asset_selection=[dg.AssetKey(asset)],
        run_config=None if reexecute else {"ops": {asset: {"config": config}}},
        tags={"dagster/partition": partition} if partition else None,
        reexecution_options=options)


def _steps(result: dg.ExecuteJobResult, event: str) -> list[str]:
    return sorted(e.step_key for e in result.all_events if e.event_type_value == event)


def _digests(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


def _raw_common_crawl(lake: Path) -> list[Path]:
    """raw_corpus/common_crawl of the sample corpus in 20 kB shards: enough shards for three groups."""
    ingest_source("common_crawl", raw_corpus_root() / "common_crawl", lake / "raw_corpus" / "common_crawl",
                  IngestConfig(shard_bytes=20_000))
    return list_shards(lake / "raw_corpus" / "common_crawl")


def test_filtered_corpus_fans_out_one_step_per_group_with_the_single_step_files(fm_home: Path, tmp_path: Path):
    lake = fm_home / "lake"
    shards = _raw_common_crawl(lake)
    single = tmp_path / "single"
    filter_source("common_crawl", shards, single, FilterConfig(processes=1))
    out = lake / "filtered_corpus" / "common_crawl"
    with dg.instance_for_test() as instance:
        result = _run(instance, "filtered_corpus", THREE_GROUPS, partition="common_crawl")
        assert result.success
        groups = [f"filtered_corpus.filter_shard_group[group_0000{i}]" for i in range(3)]
        assert _steps(result, "STEP_SUCCESS") == sorted([
            "filtered_corpus.plan_filtered_corpus", *groups, "filtered_corpus.publish_filtered_corpus"])
        pids = {e.pid for e in result.all_events if e.event_type_value == "STEP_START" and e.step_key in groups}
        assert len(pids) == 3, "each group ran in its own process"
        assert _digests(out, skip=(LINEAGE_RECORD,)) == _digests(single), "every file, byte for byte"
        assert not groups_root(out).exists()

        (mat,) = instance.fetch_materializations(dg.AssetKey("filtered_corpus"), limit=5).records
        meta = mat.asset_materialization.metadata
        record = read_stage_record(out)
        assert mat.asset_materialization.partition == "common_crawl"
        assert mat.asset_materialization.tags["dagster/data_version"] == record["data_version"]
        assert (meta["documents_in"].value, meta["fanout/groups"].value, meta["fanout/groups_reused"].value) == \
            (83, 3, 0)
        assert len(record["inputs"]) == len(shards)
        checks = {(c.check_name, c.passed) for c in instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
            for c in [c.event_log_entry.dagster_event.event_specific_data]}
        assert checks == {("accounting", True), ("no_pii_in_kept", True)}
        mlflow.set_tracking_uri(f"sqlite:///{fm_home}/mlflow/mlflow.db")
        runs = mlflow.search_runs(experiment_names=["fm-pipeline"], output_format="list")
        assert [(r.info.run_id, r.info.status, r.data.tags["dagster.asset_key"], r.data.params["source"])
                for r in runs] == [(meta["mlflow_run_id"].value, "FINISHED", "filtered_corpus", "common_crawl")]

        fanned = _digests(out)
        job = _multiprocess_job().get_definition()  # in process, as `make run` materializes
        again = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("filtered_corpus")],
                                       partition_key="common_crawl",
                                       run_config={"ops": {"filtered_corpus": {"config": ONE_GROUP}}})
        assert again.success
        assert _digests(out) == fanned, "one group or three: the same files, the lineage record included"


def test_a_failed_group_is_the_only_step_a_reexecution_from_failure_runs(fm_home: Path, tmp_path: Path):
    lake = fm_home / "lake"
    shards = _raw_common_crawl(lake)
    single = tmp_path / "single"
    filter_source("common_crawl", shards, single, FilterConfig(processes=1))
    (middle,) = [g for g in plan_groups(shards, 1000, 3) if g.index == 1]
    broken = Path(middle.shards[0])
    good = broken.read_bytes()
    broken.write_bytes(b"\0" * len(good))  # same size, so the same groups; not Parquet any more
    out = lake / "filtered_corpus" / "common_crawl"
    with dg.instance_for_test() as instance:
        failed = _run(instance, "filtered_corpus", THREE_GROUPS, partition="common_crawl")
        assert not failed.success
        assert _steps(failed, "STEP_FAILURE") == ["filtered_corpus.filter_shard_group[group_00001]"]
        assert _steps(failed, "STEP_UP_FOR_RETRY") == [], "an unreadable shard is not retried"
        assert "filtered_corpus.filter_shard_group[group_00002]" in _steps(failed, "STEP_SUCCESS")
        assert not out.exists(), "nothing is published while a group is missing"

        broken.write_bytes(good)
        redone = _run(instance, "filtered_corpus", THREE_GROUPS, partition="common_crawl", reexecute=failed.run_id)
        assert redone.success
        assert _steps(redone, "STEP_START") == ["filtered_corpus.filter_shard_group[group_00001]",
                                                "filtered_corpus.publish_filtered_corpus"]
        assert _digests(out, skip=(LINEAGE_RECORD,)) == _digests(single)
        (mat,) = instance.fetch_materializations(dg.AssetKey("filtered_corpus"), limit=5).records
        assert mat.run_id == redone.run_id and mat.asset_materialization.partition == "common_crawl"


def _balanced_and_tokenizer(lake: Path) -> dict[str, list[Path]]:
    """balanced_shards with four train shards and one val shard of sample-book paragraphs, and a tokenizer."""
    rows = [{"id": f"{lang}-{i}", "text": text, "lang": lang}
            for lang in LANGS for i, text in enumerate(paragraphs(lang))]
    splits = {"train": [rows[i::5] for i in range(4)], "val": [rows[4::5]]}
    shards: dict[str, list[Path]] = {}
    for split, parts in splits.items():
        (lake / "balanced_shards" / split).mkdir(parents=True)
        for i, part in enumerate(parts):
            pq.write_table(pa.Table.from_pylist(part), lake / "balanced_shards" / split / f"part-{i:05d}.parquet")
        shards[split] = list_shards(lake / "balanced_shards" / split)
    (lake / "tokenizer").mkdir()
    model = train_tokenizer([r["text"] for part in splits["train"] for r in part], lake / "tokenizer" / "tokenizer")
    assert model == lake / "tokenizer" / TOKENIZER_MODEL
    return shards


def test_tokenized_corpus_fans_out_one_step_per_group_with_the_single_step_files(fm_home: Path, tmp_path: Path):
    lake = fm_home / "lake"
    shards = _balanced_and_tokenizer(lake)
    single = tmp_path / "single"
    encode_corpus(lake / "tokenizer" / TOKENIZER_MODEL, shards, single, processes=1)
    with dg.instance_for_test() as instance:
        result = _run(instance, "tokenized_corpus", THREE_GROUPS)
        assert result.success
        assert _steps(result, "STEP_SUCCESS") == sorted([
            "tokenized_corpus.plan_tokenized_corpus", "tokenized_corpus.publish_tokenized_corpus",
            *(f"tokenized_corpus.encode_shard_group[group_0000{i}]" for i in range(3))])
        out = lake / "tokenized_corpus"
        assert _digests(out, skip=(LINEAGE_RECORD,)) == _digests(single), "token files and headers, byte for byte"
        (mat,) = instance.fetch_materializations(dg.AssetKey("tokenized_corpus"), limit=5).records
        assert mat.asset_materialization.tags["dagster/data_version"] == read_stage_record(out)["data_version"]
        assert mat.asset_materialization.metadata["fanout/groups"].value == 3
        (check,) = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))]
        assert (check.check_name, check.passed) == ("matches_tokenizer", True)
    shutil.rmtree(single)


def _kept_of_every_source(lake: Path) -> list[Path]:
    """filtered_corpus/<source>/kept of the sample corpus, every source in 20 kB shards: the raw shards
    themselves (same schema), so the test spends its time on dedup, not on filtering."""
    shards = []
    for source in SOURCES:
        raw = lake / "raw_corpus" / source
        ingest_source(source, raw_corpus_root() / source, raw, IngestConfig(shard_bytes=20_000))
        kept = lake / "filtered_corpus" / source / KEPT
        kept.mkdir(parents=True)
        for shard in list_shards(raw):
            shutil.copy(shard, kept / shard.name)
        shards += list_shards(kept)
    return shards


def test_deduped_corpus_fans_out_every_phase_with_the_single_step_files(fm_home: Path, tmp_path: Path):
    lake = fm_home / "lake"
    shards = _kept_of_every_source(lake)
    single = tmp_path / "single"
    stats = dedup_corpus(shards, single, processes=1, shard_bytes=64 * 2**20)
    assert stats.exact_duplicates + stats.near_duplicates == stats.removed > 0
    out = lake / "deduped_corpus"
    with dg.instance_for_test() as instance:
        result = _run(instance, "deduped_corpus", THREE_GROUPS)
        assert result.success
        mapped = [f"deduped_corpus.dedup_{phase}[group_0000{i}]" for phase in ("signatures", "band_runs", "buckets",
                                                                             "filter") for i in range(3)]
        once = ["plan_deduped_corpus", "dedup_exact_groups", "plan_buckets", "connect_duplicates",
                "publish_deduped_corpus"]
        assert _steps(result, "STEP_SUCCESS") == sorted([*mapped, *(f"deduped_corpus.{op}" for op in once)])
        assert _digests(out, skip=(LINEAGE_RECORD,)) == _digests(single), "every file, byte for byte"
        assert not groups_root(out).exists()

        (mat,) = instance.fetch_materializations(dg.AssetKey("deduped_corpus"), limit=5).records
        meta = mat.asset_materialization.metadata
        assert mat.asset_materialization.tags["dagster/data_version"] == read_stage_record(out)["data_version"]
        assert [meta[k].value for k in ("documents_in", "kept", "exact_duplicates", "near_duplicates",
                                        "candidate_pairs", "verified_pairs", "signatures_computed",
                                        "fanout/groups")] == \
            [stats.documents_in, stats.kept, stats.exact_duplicates, stats.near_duplicates, stats.candidate_pairs,
             stats.verified_pairs, len(shards), 3]
        (check,) = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))]
        assert (check.check_name, check.passed) == ("accounting", True)
        mlflow.set_tracking_uri(f"sqlite:///{fm_home}/mlflow/mlflow.db")
        runs = mlflow.search_runs(experiment_names=["fm-pipeline"], output_format="list")
        assert [(r.info.run_id, r.data.tags["dagster.asset_key"]) for r in runs] == \
            [(meta["mlflow_run_id"].value, "deduped_corpus")]

        again = _run(instance, "deduped_corpus", ONE_GROUP)
        assert again.success
        (mat, _) = instance.fetch_materializations(dg.AssetKey("deduped_corpus"), limit=5).records
        assert mat.asset_materialization.metadata["signatures_cached"].value == len(shards)
        assert _digests(out, skip=(LINEAGE_RECORD,)) == _digests(single), "one group or three: the same files"
