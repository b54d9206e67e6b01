"""Checkpoint folders: `model.safetensors` + `config.json` (+ `training_state.pt` and `run_identity.json` to
resume).

A run that publishes to `out_dir` keeps its resumable step checkpoints in the sibling `<out_dir>.train_state/`
(`state_dir`), a stable place that survives a killed process and a retry, while `out_dir` itself is replaced
whole, in one atomic step, when the final checkpoint is published (`publish`).

Loading never unpickles arbitrary objects: weights come from safetensors, and the training state (optimizer,
scheduler, step, RNG and data positions: tensors and plain numbers) through `torch.load(weights_only=True)`.
Weights are saved with `safetensors.torch.save_model`, which stores a tied tensor (the embedding shared with
the output layer) once and restores the tie on load.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
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
IDENTITY = "run_identity.json"
"""What run a step checkpoint belongs to (see `training.resume`): the training-relevant config, the tokenizer
checksum and the token files' version."""
STEP_PREFIX = "step-"
STATE_SUFFIX = ".train_state"
RENAME_EXCHANGE = 2  # from <linux/fs.h>
AT_FDCWD = -100


def save_checkpoint(
    folder: Path, model: nn.Module, model_config: ModelConfig, state: dict[str, Any] | None,
    identity: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically: built beside `folder`, then renamed into place, so a crash
    mid-write never leaves a folder that looks complete."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    save_model(model, str(staging / WEIGHTS))
    (staging / CONFIG).write_text(json.dumps(model_config.to_dict(), indent=2) + "\n", encoding="utf-8")
    if identity is not None:
        (staging / IDENTITY).write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if state is not None:
        torch.save(state, staging / STATE)
    swap_in(staging, folder)
    _remove(staging)  # a folder of the same step written earlier, if there was one
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


def state_dir(out_dir: Path) -> Path:
    """Where the step checkpoints of the run publishing to `out_dir` live: `<out_dir>.train_state` beside it,
    on the same filesystem, outside the folder that `publish` replaces."""
    out_dir = Path(os.path.abspath(out_dir))
    return out_dir.with_name(out_dir.name + STATE_SUFFIX)


def step_folder(states: Path, step: int) -> Path:
    return Path(states) / f"{STEP_PREFIX}{step:07d}"


def list_checkpoints(states: Path) -> list[Path]:
    """Complete step checkpoints in `states`, oldest first (staging folders are hidden)."""
    states = Path(states)
    if not states.is_dir():
        return []
    return sorted(p for p in states.iterdir() if p.name.startswith(STEP_PREFIX) and (p / STATE).is_file())


def clear_checkpoints(states: Path) -> None:
    """Remove every step checkpoint and leftover staging folder in `states`, so a later resume cannot pick up
    another run's state."""
    _remove_named(states, (STEP_PREFIX, "."))


def sweep_staging(states: Path) -> None:
    """Remove the staging folders a killed writer left (their names start with a dot)."""
    _remove_named(states, (".",))


def _remove_named(states: Path, prefixes: tuple[str, ...]) -> None:
    states = Path(states)
    if states.is_dir():
        for path in states.iterdir():
            if path.name.startswith(prefixes):
                _remove(path)


def prune_checkpoints(states: Path, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints (all are kept when `keep` <= 0), so long runs do not
    fill the disk. Each is renamed to a hidden name first, so a kill mid-delete never leaves a half folder
    that looks complete."""
    if keep > 0:
        for old in list_checkpoints(states)[:-keep]:
            hidden = old.with_name(f".{old.name}.{uuid.uuid4().hex}.old")
            os.replace(old, hidden)
            shutil.rmtree(hidden)


def publish(checkpoint: Path, out_dir: Path, files: dict[str, bytes] | None = None) -> Path:
    """Make `out_dir` (the lake's checkpoint folder) hold exactly the checkpoint's weights and config, plus
    `files` (name -> bytes), in one atomic step: the new folder is built beside it (hard links when the
    filesystem allows, else copies) and swapped in whole, so no reader or crash ever sees the weights of one
    run with the config of another. Anything else that was in `out_dir` goes with the old folder."""
    out_dir = Path(os.path.abspath(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.parent.glob(f".{out_dir.name}.*.publish*"):  # from a publisher that was killed
        _remove(leftover)
    staging = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.publish")
    staging.mkdir()
    for name in (WEIGHTS, CONFIG):
        try:
            os.link(checkpoint / name, staging / name)
        except OSError:
            shutil.copyfile(checkpoint / name, staging / name)
    for name, data in (files or {}).items():
        (staging / name).write_bytes(data)
    swap_in(staging, out_dir)
    _remove(staging)  # now the previous out_dir, if there was one
    return out_dir


def swap_in(staging: Path, final: Path) -> None:
    """Put the folder `staging` at `final` in one atomic operation; the previous `final`, if any, is left at
    `staging`. Linux swaps the two with renameat2(RENAME_EXCHANGE); where that is missing (other systems, some
    network filesystems) the fallback is two renames, between which `final` is briefly absent, never mixed."""
    if not final.exists():
        os.rename(staging, final)
    elif not rename_exchange(staging, final):
        aside = staging.with_name(staging.name + ".old")
        os.rename(final, aside)
        os.rename(staging, final)
        os.rename(aside, staging)


def rename_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two existing paths; False when this system or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)  # glibc 2.28+, musl 1.2.3+
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
