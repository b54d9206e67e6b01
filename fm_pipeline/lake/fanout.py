"""Fan-out by shard: a stage split into groups of input shards that run as separate steps (processes, pods),
then one publish step that puts the stage's output in place.

* `plan_groups` cuts the input shards, in order, into at most `max_groups` contiguous groups of about
  `group_bytes` each, so a small corpus is one group and a big one never more steps than configured.
* `open_plan` fixes the plan in a work area beside the stage's folder, `.<name>.groups/<plan id>/`, hidden
  so readers never list it. The plan id hashes the stage's settings and every input shard's name, size and
  mtime: a group finished under other inputs or settings is never reused.
* `run_group` builds one group's outputs in a staging folder and swaps it in whole (`staging.staged_dir`)
  with a completion marker `_group.json` holding the group's result, as datatrove's completion files do: a
  group is complete or absent, and a rerun after a failure (a Dagster retry, a re-execution from failure, or
  a new run of the same plan) redoes only the groups that have no marker.
* The publish step reads the markers of every group (`completed`), builds the stage's folder from the
  groups' files and swaps it in as a single-step stage does; `close_plan` then removes the work area.

Output names depend on a shard's position in the whole input (`ShardGroup.items`), never on its group, so
the published output is byte-identical whatever the grouping. Nothing here knows Dagster: the Dagster layer
maps one step over `WorkPlan.items()` and collects them into the publish step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fm_pipeline.lake.atomic import atomic_write_bytes
from fm_pipeline.lake.layout import GROUP_DONE, GROUPS_AREA
from fm_pipeline.lake.staging import carry, staged_dir

PLAN_ID_CHARS = 16


@dataclass(frozen=True)
class ShardGroup:
    """Consecutive input shards: `shards[k]` is shard number `start + k` of the stage's whole input."""

    index: int
    start: int
    shards: tuple[str, ...]
    bytes: int

    @property
    def key(self) -> str:
        """A name for the group's step and folder (letters, digits and `_`, as Dagster mapping keys need)."""
        return f"group_{self.index:05d}"

    def items(self) -> list[tuple[int, Path]]:
        """(position in the whole input, shard) for each shard of the group."""
        return [(self.start + k, Path(shard)) for k, shard in enumerate(self.shards)]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "shards": list(self.shards), "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardGroup:
        return cls(int(data["index"]), int(data["start"]), tuple(data["shards"]), int(data["bytes"]))


def plan_groups(shards: Sequence[Path], group_bytes: int, max_groups: int) -> list[ShardGroup]:
    """Consecutive groups of `shards` of about `group_bytes` each, at most `max_groups` of them (larger groups
    then), balanced by bytes: a shard goes to the group its byte midpoint falls in. No input is one empty
    group, so the stage still publishes its (empty) output."""
    if group_bytes <= 0 or max_groups <= 0:
        raise ValueError(f"group_bytes and max_groups must be positive, got {group_bytes} and {max_groups}")
    if not shards:
        return [ShardGroup(0, 0, (), 0)]
    sizes = [Path(shard).stat().st_size for shard in shards]
    total = sum(sizes)
    count = max(1, min(max_groups, len(shards), math.ceil(total / group_bytes)))
    members: list[list[int]] = [[] for _ in range(count)]
    before = 0
    for i, size in enumerate(sizes):
        slot = (2 * before + size) * count // (2 * total) if total else i * count // len(shards)
        members[min(slot, count - 1)].append(i)
        before += size
    groups = []
    for positions in filter(None, members):
        groups.append(ShardGroup(len(groups), positions[0], tuple(str(shards[i]) for i in positions),
                                 sum(sizes[i] for i in positions)))
    return groups


