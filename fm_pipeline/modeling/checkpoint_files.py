"""What a checkpoint folder holds, by file name, and its model config: readable without torch (the Dagster code
location, lineage and comparisons read them; `checkpoint` saves and loads the weights)."""

from __future__ import annotations

import json
from pathlib import Path

from fm_pipeline.modeling.config import ModelConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "training_state.pt"
IDENTITY = "run_identity.json"
"""What run a step checkpoint belongs to (see `training.resume`): the training-relevant config, the tokenizer
checksum and the token files' version."""


def load_config(folder: Path) -> ModelConfig:
    """The model config of a checkpoint folder (its `config.json`), without building the model."""
    return ModelConfig.from_dict(json.loads((Path(folder) / CONFIG).read_text(encoding="utf-8")))
