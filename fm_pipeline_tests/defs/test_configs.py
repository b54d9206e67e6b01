"""Launchpad config into library config: a value the library rejects fails the step once, without the retries
its policy grants for transient errors."""

from functools import partial

import dagster as dg
import pytest

from fm_pipeline.adaptation.config import AdaptConfig
from fm_pipeline.defs.configs import library_config
from fm_pipeline.training.config import TrainConfig


class Launchpad(dg.Config):
    profile: str = "cpu_small"
    strategy: str = "dapt"
    steps: int | None = None
    replay_share: float | None = None


def test_a_launchpad_value_fills_the_library_field():
    built = library_config(Launchpad(steps=7), TrainConfig, make=partial(TrainConfig.profile, "cpu_small"),
                           only_set=True)
    assert built.steps == 7 and built.model.d_model == TrainConfig.profile("cpu_small").model.d_model


@pytest.mark.parametrize(("config", "target", "make", "message"), [
    (Launchpad(profile="tiny"), TrainConfig, partial(TrainConfig.profile, "tiny"), "unknown profile 'tiny'"),
    (Launchpad(strategy="magic"), AdaptConfig, None, "strategy must be one of"),
    (Launchpad(replay_share=1.5), AdaptConfig, None, "replay_share must be in [0, 1), not 1.5"),
])
def test_a_rejected_value_is_a_failure_without_retries(config, target, make, message):
    with pytest.raises(dg.Failure) as failed:
        library_config(config, target, make=make, only_set=True)
    assert message in str(failed.value.description) and failed.value.description.startswith("Launchpad: ")
    assert failed.value.allow_retries is False


def test_the_step_is_not_retried():
    attempts = []

    @dg.op(retry_policy=dg.RetryPolicy(max_retries=2))
    def adapt_step(config: Launchpad) -> None:
        attempts.append(config.strategy)
        library_config(config, AdaptConfig, only_set=True)

    job = dg.GraphDefinition(name="one_step", node_defs=[adapt_step]).to_job()
    result = job.execute_in_process(run_config={"ops": {"adapt_step": {"config": {"strategy": "magic"}}}},
                                    raise_on_error=False)
    assert not result.success
    assert attempts == ["magic"], "a config error is not retried"
    assert [e.event_type_value for e in result.all_events if e.is_step_up_for_retry] == []
