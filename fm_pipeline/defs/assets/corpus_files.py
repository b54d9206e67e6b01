"""raw_files and domain_files: the input folders, as observable source assets.

An observation records, per source (or domain), a data version hashed from the folder's input files: names,
sizes and content hashes. When it changes, `raw_corpus` (or `domain_corpus`) of that partition is stale, and
automation reruns it. The nightly schedule observes with full content hashing; the folder sensor observes
every minute, re-reading only files whose size or modification time changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from fm_pipeline.curation.domain_corpus import domain_input
from fm_pipeline.defs.partitions import domain_partitions, source_partitions
from fm_pipeline.defs.policies import ADAPTATION, CORPUS, OWNERS
from fm_pipeline.lake import paths
from fm_pipeline.lake.fingerprint import HashCache, input_version

DATA_VERSION_TAG = "dagster/data_version"

RAW_FILES = dg.AssetKey("raw_files")
DOMAIN_FILES = dg.AssetKey("domain_files")


def _spec(key: dg.AssetKey, partitions_def: dg.PartitionsDefinition, group: str, what: str) -> dg.AssetSpec:
    # Built in a function: `load_defs` would take a module-level AssetSpec for an asset of its own.
    return dg.AssetSpec(
        key, partitions_def=partitions_def, group_name=group, owners=OWNERS[group], skippable=True,
        description=f"{what} Observed, not built: its data version per partition is a hash of the input files' "
                    "names, sizes and content hashes.",
    )


def raw_folder(source: str) -> Path:
    return paths.raw_corpus_root() / source


def domain_folder(domain: str) -> Path:
    return domain_input(paths.domain_corpus_root(), domain)


FOLDERS: dict[dg.AssetKey, tuple[dg.PartitionsDefinition, Callable[[str], Path]]] = {
    RAW_FILES: (source_partitions, raw_folder),
    DOMAIN_FILES: (domain_partitions, domain_folder),
}


def hash_cache() -> HashCache:
    """The sensor's content-hash cache, beside the lake."""
    return HashCache(paths.pipeline_home() / "cache" / "input_hashes.json")


def observe(key: dg.AssetKey, cache: HashCache | None = None) -> Iterator[dg.AssetObservation]:
    """One observation per partition of `key`, with the folder's data version."""
    partitions_def, folder_of = FOLDERS[key]
    for partition in partitions_def.get_partition_keys():
        folder = folder_of(partition)
        version, fingerprints = input_version(folder, cache)
        yield dg.AssetObservation(
            asset_key=key, partition=partition, tags={DATA_VERSION_TAG: version},
            metadata={"files": len(fingerprints), "bytes": sum(fp.size for fp in fingerprints),
                      "path": dg.MetadataValue.path(str(folder))},
        )


@dg.multi_observable_source_asset(specs=[_spec(
    RAW_FILES, source_partitions, CORPUS,
    "The raw corpus folder (FM_RAW_CORPUS, else the embedded sample), one sub-folder per source.")],
    name="observe_raw_files")
def raw_files() -> Iterator[dg.AssetObservation]:
    yield from observe(RAW_FILES)


@dg.multi_observable_source_asset(specs=[_spec(
    DOMAIN_FILES, domain_partitions, ADAPTATION,
    "The domain corpus folder (FM_DOMAIN_CORPUS, else the embedded sample), one sub-folder or file per domain.")],
    name="observe_domain_files")
def domain_files() -> Iterator[dg.AssetObservation]:
    yield from observe(DOMAIN_FILES)
