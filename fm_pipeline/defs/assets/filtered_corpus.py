"""filtered_corpus: normalized, language-identified, quality- and content-filtered, PII-redacted documents.

A graph-backed asset fanned out by shard (`defs.fanout`): `plan_filtered_corpus` cuts the source's raw shards
into groups, `filter_shard_group` filters one group per step, `publish_filtered_corpus` swaps the source's folder
in and records the materialization, its checks, lineage and MLflow run."""

from pathlib import Path

import dagster as dg

from fm_pipeline.curation.filter_stage import (
    FilterConfig,
    audit_filter,
    filter_group,
    plan_filter,
    publish_filter,
)
from fm_pipeline.curation.pii_audit import REPORT_LIMIT
from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.fanout import (
    FanOutConfig,
    check_outs,
    emit_plan,
    graph_outputs,
    group_out,
    one_config,
    plan_outs,
    unreadable_shards_fail_at_once,
)
from fm_pipeline.defs.metadata import count_table, lang_counts, language_table, parquet_metadata
from fm_pipeline.defs.partitions import source_partitions
from fm_pipeline.defs.policies import CORPUS, IO_RETRY, stage_graph_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fanout import WorkItem, WorkPlan
from fm_pipeline.lake.layout import KEPT, REJECTED
from fm_pipeline.lake.parquet_io import list_shards

CODE_VERSION = "1"
"""Bump when a change to normalization, language ID, the rules or PII redaction changes the output."""
CHECKS = [
    dg.AssetCheckSpec("accounting", asset="filtered_corpus", blocking=True,
                      description="documents in = kept + rejected"),
    dg.AssetCheckSpec("no_pii_in_kept", asset="filtered_corpus", blocking=True,
                      description="an independent PII detector finds nothing in kept text"),
]


class FilteredCorpusConfig(FanOutConfig):
    lang_backend: str = "fasttext"
    min_lang_score: float = 0.4
    shard_mb: int = 64
    processes: int = 0
    """Worker processes over the raw shards of one group step; 0 means one per core."""


@dg.op(ins={"start_after": dg.In(dg.Nothing)}, out=plan_outs(), retry_policy=IO_RETRY)
def plan_filtered_corpus(context: dg.OpExecutionContext, config: FilteredCorpusConfig, lake: LakeResource):
    """Groups of the source's raw shards, one step each, and their work area beside the source's folder."""
    source = context.partition_key
    yield from emit_plan(plan_filter(
        source, list_shards(lake.path("raw_corpus", source)), lake.path("filtered_corpus", source),
        library_config(config, FilterConfig), config.group_bytes(), config.max_steps, version=CODE_VERSION))


@dg.op(out=group_out(), retry_policy=IO_RETRY)
def filter_shard_group(context: dg.OpExecutionContext, config: FilteredCorpusConfig, item: dict) -> dict:
    """Filter one group of raw shards into the work area, complete or absent (a group finished by an earlier
    attempt is reused, not redone), each worker auditing the kept shards it wrote for PII with the independent
    detector."""
    work = WorkItem.from_dict(item)
    with unreadable_shards_fail_at_once(work.group.key):
        stats, leaks, reused = filter_group(work, config.processes)
    context.log.info(f"{work.group.key}: {len(work.group.shards)} shards, {stats.documents_in} documents"
                     + (" (finished earlier, reused)" if reused else "") + f", {len(leaks)} PII left in kept text")
    return {"group": work.group.key, "documents_in": stats.documents_in, "kept": stats.kept,
            "rejected": stats.rejected, "reused": reused, "residual_pii": leaks}


@dg.op(out=check_outs(CHECKS), retry_policy=IO_RETRY)
def publish_filtered_corpus(context: dg.OpExecutionContext, config: FilteredCorpusConfig, lake: LakeResource,
                            mlflow_tracking: MlflowTracking, plan: dict, groups: list):
    """Swap the source's folder in from the groups' shards, then the checks, lineage and MLflow run."""
    source = context.partition_key
    work = WorkPlan.from_dict(plan)
    raw_shards = [Path(shard) for group in work.groups for shard in group.shards]
    out = lake.path("filtered_corpus", source)
    stats = publish_filter(work, out)
    audit = audit_filter(raw_shards, out)
    balanced = audit["documents_in"] == audit["kept"] + audit["rejected"]
    leaks = [leak for group in sorted(groups, key=lambda g: g["group"])
             for leak in group["residual_pii"]][:REPORT_LIMIT]  # each group audited its own kept shards
    samples = [{"reason": reason, **sample} for reason, rows in sorted(stats.rejected_samples.items())
               for sample in rows]
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=raw_shards, code_version=CODE_VERSION,
        params={"source": source, **config.model_dump()},
        metrics={"documents_in": stats.documents_in, "kept": stats.kept, "rejected": stats.rejected,
                 "bytes_in": stats.bytes_in, "bytes_out": stats.bytes_out},
    )
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **parquet_metadata(list_shards(out / KEPT), CORPUS_SCHEMA),
            "documents_in": stats.documents_in,
            "kept": stats.kept,
            "rejected": stats.rejected,
            "rejected_by_reason": dg.MetadataValue.json(stats.rejected_by_reason),
            "lang_histogram": dg.MetadataValue.json(stats.lang_histogram),
            "redactions_by_type": dg.MetadataValue.json(stats.redactions_by_type),
            "code_switched": stats.code_switched,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "rejected_samples": dg.MetadataValue.md(markdown_table(samples, ["reason", "id", "lang", "text"])),
            "rejected_reasons": count_table(stats.rejected_by_reason, "reason"),
            "languages": language_table({"documents_in": stats.lang_histogram,
                                         "kept": lang_counts(list_shards(out / KEPT)),
                                         "rejected": lang_counts(list_shards(out / REJECTED))}),
            "fanout/groups": len(groups),
            "fanout/groups_reused": sum(bool(g["reused"]) for g in groups),
            **stage.metadata(out),
        },
        check_results=[
            dg.AssetCheckResult(check_name="accounting", passed=balanced, metadata=audit),
            dg.AssetCheckResult(check_name="no_pii_in_kept", passed=not leaks,
                                metadata={"found": dg.MetadataValue.json(leaks)}),
        ],
    )


@dg.graph_asset(
    partitions_def=source_partitions,
    ins={"raw_corpus": dg.AssetIn(dagster_type=dg.Nothing)},
    **stage_graph_args(CORPUS, {"parquet", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=CHECKS,
    config=one_config(FilteredCorpusConfig, "plan_filtered_corpus", "filter_shard_group", "publish_filtered_corpus"),
)
def filtered_corpus(raw_corpus):  # a graph input that only orders the steps
    """Kept and rejected documents of one source; every rejected row carries the first rule that dropped it.
    One step per group of raw shards (`max_steps`, `shard_group_mb`), then one that publishes. Its data
    version is the hash of the kept and rejected shards."""
    plan = plan_filtered_corpus(start_after=raw_corpus)
    groups = plan.items.map(filter_shard_group).collect()
    return graph_outputs(publish_filtered_corpus(plan.plan, groups), CHECKS)
