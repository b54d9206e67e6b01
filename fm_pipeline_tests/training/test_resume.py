"""Training that resumes where it stopped: a run killed with SIGKILL (after a checkpoint, or halfway through
writing one) and started again with the default `resume="auto"` ends bit-identical to a run that was never
interrupted, for every architecture; a state left by another config or other token files is never resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline.training import step_checkpoints as steps
from fm_pipeline.training.callbacks import RunInfo, TrainingCallback, TrainResult
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train
from fm_pipeline_tests.training.tiny_corpus import TinyCorpus, tiny_config

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURES = ("decoder_only", "encoder_only", "encoder_decoder")


class Recorder(TrainingCallback):
    """The steps this process trained, and what the loop said about resuming."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.info: RunInfo | None = None

    def on_train_start(self, info: RunInfo) -> None:
        self.info = info

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.steps.append(step)


class Interrupt(Exception):
    pass


class StopAfterCheckpoint(TrainingCallback):
    def __init__(self, step: int) -> None:
        self.name = f"{steps.STEP_PREFIX}{step:07d}"

    def on_checkpoint(self, path: Path) -> None:
        if path.name == self.name:
            raise Interrupt


def config_for(corpus: TinyCorpus, out: Path, architecture: str = "decoder_only", **overrides) -> TrainConfig:
    """8 steps with a checkpoint every 2, dropout and gradient accumulation: every piece of state matters."""
    model = ModelConfig(architecture=architecture, n_layer=2, n_head=2, d_model=32, block_size=32, dropout=0.1)
    base = {"model": model, "steps": 8, "checkpoint_every": 2, "log_every": 1, "eval_every": 4, "eval_batches": 1,
            "grad_accum": 2}
    return tiny_config(corpus, out, architecture, **{**base, **overrides})


def exact(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """Everything logged but the timing."""
    return [{k: v for k, v in h.items() if k != "tokens_per_s"} for h in history]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / ckpt.WEIGHTS), load_file(b / ckpt.WEIGHTS)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def run_killed(config: TrainConfig, moment: str, step: int, tmp_path: Path) -> None:
    """Train in a child process that SIGKILLs itself at `moment` of `step` (see killed_run)."""
    path = tmp_path / f"{moment}.json"
    config.to_json(path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "fm_pipeline_tests.training.killed_run", str(path), moment, str(step)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory) -> dict[str, TrainResult]:
    """One uninterrupted run per architecture, trained on demand."""
    runs: dict[str, TrainResult] = {}

    def get(architecture: str) -> TrainResult:
        if architecture not in runs:
            torch.set_num_threads(1)
            out = tmp_path_factory.mktemp(f"straight-{architecture}") / "out"
            runs[architecture] = train(config_for(tiny_corpus, out, architecture))
        return runs[architecture]

    return get


KILLS = [(architecture, *kill) for architecture in ARCHITECTURES
         for kill in [("after_checkpoint", 4, 4), ("checkpoint_write", 6, 4)]]
KILLS.append(("decoder_only", "publish", 8, 8))  # publishing does not depend on the architecture
"""(architecture, moment, step killed at, step resumed from)"""


@pytest.mark.slow
@pytest.mark.parametrize(("architecture", "moment", "kill_step", "resume_step"), KILLS)
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(
    tiny_corpus, tmp_path, uninterrupted, architecture, moment, kill_step, resume_step
):
    straight = uninterrupted(architecture)
    config = config_for(tiny_corpus, tmp_path / "out", architecture)
    run_killed(config, moment, kill_step, tmp_path)
    assert not (tmp_path / "out" / ckpt.WEIGHTS).exists(), "a killed run publishes nothing"
    states = steps.state_dir(tmp_path / "out")
    half_written = [p.name for p in states.iterdir() if p.name.startswith(f".{steps.STEP_PREFIX}{kill_step:07d}.")]
    assert len(half_written) == (moment == "checkpoint_write")

    recorder = Recorder()
    resumed = train(config, [recorder])  # resume="auto" is the default
    assert recorder.steps == list(range(resume_step + 1, 9))
    assert resumed.resumed_from_step == resume_step
    assert f"resuming from {steps.STEP_PREFIX}{resume_step:07d}" in recorder.info.resume_note
    # Dropout and masks (torch RNG), windows (data generator), AdamW moments, the schedule and the logged
    # history all carry over, so the numbers are the same to the last bit.
    assert exact(resumed.history) == exact(straight.history)
    assert resumed.train_loss == straight.train_loss
    assert resumed.eval_metrics["val_loss"] == straight.eval_metrics["val_loss"]
    assert same_weights(tmp_path / "out", straight.checkpoint)
    # The half-written staging folder of the killed checkpoint is gone, and every kept state is complete.
    assert sorted(p.name for p in states.iterdir() if p.name.startswith(".")) == []
    assert [p.name for p in steps.list_checkpoints(states)] == ["step-0000006", "step-0000008"]


