"""fm-pipeline: a foundation-model pipeline as Dagster assets with one lineage from raw text to model."""

__version__ = "0.1.0"
