"""domain_corpus: one domain's text through the general corpus's readers, filters and dedup, split train/val."""

import json
from pathlib import Path

import dagster as dg

from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.curation.domain_corpus import DomainCorpusConfig as DomainCurationConfig
from fm_pipeline.curation.domain_corpus import build_domain_corpus, domain_input
from fm_pipeline.curation.filter_stage import FilterConfig
from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import count_table, language_table, parquet_metadata
from fm_pipeline.defs.partitions import domain_partitions
from fm_pipeline.defs.policies import ADAPTATION, stage_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake import paths
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fingerprint import HashCache, fingerprint_files, input_version, version_of
from fm_pipeline.lake.layout import PROVENANCE_FILE
from fm_pipeline.lake.parquet_io import count_rows, iter_rows, list_shards

CODE_VERSION = "1"
"""Bump when a change to the domain pipeline (or the general one it reuses) changes the output."""


class DomainCorpusConfig(dg.Config):
    input_root: str | None = None
    """One sub-folder (or one file `<domain>.jsonl`) per domain; defaults to FM_DOMAIN_CORPUS, else the
    embedded sample domain corpus."""
    val_fraction: float = 0.15
    min_val_docs: int = 2
    processes: int = 0


@dg.asset(
    partitions_def=domain_partitions,
    deps=["deduped_corpus", dg.AssetDep("domain_files")],
    **stage_asset_args(ADAPTATION, {"parquet", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec("accounting", asset="domain_corpus", blocking=True,
                          description="documents in = filter rejected + dedup removed + train + val"),
        dg.AssetCheckSpec("train_val_disjoint", asset="domain_corpus", blocking=True,
                          description="no document is in both splits"),
    ],
)
def domain_corpus(context: dg.AssetExecutionContext, config: DomainCorpusConfig, lake: LakeResource,
                  mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """A domain's documents, filtered and deduplicated like the general corpus, split train/val by id hash;
    documents the general corpus already holds are reported. Its data version is a hash of the domain's input
    files (names, sizes, content hashes), the general corpus's signatures, the code version and the config."""
    domain = context.partition_key
    root = paths.domain_corpus_root() if config.input_root is None else Path(config.input_root)
    source = domain_input(root, domain)
    out = lake.path("domain_corpus", domain)
    minhash = MinHashConfig()
    general = sorted((lake.path("deduped_corpus") / "signatures").glob("*.parquet"))
    cache = HashCache()
    input_ver, fingerprints = input_version(source, cache)
    stats = build_domain_corpus(domain, source, out, general, library_config(
        config, DomainCurationConfig, filter=library_config(config, FilterConfig), minhash=minhash))
    input_root = source if source.is_dir() else source.parent
    general_fps = fingerprint_files(general, lake.base(), cache)
    splits = {split: list_shards(out / split) for split in ("train", "val")}
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=[input_root / fp.path for fp in fingerprints] + general,
        code_version=CODE_VERSION, splits=splits, provenance=out / "raw" / PROVENANCE_FILE, cache=cache,
        data_version=version_of([*fingerprints, *general_fps], CODE_VERSION,
                                json.dumps(config.model_dump(), sort_keys=True)),
        extra={"input_root": str(input_root.resolve()), "input_version": input_ver},
        params={"domain": domain, "input": str(source), "input_version": input_ver, **config.model_dump()},
        metrics={k: getattr(stats, k) for k in ("documents_in", "quarantined", "filter_rejected", "train_documents",
                                       "val_documents", "in_general_corpus")},
    )
    train_ids = {r["id"] for r in iter_rows(list_shards(out / "train"), columns=["id"])}
    val_ids = {r["id"] for r in iter_rows(list_shards(out / "val"), columns=["id"])}
    removed = count_rows(list_shards(out / "deduped" / "removed"))
    accounted = stats.filter_rejected + removed + len(train_ids) + len(val_ids)
    overlap = [{"domain_id": k, "general_id": v} for k, v in stats.overlap_examples.items()]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **parquet_metadata(splits["train"] + splits["val"], CORPUS_SCHEMA),
            "documents_in": stats.documents_in,
            "quarantined": stats.quarantined,
            "filter_rejected": stats.filter_rejected,
            "rejected_by_reason": dg.MetadataValue.json(stats.rejected_by_reason),
            "duplicates_removed": removed,
            "train_documents": stats.train_documents,
            "val_documents": stats.val_documents,
            "lang_histogram": dg.MetadataValue.json(stats.lang_histogram),
            "in_general_corpus": stats.in_general_corpus,
            "general_overlap_examples": dg.MetadataValue.md(markdown_table(overlap, ["domain_id", "general_id"])),
            "rejected_reasons": count_table(stats.rejected_by_reason, "reason"),
            "languages": language_table({"documents_in": stats.lang_histogram}),
            "input_version": input_ver,
            **stage.metadata(out),
        },
        check_results=[
            dg.AssetCheckResult(check_name="accounting", passed=accounted == stats.documents_in,
                                metadata={"documents_in": stats.documents_in, "accounted": accounted}),
            dg.AssetCheckResult(check_name="train_val_disjoint", passed=not train_ids & val_ids,
                                metadata={"shared": len(train_ids & val_ids)}),
        ],
    )
