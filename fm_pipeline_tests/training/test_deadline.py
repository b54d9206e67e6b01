"""The maximum runtime of training: the Deadline callback stops the loop at the first step or evaluation past
its budget, and the Dagster train op turns that into a failure that is not retried."""

import dagster as dg
import pytest

from fm_pipeline.defs.assets.pretrained_checkpoint import train_model
from fm_pipeline.defs.resources import MlflowTracking
from fm_pipeline.training.callbacks import Deadline, TrainingTimeout
from fm_pipeline.training.loop import train
from fm_pipeline_tests.training.tiny_corpus import tiny_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_fires_only_past_the_budget():
    clock = FakeClock()
    deadline = Deadline(60, clock=clock)
    clock.now += 59
    assert deadline.remaining() == 1
    deadline.on_step(1, {"loss": 3.0})
    deadline.on_eval(1, {"val_loss": 3.0})
    clock.now += 2
    with pytest.raises(TrainingTimeout, match="step 7: 61 s exceeds the maximum runtime of 60 s"):
        deadline.on_step(7, {"loss": 2.5})
    with pytest.raises(TrainingTimeout):
        deadline.on_eval(7, {})


def test_the_loop_stops_at_the_first_step_past_the_deadline(tiny_corpus, tmp_path):
    config = tiny_config(tiny_corpus, tmp_path / "out", steps=20, log_every=1)
    with pytest.raises(TrainingTimeout, match="training stopped at step 1"):
        train(config, [Deadline(0.0)])
    assert not (tmp_path / "out" / "model.safetensors").exists(), "nothing is published from a stopped run"


def test_train_op_fails_without_retry_past_its_maximum_runtime(tiny_corpus, fm_home, tmp_path):
    config = tiny_config(tiny_corpus, tmp_path / "out", steps=20, log_every=1)

    @dg.op(out=dg.Out(dict))
    def plan() -> dict:
        return {"train_config": config.to_dict(), "devices": 1, "max_runtime_s": 0.0}

    @dg.job(resource_defs={"mlflow_tracking": MlflowTracking()})
    def limited():
        train_model(plan())

    instance = dg.DagsterInstance.ephemeral()
    result = limited.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    events = [e.event_type_value for e in result.all_events if e.step_key == "train_model"]
    assert "STEP_FAILURE" in events and "STEP_UP_FOR_RETRY" not in events, events
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "exceeds the maximum runtime of 0 s" in failure.event_specific_data.error.message
