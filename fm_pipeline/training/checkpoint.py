"""Checkpoint folders: `model.safetensors` + `config.json` (+ `training_state.pt` to resume).

Loading never unpickles arbitrary objects: weights come from safetensors, and the training state (optimizer,
scheduler, step, RNG and data positions: tensors and plain numbers) through `torch.load(weights_only=True)`.
Weights are saved with `safetensors.torch.save_model`, which stores a tied tensor (the embedding shared with
the output layer) once and restores the tie on load.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "training_state.pt"
STEP_PREFIX = "step-"


def save_checkpoint(folder: Path, model: nn.Module, model_config: ModelConfig, state: dict[str, Any] | None) -> Path:
    """Write a checkpoint folder atomically: built beside `folder`, then renamed into place, so a crash
    mid-write never leaves a folder that looks complete."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    save_model(model, str(staging / WEIGHTS))
    (staging / CONFIG).write_text(json.dumps(model_config.to_dict(), indent=2) + "\n", encoding="utf-8")
    if state is not None:
        torch.save(state, staging / STATE)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder


def load_checkpoint(folder: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """The model of a checkpoint folder, built from its `config.json` and filled from safetensors (strict:
    every parameter must be present)."""
    folder = Path(folder)
    config = ModelConfig.from_dict(json.loads((folder / CONFIG).read_text(encoding="utf-8")))
    model = build_model(config)
    load_model(model, str(folder / WEIGHTS), strict=True, device=str(device))
    return model.to(device), config


def load_training_state(folder: Path) -> dict[str, Any]:
    """Tensors and plain containers only; anything else in the file raises instead of running code."""
    return torch.load(Path(folder) / STATE, map_location="cpu", weights_only=True)


def step_folder(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"{STEP_PREFIX}{step:07d}"


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete step checkpoints under `out_dir/checkpoints`, oldest first (staging folders are hidden)."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(STEP_PREFIX) and (p / STATE).is_file())


def clear_checkpoints(out_dir: Path) -> None:
    """Remove the step checkpoints of an earlier run, so a later resume cannot pick up another run's state."""
    shutil.rmtree(Path(out_dir) / "checkpoints", ignore_errors=True)


def prune_checkpoints(out_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints (all are kept when `keep` <= 0), so long runs do not
    fill the disk."""
    if keep > 0:
        for old in list_checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old)


def publish(checkpoint: Path, out_dir: Path) -> Path:
    """Put the final weights and config at the top of `out_dir` (the lake's checkpoint folder), as hard
    links when the filesystem allows, else copies."""
    out_dir = Path(out_dir)
    for name in (WEIGHTS, CONFIG):
        target, tmp = out_dir / name, out_dir / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            os.link(checkpoint / name, tmp)
        except OSError:
            shutil.copyfile(checkpoint / name, tmp)
        os.replace(tmp, target)
    return out_dir
