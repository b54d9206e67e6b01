"""Transformer models for the pipeline: attention, positions, three architectures from one set of blocks,
the pretraining objectives that feed them, architecture selection and compute-optimal sizing."""