def test_a_state_of_another_config_or_other_token_files_is_never_resumed(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    config = config_for(tiny_corpus, out)
    with pytest.raises(Interrupt):
        train(config, [StopAfterCheckpoint(4)])

    # Another learning rate: the state of step 4 is cleared, with the reason, and training starts at step 1.
    other_lr = replace(config, lr=config.lr / 2)
    recorder = Recorder()
    with pytest.raises(Interrupt):
        train(other_lr, [recorder, StopAfterCheckpoint(2)])
    assert recorder.steps[0] == 1
    assert "lr" in recorder.info.resume_note and "cleared" in recorder.info.resume_note
    fresh = train(replace(other_lr, out_dir=str(tmp_path / "fresh")))
    recorder = Recorder()
    resumed = train(other_lr, [recorder])  # its own state of step 2 is resumed: nothing of the first run is left
    assert recorder.steps[0] == 3
    assert exact(resumed.history) == exact(fresh.history) and same_weights(out, fresh.checkpoint)

    # The same token files under another path resume (identity is their content, not where they are) ...
    moved = tmp_path / "moved_tokens"
    moved.mkdir()
    for path in Path(tiny_corpus.tokens).iterdir():
        (moved / path.name).write_bytes(path.read_bytes())
    with pytest.raises(Interrupt):
        train(config, [StopAfterCheckpoint(4)])
    recorder = Recorder()
    with pytest.raises(Interrupt):
        train(replace(config, token_dir=str(moved)), [recorder, StopAfterCheckpoint(6)])
    assert recorder.steps[0] == 5
    # ... and other token files under the same path do not.
    encode_corpus(tiny_corpus.tokenizer, {"train": [tiny_corpus.val_docs / "part-00000.parquet"],
                                          "val": [tiny_corpus.val_docs / "part-00000.parquet"]}, moved, processes=1)
    recorder = Recorder()
    train(replace(config, token_dir=str(moved)), [recorder])
    assert recorder.steps[0] == 1 and "token files" in recorder.info.resume_note


def test_resume_never_starts_over_and_must_refuses_a_foreign_state(tiny_corpus, tmp_path):
    config = config_for(tiny_corpus, tmp_path / "out", steps=4)
    with pytest.raises(Interrupt):
        train(config, [StopAfterCheckpoint(2)])
    with pytest.raises(ValueError, match="seed"):
        train(replace(config, seed=1, resume="must"))
    with pytest.raises(ValueError, match="code_version"):  # the asset's code version was bumped
        train(replace(config, code_version="2", resume="must"))
    assert [p.name for p in steps.list_checkpoints(steps.state_dir(tmp_path / "out"))] == ["step-0000002"]
    recorder = Recorder()
    train(replace(config, resume="never"), [recorder])
    assert recorder.steps == [1, 2, 3, 4]
    recorder = Recorder()
    train(replace(config, resume="must"), [recorder])  # the finished state: nothing left to train, published again
    assert recorder.steps == [] and (tmp_path / "out" / ckpt.WEIGHTS).is_file()
    with pytest.raises(ValueError, match="resume must be one of"):
        replace(config, resume="sometimes")


def test_a_time_budget_counts_the_time_trained_before_an_interruption(tiny_corpus, tmp_path):
    """A run stopped by its time budget, run again, has no time left and only publishes again; without the
    budget (not part of the run's identity) the same run continues to its last step."""
    config = config_for(tiny_corpus, tmp_path / "out", steps=6, max_seconds=0.0)
    assert train(config).step == 1  # the first step spends the budget
    recorder = Recorder()
    again = train(config, [recorder])
    assert recorder.steps == [] and again.step == 1 and again.resumed_from_step == 1
    recorder = Recorder()
    longer = train(replace(config, max_seconds=None), [recorder])
    assert recorder.steps == [2, 3, 4, 5, 6] and longer.step == 6
