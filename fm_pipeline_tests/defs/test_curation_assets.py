"""The curation chain materialized in-process on the sample corpus: every check passes, and the
planted duplicates come out of deduped_corpus with the expected survivors."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from fm_pipeline.curation.parquet_io import iter_rows, list_shards
from fm_pipeline.definitions import defs
from fm_pipeline.paths import SOURCES


def evaluations(result: dg.ExecuteInProcessResult) -> list[tuple[str, str, bool]]:
    return [(c.asset_key.to_user_string(), c.check_name, c.passed) for c in result.get_asset_check_evaluations()]


@pytest.mark.slow
def test_curation_chain_materializes_with_passing_checks(fm_home: Path):
    job = defs.resolve_implicit_global_asset_job_def()
    checks: list[tuple[str, str, bool]] = []
    with dg.instance_for_test() as instance:
        for source in SOURCES:
            result = job.execute_in_process(
                instance=instance, partition_key=source,
                asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("filtered_corpus")],
            )
            checks += evaluations(result)
        result = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("deduped_corpus"), dg.AssetKey("balanced_shards")],
        )
        checks += evaluations(result)
        (filtered,) = [m for m in instance.fetch_materializations(dg.AssetKey("filtered_corpus"), limit=5).records
                       if m.partition_key == "common_crawl"]
    assert all(passed for *_, passed in checks), checks
    assert sorted({(a, c) for a, c, _ in checks}) == [
        ("balanced_shards", "accounting"), ("balanced_shards", "language_mix"),
        ("balanced_shards", "train_val_disjoint"), ("deduped_corpus", "accounting"),
        ("filtered_corpus", "accounting"), ("filtered_corpus", "no_pii_in_kept"), ("raw_corpus", "accounting"),
    ]
    meta = filtered.asset_materialization.metadata
    assert meta["rejected_by_reason"].value["adult:url"] == 2
    assert "| reason | id | lang | text |" in meta["rejected_samples"].value

    lake = fm_home / "lake"
    removed = {r["id"]: r["duplicate_of"] for r in iter_rows(list_shards(lake / "deduped_corpus" / "removed"))}
    assert removed["en-sourdough-starter-mirror"] == "en-sourdough-starter"
    assert removed["zh-news-high-speed-rail-mirror"] == "zh-news-high-speed-rail"
    assert removed["en-product-backpack"] == "en-product-backpack-syndicated", "same source: the longer text survives"
    assert removed["es-noticias-sequia"] == "es-noticias-sequia-repost"
    assert len(removed) == 14
    train = {r["id"].split("#rep")[0] for r in iter_rows(list_shards(lake / "balanced_shards" / "train"), ["id"])}
    val = {r["id"] for r in iter_rows(list_shards(lake / "balanced_shards" / "val"), ["id"])}
    assert train and val and not train & val
