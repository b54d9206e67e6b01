"""Partition definitions of the contract: sources for the raw and filtered corpus, domains for adaptation."""

import dagster as dg

from fm_pipeline.lake.paths import DOMAINS, SOURCES

source_partitions = dg.StaticPartitionsDefinition(list(SOURCES))
domain_partitions = dg.StaticPartitionsDefinition(list(DOMAINS))
