"""raw_corpus: every input file of one source turned into Parquet shards, with a quarantine."""

from pathlib import Path

import dagster as dg

from fm_pipeline import paths
from fm_pipeline.curation.ingest import IngestConfig, audit_accounting, ingest_source
from fm_pipeline.defs.partitions import source_partitions
from fm_pipeline.defs.resources import LakeResource


class RawCorpusConfig(dg.Config):
    input_root: str | None = None
    """Folder with one sub-folder per source; defaults to FM_RAW_CORPUS, else the embedded sample corpus."""
    shard_mb: int = 64
    max_document_mb: int = 16
    html_extractor: str = "resiliparse"


@dg.asset(
    partitions_def=source_partitions,
    group_name="curation",
    kinds={"parquet"},
    check_specs=[dg.AssetCheckSpec("accounting", asset="raw_corpus",
                                   description="records seen = documents written + quarantined")],
)
def raw_corpus(context: dg.AssetExecutionContext, config: RawCorpusConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Raw documents of one source, read from every supported format, bad records quarantined."""
    source = context.partition_key
    root = paths.raw_corpus_root() if config.input_root is None else Path(config.input_root)
    out = lake.path("raw_corpus", source)
    stats = ingest_source(
        source, root / source, out,
        IngestConfig(config.shard_mb * 2**20, config.max_document_mb * 2**20, config.html_extractor),
    )
    audit = audit_accounting(out)
    balanced = audit["records_seen"] == audit["documents_written"] + audit["quarantined"]
    return dg.MaterializeResult(
        metadata={
            "files": stats.files,
            "input_bytes": stats.input_bytes,
            "documents": stats.documents,
            "text_bytes": stats.text_bytes,
            "quarantined": stats.quarantined,
            "quarantined_by_kind": dg.MetadataValue.json(stats.quarantined_by_kind),
            "documents_by_format": dg.MetadataValue.json(stats.documents_by_format),
            "shards": len(stats.shards),
            "path": dg.MetadataValue.path(str(out)),
        },
        check_results=[dg.AssetCheckResult(check_name="accounting", passed=balanced, metadata=audit)],
    )
