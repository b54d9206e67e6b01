"""The dedup stage fanned out (`lake.fanout`): the jobs of `stage.dedup_corpus`, cut into steps that separate
processes or pods run, each step a group of jobs of one phase, complete or absent.

    plan ─▶ signatures[g] ─▶ exact_groups[r] ─▶ band_runs[g] ─▶ buckets[r] ─▶ connect ─▶ filter[g] ─▶ publish

`plan_dedup` fixes everything up front in one work area beside the output (`.<name>.groups/<plan id>/`): the
shard groups (`plan_groups`: `group_bytes` each, at most `max_groups`) and the dedup plan (`plan.write_plan`,
rows counted in the input shards), so every step's jobs are known before any runs. Phases per shard group
(`signatures` with each file's exact-key run, `band_runs`, `filter`) take a group's shards; phases per range
(`exact_groups`, `buckets`) split the plan's key ranges and buckets into as many steps as there are shard
groups. Each phase waits for the one before: a band run needs every exact group, a bucket every band run.
A step's completion marker sits in `<area>/steps/<phase>/<group>/`, so a rerun skips the steps that finished.
Signature files, kept and removed shards are written in the area under the names `dedup_corpus` gives them;
`publish_dedup` hard-links them into the output, so it is byte-identical to the single-step path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.buckets import bucket_pairs, exact_groups, write_band_run, write_exact_run
from fm_pipeline.curation.dedup.clusters import connect, read_stats
from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.curation.dedup.plan import DEFAULT_SOURCE_PRIORITY, DedupPlan, read_plan, write_plan
from fm_pipeline.curation.dedup.signatures import signature_job, signature_name
from fm_pipeline.curation.dedup.stage import DedupStats, filter_shard, job_runner, summarize
from fm_pipeline.lake.fanout import (
    ShardGroup,
    WorkItem,
    WorkPlan,
    close_plan,
    completed,
    link_files,
    open_plan,
    run_group,
)
from fm_pipeline.lake.layout import DEDUP_WORK, KEPT, REMOVED, SIGNATURES
from fm_pipeline.lake.staging import carry, staged_dir

SHARD_PHASES = ("signatures", "band_runs", "filter")
RANGE_PHASES = ("exact_groups", "buckets")
CONNECT = "connect"
STEPS = "steps"
"""Where the steps' completion markers live in the area, apart from the files they write."""


