"""filtered_corpus: normalized, language-identified, quality- and content-filtered, PII-redacted documents."""

import dagster as dg

from fm_pipeline.curation.filter_stage import FilterConfig, audit_filter, filter_source
from fm_pipeline.curation.pii_audit import residual_pii
from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import count_table, lang_counts, language_table, parquet_metadata
from fm_pipeline.defs.partitions import source_partitions
from fm_pipeline.defs.policies import CORPUS, IO_RETRY, OWNERS, RERUN_ON_CHANGE
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.parquet_io import list_shards

CODE_VERSION = "1"
"""Bump when a change to normalization, language ID, the rules or PII redaction changes the output."""


class FilteredCorpusConfig(dg.Config):
    lang_backend: str = "fasttext"
    min_lang_score: float = 0.4
    shard_mb: int = 64
    processes: int = 0
    """Worker processes over raw shards; 0 means one per core."""


@dg.asset(
    partitions_def=source_partitions,
    deps=["raw_corpus"],
    group_name=CORPUS,
    owners=OWNERS[CORPUS],
    kinds={"parquet", "mlflow"},
    code_version=CODE_VERSION,
    retry_policy=IO_RETRY,
    automation_condition=RERUN_ON_CHANGE,
    check_specs=[
        dg.AssetCheckSpec("accounting", asset="filtered_corpus", blocking=True,
                          description="documents in = kept + rejected"),
        dg.AssetCheckSpec("no_pii_in_kept", asset="filtered_corpus", blocking=True,
                          description="an independent PII detector finds nothing in kept text"),
    ],
)
def filtered_corpus(context: dg.AssetExecutionContext, config: FilteredCorpusConfig, lake: LakeResource,
                    mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """Kept and rejected documents of one source; every rejected row carries the first rule that dropped it.
    Its data version is the hash of the kept and rejected shards."""
    source = context.partition_key
    raw_shards = list_shards(lake.path("raw_corpus", source))
    out = lake.path("filtered_corpus", source)
    stats = filter_source(source, raw_shards, out, library_config(config, FilterConfig))
    audit = audit_filter(raw_shards, out)
    balanced = audit["documents_in"] == audit["kept"] + audit["rejected"]
    leaks = residual_pii(list_shards(out / "kept"))
    samples = [{"reason": reason, **sample} for reason, rows in sorted(stats.rejected_samples.items())
               for sample in rows]
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=raw_shards, code_version=CODE_VERSION,
        params={"source": source, **config.model_dump()},
        metrics={"documents_in": stats.documents_in, "kept": stats.kept, "rejected": stats.rejected,
                 "bytes_in": stats.bytes_in, "bytes_out": stats.bytes_out},
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **parquet_metadata(list_shards(out / "kept"), CORPUS_SCHEMA),
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
                                         "kept": lang_counts(list_shards(out / "kept")),
                                         "rejected": lang_counts(list_shards(out / "rejected"))}),
            **stage.metadata(out),
        },
        check_results=[
            dg.AssetCheckResult(check_name="accounting", passed=balanced, metadata=audit),
            dg.AssetCheckResult(check_name="no_pii_in_kept", passed=not leaks,
                                metadata={"found": dg.MetadataValue.json(leaks)}),
        ],
    )
