"""The names of the lake's files and folders that one stage writes and another (or the Dagster layer) reads:
defined once, so a writer and its readers cannot drift apart. The checkpoint folder's own files
(`model.safetensors`, `config.json`, ...) are named in `modeling.checkpoint`, the token files in
`tokenization.packed`."""

from __future__ import annotations

TOKENIZER_MODEL = "tokenizer.model"
"""The SentencePiece model: the tokenizer stage's output, copied beside an adapted or compressed model."""
TOKENIZER_VOCAB = "tokenizer.vocab"

LINEAGE_RECORD = "_lineage.json"
"""Every stage's lineage record (`lake.lineage`); a leading `_` keeps it out of the data files."""
MANIFEST = "_manifest.json"
"""A curation stage's statistics."""
GROUPS_AREA = "groups"
"""A fanned-out stage's work area beside its folder `<name>`: `.<name>.groups/<plan id>/<group key>/`
(`lake.fanout`)."""
GROUP_DONE = "_group.json"
"""A group's completion marker, holding its result: the group's folder is complete when it has one."""

SHARD_PREFIX = "part"
"""Parquet shards are `part-00000.parquet`, `part-00001.parquet`, ... (`parquet_io.ShardWriter`)."""
QUARANTINE = "quarantine"
"""Ingestion's folder of records it could not read, in `QUARANTINE_FILE`."""
QUARANTINE_FILE = "quarantine.parquet"
PROVENANCE_FILE = "provenance/documents.parquet"
"""Which input file (relative to the source folder) each written document came from: the last hop of lineage."""

KEPT = "kept"
REJECTED = "rejected"
"""The filter stage's output folders."""
REMOVED = "removed"
SIGNATURES = "signatures"
"""Dedup writes `KEPT`, `REMOVED` and its MinHash `SIGNATURES`."""
DEDUP_WORK = "_dedup"
"""Dedup's intermediate files, beside its outputs (a leading `_`: not data): the plan, then one folder per step."""
DEDUP_PLAN = "plan.json"
EXACT_RUNS = "exact_runs"
EXACT_GROUPS = "exact_groups"
BAND_RUNS = "band_runs"
BUCKET_PAIRS = "bucket_pairs"
CLUSTERS_FILE = "clusters.parquet"
FILTER_RECORDS = "filtered"
"""Under `DEDUP_WORK`: per signature file a sorted run of exact keys and one of band hashes, per key range the
exact groups, per bucket the verified pairs, one cluster file, and per input shard the filter's record."""
TRAIN = "train"
VAL = "val"
DROPPED = "dropped"
"""The splits of the balanced and domain corpora (and of their token files); the balancer also writes what it
left out to `DROPPED`."""
RAW = "raw"
FILTERED = "filtered"
DEDUPED = "deduped"
"""A domain corpus's sub-stage folders, beside its `TRAIN` and `VAL`."""

REPEAT_MARK = "#rep"
"""Balanced training copies are `<id>#rep<k>`; lineage counts them as their original document."""
