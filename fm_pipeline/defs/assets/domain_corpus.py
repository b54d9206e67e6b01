"""domain_corpus: one domain's text through the general corpus's readers, filters and dedup, split train/val."""

from pathlib import Path

import dagster as dg

from fm_pipeline import paths
from fm_pipeline.curation.dedup import MinHashConfig
from fm_pipeline.curation.domain_corpus import DomainCorpusConfig, build_domain_corpus, domain_input
from fm_pipeline.curation.filter_stage import FilterConfig
from fm_pipeline.curation.parquet_io import count_rows, iter_rows, list_shards
from fm_pipeline.defs.partitions import domain_partitions
from fm_pipeline.defs.resources import LakeResource
from fm_pipeline.defs.tables import markdown_table


class DomainCorpusAssetConfig(dg.Config):
    input_root: str | None = None
    """One sub-folder (or one file `<domain>.jsonl`) per domain; defaults to FM_DOMAIN_CORPUS, else the
    embedded sample domain corpus."""
    val_fraction: float = 0.15
    min_val_docs: int = 2
    processes: int = 0


@dg.asset(
    partitions_def=domain_partitions,
    deps=["deduped_corpus"],
    group_name="adaptation",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec("accounting", asset="domain_corpus",
                          description="documents in = filter rejected + dedup removed + train + val"),
        dg.AssetCheckSpec("train_val_disjoint", asset="domain_corpus", description="no document is in both splits"),
    ],
)
def domain_corpus(context: dg.AssetExecutionContext, config: DomainCorpusAssetConfig,
                  lake: LakeResource) -> dg.MaterializeResult:
    """A domain's documents, filtered and deduplicated like the general corpus, split train/val by id hash;
    documents the general corpus already holds are reported."""
    domain = context.partition_key
    root = paths.domain_corpus_root() if config.input_root is None else Path(config.input_root)
    out = lake.path("domain_corpus", domain)
    minhash = MinHashConfig()
    general = sorted((lake.path("deduped_corpus") / "signatures").glob("*.parquet"))
    stats = build_domain_corpus(domain, domain_input(root, domain), out, general, DomainCorpusConfig(
        filter=FilterConfig(processes=config.processes), minhash=minhash, val_fraction=config.val_fraction,
        min_val_docs=config.min_val_docs,
    ))
    train_ids = {r["id"] for r in iter_rows(list_shards(out / "train"), columns=["id"])}
    val_ids = {r["id"] for r in iter_rows(list_shards(out / "val"), columns=["id"])}
    removed = count_rows(list_shards(out / "deduped" / "removed"))
    accounted = stats["filter_rejected"] + removed + len(train_ids) + len(val_ids)
    overlap = [{"domain_id": k, "general_id": v} for k, v in stats["overlap_examples"].items()]
    return dg.MaterializeResult(
        metadata={
            "documents_in": stats["documents_in"],
            "quarantined": stats["quarantined"],
            "filter_rejected": stats["filter_rejected"],
            "rejected_by_reason": dg.MetadataValue.json(stats["rejected_by_reason"]),
            "duplicates_removed": removed,
            "train_documents": stats["train_documents"],
            "val_documents": stats["val_documents"],
            "lang_histogram": dg.MetadataValue.json(stats["lang_histogram"]),
            "in_general_corpus": stats["in_general_corpus"],
            "general_overlap_examples": dg.MetadataValue.md(markdown_table(overlap, ["domain_id", "general_id"])),
            "path": dg.MetadataValue.path(str(out)),
        },
        check_results=[
            dg.AssetCheckResult(check_name="accounting", passed=accounted == stats["documents_in"],
                                metadata={"documents_in": stats["documents_in"], "accounted": accounted}),
            dg.AssetCheckResult(check_name="train_val_disjoint", passed=not train_ids & val_ids,
                                metadata={"shared": len(train_ids & val_ids)}),
        ],
    )
