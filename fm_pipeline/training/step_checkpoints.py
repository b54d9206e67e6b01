"""Step checkpoints of a training run: where they live, how they are named, listed, pruned and cleared.

A run that publishes to `out_dir` keeps its resumable step checkpoints in the sibling `<out_dir>.train_state/`
(`state_dir`), a stable place that survives a killed process and a retry, while `out_dir` itself is replaced
whole, in one atomic step, when the final checkpoint is published (`modeling.checkpoint.publish`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from fm_pipeline.lake.atomic import remove_path
from fm_pipeline.modeling.checkpoint_files import STATE

STEP_PREFIX = "step-"
STATE_SUFFIX = ".train_state"


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
                remove_path(path)


def prune_checkpoints(states: Path, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints (all are kept when `keep` <= 0), so long runs do not
    fill the disk. Each is renamed to a hidden name first, so a kill mid-delete never leaves a half folder
    that looks complete."""
    if keep > 0:
        for old in list_checkpoints(states)[:-keep]:
            hidden = old.with_name(f".{old.name}.{uuid.uuid4().hex}.old")
            os.replace(old, hidden)
            shutil.rmtree(hidden)
