"""The checkpoint folder format: `model.safetensors` + `config.json` (+ `training_state.pt` and
`run_identity.json` in the step checkpoints a run resumes from), and its atomic save, load and publish.

Loading never unpickles arbitrary objects: weights come from safetensors, and the training state (optimizer,
scheduler, step, RNG and data positions: tensors and plain numbers) through `torch.load(weights_only=True)`.
Weights are saved with `safetensors.torch.save_model`, which stores a tied tensor (the embedding shared with
the output layer) once and restores the tie on load.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from fm_pipeline.lake.staging import recover, swapped_dir
from fm_pipeline.modeling.checkpoint_files import CONFIG, IDENTITY, STATE, WEIGHTS, load_config
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model


def save_checkpoint(
    folder: Path, model: nn.Module, model_config: ModelConfig, state: dict[str, Any] | None,
    identity: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically: built beside `folder`, then renamed into place, so a crash
    mid-write never leaves a folder that looks complete."""
    folder = Path(folder)
    with swapped_dir(folder) as staging:  # replaces a folder of the same step written earlier
        save_model(model, str(staging / WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(model_config.to_dict(), indent=2) + "\n", encoding="utf-8")
        if identity is not None:
            (staging / IDENTITY).write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if state is not None:
            torch.save(state, staging / STATE)
    return folder


def load_checkpoint(folder: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """The model of a checkpoint folder, built from its `config.json` and filled from safetensors (strict:
    every parameter must be present)."""
    folder = Path(folder)
    config = load_config(folder)
    model = build_model(config)
    load_model(model, str(folder / WEIGHTS), strict=True, device=str(device))
    return model.to(device), config


def load_training_state(folder: Path) -> dict[str, Any]:
    """Tensors and plain containers only; anything else in the file raises instead of running code."""
    return torch.load(Path(folder) / STATE, map_location="cpu", weights_only=True)


def publish(checkpoint: Path, out_dir: Path, files: dict[str, bytes] | None = None) -> Path:
    """Make `out_dir` (the lake's checkpoint folder) hold exactly the checkpoint's weights and config, plus
    `files` (name -> bytes), in one atomic step: the new folder is built beside it (hard links when the
    filesystem allows, else copies) and swapped in whole, so no reader or crash ever sees the weights of one
    run with the config of another. Anything else that was in `out_dir` goes with the old folder."""
    out_dir = Path(os.path.abspath(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover(out_dir)  # what a killed publisher left
    with swapped_dir(out_dir) as staging:
        for name in (WEIGHTS, CONFIG):
            try:
                os.link(checkpoint / name, staging / name)
            except OSError:
                shutil.copyfile(checkpoint / name, staging / name)
        for name, data in (files or {}).items():
            (staging / name).write_bytes(data)
    return out_dir
