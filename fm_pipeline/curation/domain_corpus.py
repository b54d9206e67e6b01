"""A domain corpus (biomedical, legal, ...) through the same stages as the general corpus: the readers,
the filters, exact and near dedup, then a train/val split by id hash; and how much of it the general
corpus already holds (text seen in pretraining measures memory, not adaptation).

Layout under the domain's folder: `raw/` (ingest, with its quarantine), `filtered/{kept,rejected}/`,
`deduped/{kept,removed,signatures}/`, `train/`, `val/` and `_manifest.json`, built together in one staging
folder and published in one atomic step (`staged_dir`), so readers never see the split of one run beside the
dedup of another.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fm_pipeline.curation.dedup.clusters import find_duplicates
from fm_pipeline.curation.dedup.minhash import MinHashConfig
from fm_pipeline.curation.dedup.plan import DEFAULT_VERIFY_THRESHOLD
from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.curation.mixing.split import val_ids
from fm_pipeline.lake.atomic import atomic_write_bytes
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.layout import DEDUPED, FILTERED, KEPT, MANIFEST, RAW, SIGNATURES, TRAIN, VAL
from fm_pipeline.lake.parquet_io import (
    ShardWriter,
    count_rows,
    iter_rows,
    list_shards,
)
from fm_pipeline.lake.staging import staged_dir


@dataclass
class DomainCorpusConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD
    val_fraction: float = 0.15
    """Share of documents (per language, lowest id hashes first) held out for evaluating adaptation."""
    min_val_docs: int = 2


@dataclass
class DomainCorpusStats:
    """One domain's counts through the stages, also its `_manifest.json`. `documents_in` counts the documents
    ingest wrote (the filter's input; `quarantined` records are apart), so
    `documents_in == filter_kept + filter_rejected` and
    `filter_kept == kept + exact_duplicates + near_duplicates` and `kept == train_documents + val_documents`."""

    domain: str
    files: int
    documents_in: int
    quarantined: int
    filter_kept: int
    filter_rejected: int
    rejected_by_reason: dict[str, int]
    lang_histogram: dict[str, int]
    exact_duplicates: int
    near_duplicates: int
    kept: int
    train_documents: int
    val_documents: int
    in_general_corpus: int
    """Domain documents the general corpus already holds, exactly or nearly."""
    overlap_examples: dict[str, str]
    """Up to 10 of them: domain id -> the general-corpus id it duplicates."""


def domain_input(root: Path, domain: str) -> Path:
    """`<root>/<domain>/` when that folder exists, else a single file `<root>/<domain>.<ext>` (e.g.
    `corpora/domain/legal.jsonl`), else the (missing) folder, which reads as no files."""
    folder = Path(root) / domain
    if folder.is_dir():
        return folder
    files = sorted(p for p in Path(root).glob(f"{domain}.*") if p.is_file())
    return files[0] if files else folder


def _split(kept: list[Path], out: Path, config: DomainCorpusConfig) -> dict[str, int]:
    """train/ and val/ (made here, in the unpublished folder `out`) by the stratified id-hash rule the general
    corpus uses, each row written once."""
    val = val_ids(kept, config.val_fraction, config.min_val_docs, min_docs_for_val=2 * config.min_val_docs)
    counts = {TRAIN: 0, VAL: 0}
    (out / TRAIN).mkdir()
    (out / VAL).mkdir()
    with ShardWriter(out / TRAIN, CORPUS_SCHEMA) as train_w, ShardWriter(out / VAL, CORPUS_SCHEMA) as val_w:
        for row in iter_rows(kept, columns=CORPUS_SCHEMA.names):
            split = VAL if row["id"] in val else TRAIN
            (val_w if split == VAL else train_w).write(row)
            counts[split] += 1
    return counts


def general_overlap(domain_signatures: list[Path], general_signatures: list[Path],
                    config: DomainCorpusConfig) -> dict[str, str]:
    """Domain document id -> the general-corpus document it duplicates (exactly or nearly), found by the
    same MinHash LSH as dedup over both sets of signatures."""
    if not domain_signatures or not general_signatures:
        return {}
    domain_ids = {row["id"] for row in iter_rows(domain_signatures, columns=["id"])}
    result = find_duplicates([*general_signatures, *domain_signatures], verify_threshold=config.verify_threshold)
    return {doc: survivor for doc, (survivor, _) in sorted(result.removed.items())
            if doc in domain_ids and survivor not in domain_ids}


def build_domain_corpus(
    domain: str, input_dir: Path, out: Path, general_signatures: list[Path],
    config: DomainCorpusConfig | None = None,
) -> DomainCorpusStats:
    """Ingest, filter, dedup and split one domain; report its overlap with the general corpus, given as the
    MinHash signature files `deduped_corpus` stored (same `config.minhash`). Returns the statistics also
    written to `_manifest.json`."""
    config = config or DomainCorpusConfig()
    out = Path(out)
    with staged_dir(out) as stage:
        stats = _build(domain, Path(input_dir), stage, out / DEDUPED / SIGNATURES, general_signatures, config)
        atomic_write_bytes(stage / MANIFEST,
                           json.dumps(asdict(stats), indent=2, sort_keys=True, ensure_ascii=False).encode())
    return stats


def _build(domain: str, input_dir: Path, stage: Path, signature_cache: Path, general_signatures: list[Path],
           config: DomainCorpusConfig) -> DomainCorpusStats:
    """Every step of `build_domain_corpus` into the staging folder `stage`; the dedup signatures of the
    published folder (`signature_cache`) are reused."""
    ingest = ingest_source(domain, input_dir, stage / RAW, config.ingest)
    filtered = filter_source(domain, list_shards(stage / RAW), stage / FILTERED, config.filter)
    dedup = dedup_corpus(list_shards(stage / FILTERED / KEPT), stage / DEDUPED,
                         processes=config.filter.processes or None, config=config.minhash,
                         verify_threshold=config.verify_threshold, signature_cache=signature_cache)
    kept = list_shards(stage / DEDUPED / KEPT)
    splits = _split(kept, stage, config)
    overlap = general_overlap(sorted((stage / DEDUPED / SIGNATURES).glob("*.parquet")), general_signatures,
                              config)
    return DomainCorpusStats(
        domain=domain,
        files=ingest.files,
        documents_in=ingest.kept,
        quarantined=ingest.quarantined,
        filter_kept=filtered.kept,
        filter_rejected=filtered.rejected,
        rejected_by_reason=filtered.rejected_by_reason,
        lang_histogram=filtered.lang_histogram,
        exact_duplicates=dedup.exact_duplicates,
        near_duplicates=dedup.near_duplicates,
        kept=count_rows(kept),
        train_documents=splits[TRAIN],
        val_documents=splits[VAL],
        in_general_corpus=len(overlap),
        overlap_examples=dict(list(overlap.items())[:10]),
    )
