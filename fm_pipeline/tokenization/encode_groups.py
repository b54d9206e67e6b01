"""tokenized_corpus fanned out (`lake.fanout`): the shards of every split, in split order, cut into groups;
each group encoded in its own step into raw token and lengths files named by the shard's position, then one
publish step packing each split from those files in shard order. The token files are byte-identical to
`encode.encode_corpus`, whatever the grouping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fm_pipeline.lake.fanout import WorkItem, WorkPlan, close_plan, completed, open_plan, run_group
from fm_pipeline.lake.layout import SHARD_PREFIX
from fm_pipeline.lake.parallel import map_shards
from fm_pipeline.lake.staging import staged_dir
from fm_pipeline.tokenization.encode import ShardJob, ShardPart, encode_shard, open_tokenizer, pack_split


def _part_files(folder: Path, position: int) -> tuple[Path, Path]:
    """A shard's raw token file and lengths file in its group's folder."""
    return folder / f"{SHARD_PREFIX}-{position:05d}.bin", folder / f"{SHARD_PREFIX}-{position:05d}.len"


def plan_encoding(model_path: Path, shards_by_split: dict[str, list[Path]], out_dir: Path, group_bytes: int,
                  max_groups: int, version: str = "") -> WorkPlan:
    """Groups over every split's shards, in split order. The plan names the tokenizer by its sha256, so a
    group encoded by another tokenizer is never reused, and a tokenizer replaced during the run is refused."""
    checksum, _, _ = open_tokenizer(model_path)
    shards = [Path(shard) for split_shards in shards_by_split.values() for shard in split_shards]
    settings = {"model": str(Path(model_path).resolve()), "tokenizer_sha256": checksum,
                "splits": [[split, len(split_shards)] for split, split_shards in shards_by_split.items()],
                "version": version}
    return open_plan(out_dir, shards, group_bytes, max_groups, settings)


def encode_group(item: WorkItem, processes: int | None = None) -> tuple[dict[str, Any], bool]:
    """Encode one group's shards into its folder of the work area, complete or absent; (the group's result:
    one `ShardPart` dict per shard, whether a finished earlier run of the plan was reused)."""
    model, checksum = Path(item.settings["model"]), item.settings["tokenizer_sha256"]

    def work(folder: Path) -> dict[str, Any]:
        _, _, dtype = open_tokenizer(model, checksum)
        jobs = [ShardJob(model, checksum, dtype.str, shard, *_part_files(folder, position))
                for position, shard in item.group.items()]
        return {"parts": [part.to_dict() for part in map_shards(encode_shard, jobs, processes)]}

    return run_group(item, work)


def publish_encoding(plan: WorkPlan, out_dir: Path) -> dict[str, Any]:
    """Pack every split from the groups' files into `out_dir`, swapped in whole; returns what `encode_corpus`
    returns. Removes the work area."""
    checksum, sp, _ = open_tokenizer(Path(plan.settings["model"]), plan.settings["tokenizer_sha256"])
    files: list[tuple[Path, Path]] = []
    parts: list[ShardPart] = []
    for group, folder, result in completed(plan):
        files += [_part_files(folder, position) for position, _ in group.items()]
        parts += [ShardPart.from_dict(part) for part in result["parts"]]
    stats: dict[str, Any] = {}
    with staged_dir(Path(out_dir)) as staging:
        start = 0
        for split, count in plan.settings["splits"]:
            stop = start + count
            stats[split] = pack_split(staging, split, files[start:stop], parts[start:stop], sp, checksum)
            start = stop
    close_plan(plan)
    return stats