@dataclass(frozen=True)
class WorkItem:
    """What one group's step needs: the plan's work area and settings, and its group."""

    area: Path
    settings: dict[str, Any]
    group: ShardGroup

    def to_dict(self) -> dict[str, Any]:
        return {"area": str(self.area), "settings": self.settings, "group": self.group.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkItem:
        return cls(Path(data["area"]), dict(data["settings"]), ShardGroup.from_dict(data["group"]))


@dataclass(frozen=True)
class WorkPlan:
    """A stage's groups, their work area and the settings every group runs with (JSON values only)."""

    area: Path
    settings: dict[str, Any]
    groups: tuple[ShardGroup, ...]

    def items(self) -> list[WorkItem]:
        return [WorkItem(self.area, self.settings, group) for group in self.groups]

    def to_dict(self) -> dict[str, Any]:
        return {"area": str(self.area), "settings": self.settings, "groups": [g.to_dict() for g in self.groups]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkPlan:
        return cls(Path(data["area"]), dict(data["settings"]), tuple(map(ShardGroup.from_dict, data["groups"])))


def groups_root(final: Path) -> Path:
    """Where the work areas of the stage publishing `final` live: `.<name>.groups` beside it."""
    final = Path(final)
    return final.with_name(f".{final.name}.{GROUPS_AREA}")


def open_plan(final: Path, shards: Sequence[Path], group_bytes: int, max_groups: int,
              settings: Mapping[str, Any]) -> WorkPlan:
    """Plan the groups of the stage publishing `final` and create their work area, named by a hash of the
    settings and of every shard's name, size and mtime. Work areas of other plans (other inputs or settings,
    left by failed runs) are removed: their groups can never be reused."""
    groups = plan_groups(shards, group_bytes, max_groups)
    stamp = [[str(Path(s).resolve()), (st := Path(s).stat()).st_size, st.st_mtime_ns] for s in shards]
    identity = json.dumps({"settings": settings, "shards": stamp, "groups": [g.to_dict() for g in groups]},
                          sort_keys=True)
    root = groups_root(final)
    area = root / hashlib.sha256(identity.encode()).hexdigest()[:PLAN_ID_CHARS]
    if root.is_dir():
        for stale in root.iterdir():
            if stale.is_dir() and stale != area:
                shutil.rmtree(stale, ignore_errors=True)
    area.mkdir(parents=True, exist_ok=True)
    return WorkPlan(area, json.loads(json.dumps(dict(settings))), tuple(groups))


def done_marker(area: Path, group: ShardGroup) -> Path:
    return Path(area) / group.key / GROUP_DONE


def run_group(item: WorkItem, work: Callable[[Path], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """(result, reused): the group's result from its completion marker when the group is complete, else
    `work(folder)` writing the group's files into an empty staging folder, whose JSON result becomes the
    marker; the folder is then swapped in whole, so a group killed or failing midway leaves nothing."""
    marker = done_marker(item.area, item.group)
    if marker.is_file():
        return json.loads(marker.read_text(encoding="utf-8")), True
    with staged_dir(marker.parent) as staging:
        result = work(staging)
        atomic_write_bytes(staging / GROUP_DONE, json.dumps(result, sort_keys=True, ensure_ascii=False).encode())
    return json.loads(marker.read_text(encoding="utf-8")), False


def completed(plan: WorkPlan) -> Iterator[tuple[ShardGroup, Path, dict[str, Any]]]:
    """(group, its folder, its result) for every group in order; raises when one has not completed."""
    for group in plan.groups:
        marker = done_marker(plan.area, group)
        if not marker.is_file():
            raise FileNotFoundError(f"group {group.key} of {plan.area} has not completed (no {marker.name})")
        yield group, marker.parent, json.loads(marker.read_text(encoding="utf-8"))


def link_files(src: Path, dst: Path) -> list[Path]:
    """Hard-link (copy where links are unsupported) every file directly in `src` into `dst`, keeping names:
    the group's files stay whole until the plan is closed, so a failed publish can be redone."""
    dst.mkdir(parents=True, exist_ok=True)
    linked = []
    for path in sorted(p for p in Path(src).iterdir() if p.is_file()) if Path(src).is_dir() else []:
        if (dst / path.name).exists():
            raise FileExistsError(f"{dst / path.name} comes from two groups")
        carry(path, dst / path.name)
        linked.append(dst / path.name)
    return linked


def close_plan(plan: WorkPlan) -> None:
    """Remove the plan's work area once its output is published, and the groups folder when it is empty."""
    shutil.rmtree(plan.area, ignore_errors=True)
    with contextlib.suppress(OSError):  # another plan's area is still there, or it is gone already
        os.rmdir(plan.area.parent)

