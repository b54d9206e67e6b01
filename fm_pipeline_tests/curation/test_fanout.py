"""Fan-out by shard in the library (`lake.fanout`, `filter_stage.plan_filter/filter_group/publish_filter`):
how groups are planned, that a group is complete or absent, that a rerun redoes only the groups that did not
finish, and that the fanned-out filter stage publishes exactly the files of the single-step one."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import pytest

from fm_pipeline.curation import filter_stage
from fm_pipeline.curation.filter_stage import (
    FilterConfig,
    filter_group,
    filter_source,
    plan_filter,
    publish_filter,
)
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.lake.fanout import ShardGroup, WorkItem, WorkPlan, groups_root, open_plan, plan_groups, run_group
from fm_pipeline.lake.layout import GROUP_DONE
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.lake.paths import raw_corpus_root


def _files(folder: Path, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = folder / f"part-{i:05d}.parquet"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


def _layout(groups: list[ShardGroup]) -> list[list[int]]:
    return [[position for position, _ in group.items()] for group in groups]


def test_groups_are_consecutive_bounded_by_max_steps_and_balanced_by_bytes(tmp_path: Path) -> None:
    shards = _files(tmp_path, [100] * 10)
    assert _layout(plan_groups(shards, group_bytes=300, max_groups=16)) == [
        [0, 1], [2, 3, 4], [5, 6], [7, 8, 9]], "ceil(1000 / 300) = 4 groups, each shard where its midpoint falls"
    assert _layout(plan_groups(shards, group_bytes=300, max_groups=2)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert _layout(plan_groups(shards, group_bytes=10_000, max_groups=16)) == [list(range(10))]
    assert _layout(plan_groups(shards, group_bytes=1, max_groups=64)) == [[i] for i in range(10)]
    uneven = plan_groups(_files(tmp_path / "uneven", [900, 50, 50, 500, 500]), group_bytes=1000, max_groups=8)
    assert _layout(uneven) == [[0, 1, 2], [3, 4]] and [g.bytes for g in uneven] == [1000, 1000]
    assert [g.key for g in uneven] == ["group_00000", "group_00001"]
    assert _layout(plan_groups([], group_bytes=1, max_groups=4)) == [[]], "no input is one empty group"
    with pytest.raises(ValueError, match="must be positive"):
        plan_groups(shards, group_bytes=0, max_groups=4)


def test_a_group_is_complete_or_absent_and_a_finished_group_is_not_redone(tmp_path: Path) -> None:
    shards = _files(tmp_path / "in", [10, 10])
    plan = open_plan(tmp_path / "out", shards, group_bytes=10, max_groups=4, settings={"rule": 1})
    assert plan.area.parent == groups_root(tmp_path / "out") == tmp_path / ".out.groups"
    first, second = plan.items()
    calls = []

    def work(folder: Path) -> dict:
        calls.append(folder.name)
        (folder / "half.txt").write_text("written")
        raise OSError("the node went away")

    with pytest.raises(OSError, match="went away"):
        run_group(first, work)
    assert sorted(p.name for p in plan.area.iterdir()) == [".group_00000.lock"], "nothing of the failed group"

    def good(folder: Path) -> dict:
        calls.append("good")
        (folder / "out.txt").write_text("done")
        return {"documents": 7}

    assert run_group(first, good) == ({"documents": 7}, False)
    assert run_group(first, good) == ({"documents": 7}, True), "complete: its marker's result, no work"
    assert calls.count("good") == 1
    assert json.loads((plan.area / "group_00000" / GROUP_DONE).read_text()) == {"documents": 7}
    assert WorkItem.from_dict(json.loads(json.dumps(second.to_dict()))) == second
    assert WorkPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan

    same = open_plan(tmp_path / "out", shards, group_bytes=10, max_groups=4, settings={"rule": 1})
    assert same.area == plan.area and (plan.area / "group_00000" / GROUP_DONE).is_file()
    other = open_plan(tmp_path / "out", shards, group_bytes=10, max_groups=4, settings={"rule": 2})
    assert other.area != plan.area and not plan.area.exists(), "another plan's groups can never be reused"


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def common_crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """common_crawl of the sample corpus in 20 kB raw shards, filtered by the single-step path."""
    root = tmp_path_factory.mktemp("fanout")
    ingest_source("common_crawl", raw_corpus_root() / "common_crawl", root / "raw", IngestConfig(shard_bytes=20_000))
    shards = list_shards(root / "raw")
    filter_source("common_crawl", shards, root / "single", FilterConfig(processes=1))
    return shards, root / "single"


def test_fanned_out_filter_publishes_the_single_step_files_and_reruns_only_unfinished_groups(
    common_crawl: tuple[list[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards, single = common_crawl
    out = tmp_path / "filtered" / "common_crawl"
    plan = plan_filter("common_crawl", shards, out, FilterConfig(), group_bytes=sum(
        s.stat().st_size for s in shards) // 3 + 1, max_groups=8, version="1")
    assert len(shards) >= 5 and len(plan.groups) == 3
    assert [position for group in plan.groups for position, _ in group.items()] == list(range(len(shards)))

    real, failing = filter_stage.filter_shard, plan.groups[1].start

    def fail_once(source, shard, index, *args):
        if index == failing:
            raise OSError("lost the volume")
        return real(source, shard, index, *args)

    monkeypatch.setattr(filter_stage, "filter_shard", fail_once)
    results = {}
    for item in plan.items():
        with contextlib.suppress(OSError):
            results[item.group.key] = filter_group(item, processes=1)
    assert sorted(results) == ["group_00000", "group_00002"] and not any(r for _, _, r in results.values())
    assert not (plan.area / "group_00001").exists() and not out.exists(), "nothing published, nothing half-made"
    with pytest.raises(FileNotFoundError, match="group_00001 .* has not completed"):
        publish_filter(plan, out)

    monkeypatch.setattr(filter_stage, "filter_shard", real)
    again = plan_filter("common_crawl", shards, out, FilterConfig(processes=2), group_bytes=sum(
        s.stat().st_size for s in shards) // 3 + 1, max_groups=8, version="1")
    assert again == plan, "the same inputs and settings are the same plan (processes do not count)"
    reused = {item.group.key: filter_group(item, processes=1)[2] for item in again.items()}
    assert reused == {"group_00000": True, "group_00001": False, "group_00002": True}
    stats = publish_filter(again, out)
    assert _digests(out) == _digests(single), "every file, the manifest included, byte for byte"
    assert stats.documents_in == stats.kept + stats.rejected == 83
    assert not groups_root(out).exists(), "the work area goes once the output is published"
