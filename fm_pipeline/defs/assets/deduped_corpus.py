"""deduped_corpus: exact and MinHash-LSH near duplicates removed across all sources.

A graph-backed asset fanned out by shard (`curation.dedup.fanout`): `plan_deduped_corpus` fixes the shard
groups and the dedup plan; `dedup_signatures[g]` (signatures, exact-key runs) → `dedup_exact_groups` (one
step) → `dedup_band_runs[g]` → `plan_buckets` → `dedup_buckets[r]` → `connect_duplicates` (one step) →
`dedup_filter[g]`; `publish_deduped_corpus` swaps the folder in and records the materialization, its check,
lineage and MLflow run. Dagster maps an op over one dynamic output only, so each fan-out after the first is
emitted by the single step that waits for the one before."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from fm_pipeline.curation.dedup.fanout import (
    DedupStep,
    connect_step,
    dedup_steps,
    plan_dedup,
    publish_dedup,
    run_step,
)
from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.defs.configs import MB, library_config
from fm_pipeline.defs.fanout import (
    FANOUT_IO,
    FanOutConfig,
    check_outs,
    graph_outputs,
    group_out,
    one_config,
    unreadable_shards_fail_at_once,
)
from fm_pipeline.defs.metadata import count_table, lang_counts, language_table, parquet_metadata
from fm_pipeline.defs.policies import CORPUS, IO_RETRY, stage_graph_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fanout import WorkPlan
from fm_pipeline.lake.parquet_io import count_rows, list_shards
from fm_pipeline.lake.paths import SOURCES

CODE_VERSION = "1"
"""Bump when a change to duplicate detection or survivor choice changes the output."""
CHECKS = [dg.AssetCheckSpec("accounting", asset="deduped_corpus", blocking=True,
                            description="documents in = kept + removed")]
CONFIGURED = ("plan_deduped_corpus", "dedup_signatures", "dedup_exact_groups", "dedup_band_runs", "dedup_buckets",
              "dedup_filter", "publish_deduped_corpus")
"""The ops that take the asset's config (`one_config`)."""


class DedupedCorpusConfig(FanOutConfig):
    num_perm: int = 112
    bands: int = 28
    """28 bands x 4 rows, then each candidate pair verified at signature Jaccard >= verify_threshold:
    14 x 8 misses about a third of copies with 3% of words changed (their 5-gram Jaccard is ~0.73)."""
    ngram: int = 5
    verify_threshold: float = 0.6
    shard_mb: int = 64
    processes: int = 0
    """Worker processes over the jobs of one step; 0 means one per core."""


def _inputs(lake: LakeResource) -> list[Path]:
    return [s for source in SOURCES for s in list_shards(lake.path("filtered_corpus", source) / "kept")]


def _emit(plan: WorkPlan, phase: str) -> Iterator[dg.DynamicOutput]:
    """One dynamic output per step of `phase`, keyed by its group (`group_00003`)."""
    for step in dedup_steps(plan, phase):
        yield dg.DynamicOutput(step.to_dict(), mapping_key=step.key, output_name="steps",
                               metadata={"jobs": len(step.jobs)})


def _steps_out() -> dict[str, dg.Out]:
    return {"steps": dg.DynamicOut(dict, io_manager_key=FANOUT_IO), "plan": dg.Out(dict, io_manager_key=FANOUT_IO)}


def _run(context: dg.OpExecutionContext, step: DedupStep, processes: int) -> dict:
    with unreadable_shards_fail_at_once(f"{step.phase} {step.key}"):
        summary, reused = run_step(step, processes)
    context.log.info(f"{step.phase} {step.key}: {len(step.jobs)} jobs"
                     + (" (finished earlier, reused)" if reused else ""))
    return {"group": step.key, **summary, "reused": reused}


@dg.op(ins={"start_after": dg.In(dg.Nothing)}, out=_steps_out(), retry_policy=IO_RETRY)
def plan_deduped_corpus(config: DedupedCorpusConfig, lake: LakeResource) -> Iterator[dg.DynamicOutput | dg.Output]:
    """Groups of the kept shards of all sources and the dedup plan, in one work area beside the output;
    one signature step per group."""
    plan = plan_dedup(_inputs(lake), lake.path("deduped_corpus"), library_config(config, MinHashConfig),
                      config.verify_threshold, config.shard_mb * MB, config.group_bytes(), config.max_steps,
                      version=CODE_VERSION)
    yield from _emit(plan, "signatures")
    yield dg.Output(plan.to_dict(), output_name="plan", metadata={
        "groups": len(plan.groups), "shards": sum(len(g.shards) for g in plan.groups),
        "buckets": sum(len(s.jobs) for s in dedup_steps(plan, "buckets")),
        "work_area": dg.MetadataValue.path(str(plan.area))})


def _phase_op(phase: str, doc: str) -> dg.OpDefinition:
    """The op running one step of `phase`, mapped over the steps a barrier op emits."""

    @dg.op(name=f"dedup_{phase}", out=group_out(), retry_policy=IO_RETRY, description=doc)
    def run(context: dg.OpExecutionContext, config: DedupedCorpusConfig, step: dict) -> dict:
        return _run(context, DedupStep.from_dict(step), config.processes)

    return run


dedup_signatures = _phase_op("signatures", "Signature files of a group of shards (from the cache where current) "
                             "and each file's sorted run of exact keys.")
dedup_band_runs = _phase_op("band_runs", "Sorted band hashes of a group of shards' documents that are not exact "
                            "copies.")
