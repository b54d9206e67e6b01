"""Partition definitions of the contract: sources for the raw and filtered corpus, domains for domain adaptation,
and languages (dynamic: the languages present in `balanced_shards`) for language adaptation."""

from collections.abc import Mapping

import dagster as dg

from fm_pipeline.lake.paths import DOMAINS, SOURCES

source_partitions = dg.StaticPartitionsDefinition(list(SOURCES))
domain_partitions = dg.StaticPartitionsDefinition(list(DOMAINS))

LANGUAGE_PARTITIONS = "language"
language_partitions = dg.DynamicPartitionsDefinition(name=LANGUAGE_PARTITIONS)
"""Keys added by `balanced_shards` when it materializes (`adaptable_languages`); a language that later leaves the
corpus keeps its key, so its materializations stay browsable."""


def adaptable_languages(train_bytes: Mapping[str, int], val_documents: Mapping[str, int]) -> list[str]:
    """The languages a model can be adapted to and measured on: some training text and at least one val
    document, undetermined text (`und`) excluded; sorted."""
    return sorted(lang for lang, n in train_bytes.items()
                  if n > 0 and val_documents.get(lang, 0) > 0 and lang != "und")
