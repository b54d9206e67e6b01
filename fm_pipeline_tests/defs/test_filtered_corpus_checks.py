"""filtered_corpus's `no_pii_in_kept` check through the asset: each group step audits its own kept shards and
the publish step fails the check on what any group found."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.curation.pii import detectors
from fm_pipeline.definitions import defs
from fm_pipeline.lake.paths import raw_corpus_root
from fm_pipeline_tests.curation.test_pii_audit import PHONES_LEFT_WITHOUT_PHONE_RULE

THREE_GROUPS = {"max_steps": 3, "shard_group_mb": 0.001, "processes": 1}


def _materialize(instance: dg.DagsterInstance, lake: Path) -> dg.ExecuteInProcessResult:
    """The sample's common_crawl in 20 kB raw shards (enough for three groups), then filtered_corpus."""
    ingest_source("common_crawl", raw_corpus_root() / "common_crawl", lake / "raw_corpus" / "common_crawl",
                  IngestConfig(shard_bytes=20_000))
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("filtered_corpus")],
                                  partition_key="common_crawl", raise_on_error=False,
                                  run_config={"ops": {"filtered_corpus": {"config": THREE_GROUPS}}})


def _check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return evaluation


def test_no_pii_in_kept_passes_on_redacted_text(fm_home: Path):
    with dg.instance_for_test() as instance:
        result = _materialize(instance, fm_home / "lake")
        assert result.success
        groups = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"
                  and e.step_key.startswith("filtered_corpus.filter_shard_group")]
        assert len(groups) == 3
        check = _check(result, "no_pii_in_kept")
        assert check.passed and check.metadata["found"].value == []


def test_no_pii_in_kept_fails_on_what_a_group_left(fm_home: Path, monkeypatch: pytest.MonkeyPatch):
    """The redactor's phone rule switched off: the check fails and names every phone left, whichever group
    held it."""
    monkeypatch.setattr(detectors, "_DETECTORS", tuple(d for d in detectors._DETECTORS if d.kind != "PHONE"))
    with dg.instance_for_test() as instance:
        check = _check(_materialize(instance, fm_home / "lake"), "no_pii_in_kept")
    assert not check.passed
    found = check.metadata["found"].value
    assert sorted((leak["id"], leak["type"], leak["match"]) for leak in found) == PHONES_LEFT_WITHOUT_PHONE_RULE