dedup_buckets = _phase_op("buckets", "Verified candidate pairs of a run of LSH buckets.")
dedup_filter = _phase_op("filter", "Kept and removed rows of a group of shards.")


@dg.op(ins={"after": dg.In(dg.Nothing)}, out={"steps": dg.DynamicOut(dict, io_manager_key=FANOUT_IO)},
       retry_policy=IO_RETRY)
def dedup_exact_groups(context: dg.OpExecutionContext, config: DedupedCorpusConfig, plan: dict):
    """Once every signature step is done: every exact key range in this step (a sort of 16-byte keys, each
    range's memory bounded by the plan), over its worker processes; then one band-run step per group."""
    work = WorkPlan.from_dict(plan)
    (step,) = dedup_steps(work, "exact_groups", steps=1)
    _run(context, step, config.processes)
    yield from _emit(work, "band_runs")


@dg.op(ins={"after": dg.In(dg.Nothing)}, out={"steps": dg.DynamicOut(dict, io_manager_key=FANOUT_IO)},
       retry_policy=IO_RETRY)
def plan_buckets(plan: dict):
    """Once every band run is written: one step per run of buckets."""
    yield from _emit(WorkPlan.from_dict(plan), "buckets")


@dg.op(ins={"after": dg.In(dg.Nothing)}, out={"steps": dg.DynamicOut(dict, io_manager_key=FANOUT_IO)},
       retry_policy=IO_RETRY)
def connect_duplicates(context: dg.OpExecutionContext, plan: dict):
    """Clusters and survivors over every exact group and verified pair: the one global step, its memory
    following the number of pairs, never the corpus; then one filter step per group."""
    work = WorkPlan.from_dict(plan)
    summary, reused = connect_step(work.area)
    context.log.info(f"connect: {summary}" + (" (finished earlier, reused)" if reused else ""))
    yield from _emit(work, "filter")


@dg.op(out=check_outs(CHECKS), retry_policy=IO_RETRY)
def publish_deduped_corpus(context: dg.OpExecutionContext, config: DedupedCorpusConfig, lake: LakeResource,
                           mlflow_tracking: MlflowTracking, plan: dict, groups: list):
    """Swap the folder in from the steps' files, then the check, lineage and MLflow run."""
    work = WorkPlan.from_dict(plan)
    inputs = [s for group in work.groups for s in map(Path, group.shards)]
    out = lake.path("deduped_corpus")
    stats = publish_dedup(work, out)
    kept, removed = list_shards(out / "kept"), list_shards(out / "removed")
    audit = {"documents_in": count_rows(inputs), "kept": count_rows(kept), "removed": count_rows(removed)}
    examples = [{"cluster": i, **member} for i, cluster in enumerate(stats.examples) for member in cluster]
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=inputs, code_version=CODE_VERSION,
        params=config.model_dump(),
        metrics={k: getattr(stats, k) for k in ("documents_in", "kept", "exact_duplicates", "near_duplicates",
                                                "candidate_pairs", "verified_pairs")},
    )
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **parquet_metadata(kept, CORPUS_SCHEMA),
            "documents_in": stats.documents_in,
            "kept": stats.kept,
            "exact_duplicates": stats.exact_duplicates,
            "near_duplicates": stats.near_duplicates,
            "candidate_pairs": stats.candidate_pairs,
            "verified_pairs": stats.verified_pairs,
            "cluster_size_histogram": dg.MetadataValue.json({str(k): v for k, v in stats.cluster_sizes.items()}),
            "example_clusters": dg.MetadataValue.md(markdown_table(examples, sorted({k for e in examples for k in e}))),
            "signatures_computed": stats.signatures_computed,
            "signatures_cached": stats.signatures_cached,
            "minhash": dg.MetadataValue.json(stats.minhash),
            "removed_reasons": count_table({"exact_duplicate": stats.exact_duplicates,
                                            "near_duplicate": stats.near_duplicates}, "reason"),
            "languages": language_table({"documents_in": lang_counts(inputs), "kept": lang_counts(kept),
                                         "removed": lang_counts(removed)}),
            "fanout/groups": len(work.groups),
            "fanout/groups_reused": sum(bool(g["reused"]) for g in groups),
            **stage.metadata(out),
        },
        check_results=[dg.AssetCheckResult(check_name="accounting",
                                           passed=audit["documents_in"] == audit["kept"] + audit["removed"],
                                           metadata=audit)],
    )


@dg.graph_asset(
    ins={"filtered_corpus": dg.AssetIn(dagster_type=dg.Nothing)},
    **stage_graph_args(CORPUS, {"parquet", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=CHECKS,
    config=one_config(DedupedCorpusConfig, *CONFIGURED),
)
def deduped_corpus(filtered_corpus):  # a graph input that only orders the steps
    """One survivor per duplicate cluster, by source priority then length; removed rows name `duplicate_of`.
    Each phase is one step per group of jobs (`max_steps`, `shard_group_mb`). Its data version is the hash of
    the kept and removed shards and the MinHash signatures."""
    plan = plan_deduped_corpus(start_after=filtered_corpus)
    signed = plan.steps.map(dedup_signatures).collect()
    banded = dedup_exact_groups(plan.plan, after=signed).map(dedup_band_runs).collect()
    paired = plan_buckets(plan.plan, after=banded).map(dedup_buckets).collect()
    filtered = connect_duplicates(plan.plan, after=paired).map(dedup_filter).collect()
    return graph_outputs(publish_deduped_corpus(plan.plan, filtered), CHECKS)
