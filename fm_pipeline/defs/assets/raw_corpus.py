"""raw_corpus: every input file of one source turned into Parquet shards, with a quarantine."""

import json
from pathlib import Path

import dagster as dg

from fm_pipeline.curation.ingest import IngestConfig, audit_accounting, ingest_source
from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import count_table, parquet_metadata
from fm_pipeline.defs.partitions import source_partitions
from fm_pipeline.defs.policies import CORPUS, stage_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.lake import paths
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fingerprint import HashCache, input_version, version_of
from fm_pipeline.lake.layout import PROVENANCE_FILE
from fm_pipeline.lake.parquet_io import list_shards

CODE_VERSION = "1"
"""Bump when a change to ingestion changes what it writes for the same input files."""


class RawCorpusConfig(dg.Config):
    input_root: str | None = None
    """Folder with one sub-folder per source; defaults to FM_RAW_CORPUS, else the embedded sample corpus."""
    shard_mb: int = 64
    max_document_mb: int = 16
    html_extractor: str = "resiliparse"


class InputsChangedError(RuntimeError):
    """Input files changed while they were being read: a passing condition, so the step is retried."""


@dg.asset(
    partitions_def=source_partitions,
    deps=[dg.AssetDep("raw_files")],
    **stage_asset_args(CORPUS, {"parquet", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec("accounting", asset="raw_corpus", blocking=True,
                                   description="documents in = kept + quarantined")],
)
def raw_corpus(context: dg.AssetExecutionContext, config: RawCorpusConfig, lake: LakeResource,
               mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """Raw documents of one source, read from every supported format, bad records quarantined. Its data
    version is a hash of the input files (names, sizes, content hashes), the code version and the config."""
    source = context.partition_key
    root = paths.raw_corpus_root() if config.input_root is None else Path(config.input_root)
    folder = root / source
    out = lake.path("raw_corpus", source)
    cache = HashCache()
    before, fingerprints = input_version(folder, cache)
    stats = ingest_source(
source, folder, out, library_config(config, IngestConfig))
    if input_version(folder, cache)[0] != before:
        raise InputsChangedError(f"input files under {folder} changed while they were read; retrying")
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=[folder / fp.path for fp in fingerprints],
        code_version=CODE_VERSION, provenance=out / PROVENANCE_FILE, cache=cache,
        data_version=version_of(fingerprints, CODE_VERSION, json.dumps(config.model_dump(), sort_keys=True)),
        extra={"input_root": str(folder.resolve()), "input_version": before},
        params={"source": source, "input_folder": str(folder), "input_version": before, **config.model_dump()},
        metrics={"files": stats.files, "input_bytes": stats.input_bytes, "kept": stats.kept,
                 "quarantined": stats.quarantined},
    )
    audit = audit_accounting(out)
    balanced = audit["documents_in"] == audit["kept"] + audit["quarantined"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **parquet_metadata(list_shards(out), CORPUS_SCHEMA),
            "files": stats.files,
            "input_bytes": stats.input_bytes,
            "input_version": before,
            "kept": stats.kept,
            "text_bytes": stats.text_bytes,
            "quarantined": stats.quarantined,
            "quarantined_by_kind": dg.MetadataValue.json(stats.quarantined_by_kind),
            "quarantine_reasons": count_table(stats.quarantined_by_kind, "kind", "records"),
            "kept_by_format": dg.MetadataValue.json(stats.kept_by_format),
            "formats": count_table(stats.kept_by_format, "format"),
            "shards": len(stats.shards),
            **stage.metadata(out),
        },
        check_results=[dg.AssetCheckResult(check_name="accounting", passed=balanced, metadata=audit)],
    )
