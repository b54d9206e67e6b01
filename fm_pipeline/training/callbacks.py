"""What the training loop reports, and to whom: a callback protocol, a logging callback and MLflow.

The loop calls callbacks on the main process only. The library never imports Dagster: the Dagster layer
starts the MLflow run and passes its own callbacks (or `LogCallback(context.log)`) to forward progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fm_pipeline.training.config import TrainConfig


@dataclass(frozen=True)
class RunInfo:
    """What a run is, known once the model is built: enough to reproduce or compare it."""

    config: TrainConfig
    model_config: dict[str, Any]
    n_params: int
    tokenizer_sha256: str
    device: str
    world_size: int
    start_step: int = 0
    """The step this process starts from: 0, or the step of the checkpoint it resumes."""
    resume_note: str = ""
    """Why it resumes or starts over (a state of another run found and cleared, for instance)."""


@dataclass
class TrainResult:
    checkpoint: Path
    """`out_dir`, where the final model.safetensors, config.json and train_config.json are published; the
    resumable step checkpoints (with training_state.pt) are in `checkpoint.state_dir(out_dir)` beside it."""
    step: int
    train_loss: float
    eval_metrics: dict[str, Any]
    """`val_loss`, `val_ppl`, `val_bpb` and, when documents with languages were given, `by_lang`."""
    tokens_per_s: float
    n_params: int
    tokens_seen: int
    history: list[dict[str, float]] = field(default_factory=list)
    """Every logged step's metrics, `step` included, those before a resume too."""
    resumed_from_step: int = 0
    """The step checkpoint this run continued from (0: it started from scratch)."""


class TrainingCallback:
    """Hooks called by the training loop (on rank 0 only); subclass and override the ones you need."""

    def on_train_start(self, info: RunInfo) -> None:
        """Once, after the model is built and before the first step."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        """Every `log_every` steps: loss, lr, grad_norm, tokens_per_s (and mfu on CUDA)."""

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        """After each evaluation: val_loss, val_ppl, val_bpb, and `<metric>/<lang>` per language."""

    def on_checkpoint(self, path: Path) -> None:
        """After a checkpoint folder is complete on disk."""

    def on_train_end(self, result: TrainResult) -> None:
        """Once, after the final checkpoint and evaluation."""


class InfoLogger(Protocol):
    def info(self, msg: str) -> Any: ...


class LogCallback(TrainingCallback):
    """Progress as log lines on any logger with `.info` (a `logging.Logger`, or Dagster's `context.log`)."""

    def __init__(self, log: InfoLogger) -> None:
        self.log = log

    def on_train_start(self, info: RunInfo) -> None:
        self.log.info(f"training {info.n_params:,} parameters on {info.device} x{info.world_size}"
                      + (f"; {info.resume_note}" if info.resume_note else ""))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.log.info(f"step {step}: " + " ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()))

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.log.info(f"eval at step {step}: " + " ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()))

    def on_checkpoint(self, path: Path) -> None:
        self.log.info(f"checkpoint written to {path}")


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class TrainingTimeout(TimeoutError):
    """Training ran past its maximum runtime."""


class Deadline(TrainingCallback):
    """Stops training with `TrainingTimeout` at the first step or evaluation after `max_seconds` of wall time
    (counted from when the callback is made). Step checkpoints already written stay, so a later run resumes."""

    def __init__(self, max_seconds: float, clock: Any = None) -> None:
        import time

        self.clock = clock or time.monotonic
        self.max_seconds = max_seconds
        self.start = self.clock()

    def remaining(self) -> float:
        """Seconds left (negative past the deadline): one deadline can bound several runs in a row."""
        return self.max_seconds - (self.clock() - self.start)

    def _check(self, step: int) -> None:
        if self.remaining() < 0:
            raise TrainingTimeout(f"training stopped at step {step}: {self.clock() - self.start:.0f} s exceeds the "
                                  f"maximum runtime of {self.max_seconds:.0f} s")

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self._check(step)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self._check(step)


class EvalHistory(TrainingCallback):
    """Collects every evaluation as {"step": ..., **metrics}, for loss curves."""

    def __init__(self) -> None:
        self.evals: list[dict[str, float]] = []

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.evals.append({"step": step, **metrics})