@dataclass(frozen=True)
class DedupStep:
    """One step: jobs `jobs` (shard numbers, or key ranges / buckets) of `phase`, in the plan's `area`."""

    area: Path
    phase: str
    index: int
    jobs: tuple[int, ...]
    cache: Path
    """The published signature files, carried into the area by the `signatures` phase."""

    @property
    def key(self) -> str:
        return f"group_{self.index:05d}"

    @property
    def work(self) -> Path:
        return self.area / DEDUP_WORK

    def to_dict(self) -> dict[str, Any]:
        return {"area": str(self.area), "phase": self.phase, "index": self.index, "jobs": list(self.jobs),
                "cache": str(self.cache)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DedupStep:
        return cls(Path(data["area"]), data["phase"], int(data["index"]), tuple(map(int, data["jobs"])),
                   Path(data["cache"]))


def plan_dedup(input_shards: list[Path], out_dir: Path, config: MinHashConfig, verify_threshold: float,
               shard_bytes: int, group_bytes: int, max_groups: int, version: str = "") -> WorkPlan:
    """The shard groups and the dedup plan, in a work area named by the settings, `version` (the asset's
    code version) and every shard's name, size and mtime; the signatures of the published output
    (`out_dir/signatures`) are the cache."""
    settings = {"minhash": asdict(config), "verify_threshold": verify_threshold, "shard_bytes": shard_bytes,
                "source_priority": list(DEFAULT_SOURCE_PRIORITY), "cache": str(Path(out_dir) / SIGNATURES),
                "version": version}
    plan = open_plan(out_dir, input_shards, group_bytes, max_groups, settings)
    signatures = [plan.area / SIGNATURES / signature_name(Path(s)) for s in input_shards]
    write_plan(plan.area / DEDUP_WORK, signatures, input_shards, verify_threshold=verify_threshold,
               min_jobs=len(plan.groups), shard_bytes=shard_bytes, config=config)
    return plan


def dedup_steps(plan: WorkPlan, phase: str, steps: int | None = None) -> list[DedupStep]:
    """The steps of `phase`: one per shard group, or the plan's key ranges or buckets cut into `steps`
    consecutive runs (default: as many as there are shard groups; fewer when there are fewer ranges)."""
    cache = Path(plan.settings["cache"])
    if phase in SHARD_PHASES:
        return [DedupStep(plan.area, phase, g.index, tuple(i for i, _ in g.items()), cache) for g in plan.groups]
    if phase not in RANGE_PHASES:
        raise ValueError(f"unknown dedup phase {phase!r}")
    dedup = read_plan(plan.area / DEDUP_WORK)
    jobs = dedup.exact_parts if phase == "exact_groups" else dedup.buckets
    count = min(jobs, steps or len(plan.groups))
    return [DedupStep(plan.area, phase, k, tuple(range(k * jobs // count, (k + 1) * jobs // count)), cache)
            for k in range(count)]


def _marker(area: Path, phase: str, index: int) -> WorkItem:
    """A step as `lake.fanout` tracks it: a folder `<area>/steps/<phase>/group_<index>/` holding its marker."""
    return WorkItem(Path(area) / STEPS / phase, {}, ShardGroup(index, 0, (), 0))


def _signatures(plan: DedupPlan, jobs: tuple[int, ...], cache: Path, run: Any) -> dict[str, int]:
    """Signature files of the step's shards (carried from the cache, recomputed where stale), checked against
    the plan's row counts, then each file's sorted run of exact keys."""
    cfg = plan.config
    for i in jobs:
        carry(cache / Path(plan.signature_files[i]).name, Path(plan.signature_files[i]))
    computed = run(signature_job, [(plan.input_shards[i], plan.signature_files[i], cfg) for i in jobs])
    for i in jobs:
        if pq.ParquetFile(plan.signature_files[i]).metadata.num_rows != plan.rows[i]:
            raise ValueError(f"{plan.input_shards[i]} changed after the plan was made")
    run(partial(write_exact_run, plan.work), list(jobs))
    return {"computed": sum(computed), "cached": len(computed) - sum(computed)}


def run_step(step: DedupStep, processes: int = 0) -> tuple[dict[str, int], bool]:
    """Run one step's jobs (over up to `processes` workers; 0: one per core), complete or absent; (its
    summary, whether a finished earlier run was reused)."""
    plan = read_plan(step.work)
    jobs = {"exact_groups": exact_groups, "band_runs": write_band_run, "buckets": bucket_pairs}

    def work(_: Path) -> dict[str, int]:
        with job_runner(processes or None, max(len(step.jobs), 1)) as run:
            if step.phase == "signatures":
                return _signatures(plan, step.jobs, step.cache, run)
            if step.phase == "filter":
                counts = run(partial(filter_shard, plan.work), list(step.jobs))
                return {k: sum(c[k] for c in counts) for k in ("documents_in", "kept", "removed")}
            return {"jobs": len(step.jobs), "rows": sum(run(partial(jobs[step.phase], plan.work), list(step.jobs)))}

    return run_group(_marker(step.area, step.phase, step.index), work)


def connect_step(area: Path) -> tuple[dict[str, Any], bool]:
    """`connect`, once, after every bucket: clusters and survivors; (its statistics, whether reused)."""
    work = Path(area) / DEDUP_WORK

    def run(_: Path) -> dict[str, Any]:
        connect(work)
        stats = read_stats(read_plan(work))
        return {k: stats[k] for k in ("exact_duplicates", "near_duplicates", "candidate_pairs", "verified_pairs")}

    return run_group(_marker(area, CONNECT, 0), run)


def publish_dedup(plan: WorkPlan, out_dir: Path) -> DedupStats:
    """Every signature file, kept and removed shard (hard links) into `out_dir`, swapped in whole: the files,
    byte for byte, of `dedup_corpus`; then the stats as it returns them (no step seconds). Removes the work
    area."""
    dedup = read_plan(plan.area / DEDUP_WORK)
    phase = {name: WorkPlan(plan.area / STEPS / name, plan.settings, plan.groups) for name in ("signatures", "filter")}
    signed = [result for _, _, result in completed(phase["signatures"])]
    counts = [result for _, _, result in completed(phase["filter"])]
    with staged_dir(Path(out_dir)) as staging:
        for folder in (SIGNATURES, KEPT, REMOVED):
            link_files(plan.area / folder, staging / folder)
    stats = summarize(read_stats(dedup), counts, sum(s["computed"] for s in signed),
                      sum(s["cached"] for s in signed), dedup.config, dedup.verify_threshold, {})
    close_plan(plan)
    return stats
