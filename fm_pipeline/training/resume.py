"""Which step checkpoint a run continues from: the newest complete one of the same run, never another run's.

A run's identity is what decides its trajectory: every TrainConfig field except those in `NOT_IDENTITY`
(where files are, how often to log, evaluate or checkpoint, the time budget and the resume mode itself), the
tokenizer's checksum, and the version of the token files' content (so moving them keeps the identity and
rewriting them changes it). It is stored with each step checkpoint (`run_identity.json`); a state whose
identity differs is cleared, with the reason, instead of being resumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fm_pipeline.lake.fingerprint import HashCache, data_files, fingerprint_files, version_of
from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.training import step_checkpoints as steps
from fm_pipeline.training.config import TrainConfig

NOT_IDENTITY = frozenset({
    "resume", "max_seconds", "out_dir", "token_dir", "tokenizer_path", "val_docs_dir", "eval_every",
    "eval_batches", "eval_docs_per_lang", "checkpoint_every", "keep_checkpoints", "log_every",
})
"""Fields that never change the weights at a given step: paths (their content counts instead), reporting
cadence, evaluation (it draws from its own generator, in eval mode), and the time budget (which counts time
trained before an interruption, so raising it continues the run). A field added later counts unless listed."""
HASH_CACHE = "token_hashes.json"
"""In the state folder: content hashes of the token files by (path, size, mtime), so a retry does not re-read
a large corpus."""


@dataclass(frozen=True)
class ResumePoint:
    folder: Path | None
    """The step checkpoint to continue from; None to start at step 0."""
    note: str
    """Why, in a sentence for the log."""


def run_identity(config: TrainConfig, tokenizer_sha256: str) -> dict[str, Any]:
    """The identity of `config`'s run, as stored beside each of its step checkpoints."""
    token_dir = Path(config.token_dir)
    cache = HashCache(steps.state_dir(Path(config.out_dir)) / HASH_CACHE)
    tokens = version_of(fingerprint_files(data_files(token_dir), token_dir, cache))
    cache.save()
    fields = {k: v for k, v in config.to_dict().items() if k not in NOT_IDENTITY}
    return {"config": fields, "tokenizer_sha256": tokenizer_sha256, "token_files": tokens}


def difference(saved: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """None when two identities are the same run; else what differs, for the log."""
    if saved is None:
        return "it records no run identity"
    if saved.get("tokenizer_sha256") != current["tokenizer_sha256"]:
        return "it was trained with another tokenizer"
    if saved.get("token_files") != current["token_files"]:
        return f"it was trained on other token files (version {saved.get('token_files')}, now {current['token_files']})"
    old, new = saved.get("config", {}), current["config"]
    changed = [f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    return "its config differs in " + ", ".join(changed) if changed else None


def find_resume_point(config: TrainConfig, identity: dict[str, Any]) -> ResumePoint:
    """Decide where `config`'s run starts, clearing what must not be resumed. Raises ValueError for
    `resume="must"` when there is no state of this run."""
    states = steps.state_dir(Path(config.out_dir))
    if config.resume == "never":
        steps.clear_checkpoints(states)
        return ResumePoint(None, "resume='never': starting at step 0")
    steps.sweep_staging(states)
    existing = steps.list_checkpoints(states)
    if not existing:
        if config.resume == "must":
            raise ValueError(f"resume='must' but there is no step checkpoint in {states}")
        return ResumePoint(None, f"no step checkpoint in {states}: starting at step 0")
    newest = existing[-1]
    why = difference(_read_identity(newest), identity)
    if why is None:
        return ResumePoint(newest, f"resuming from {newest.name} in {states}")
    if config.resume == "must":
        raise ValueError(f"resume='must' but {newest} is not this run's state: {why}")
    steps.clear_checkpoints(states)
    return ResumePoint(None, f"not resuming {newest}: {why}; its state was cleared, starting at step 0")


def _read_identity(folder: Path) -> dict[str, Any] | None:
    path = folder / ckpt.IDENTITY
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
