"""Tiny model configs, small enough that every test builds and trains them in well under a second."""

from __future__ import annotations

from typing import Any

from fm_pipeline.modeling.config import ModelConfig


def tiny_config(architecture: str = "decoder_only", **overrides: Any) -> ModelConfig:
    fields: dict[str, Any] = dict(
        architecture=architecture, vocab_size=48, block_size=24, n_layer=2, n_head=4, d_model=32,
    )
    fields.update(overrides)
    return ModelConfig(**fields)
