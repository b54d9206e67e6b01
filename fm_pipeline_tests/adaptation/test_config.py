import pytest

from fm_pipeline.adaptation.config import STRATEGIES, AdaptConfig


def test_full_profile_is_the_seeds_settings():
    config = AdaptConfig.profile("full", "dapt")
    assert (config.lr, config.warmup_steps, config.steps, config.mlm_probability) == (1e-5, 1000, 50_000, 0.15)
    assert AdaptConfig() == config


def test_every_strategy_has_both_profiles_and_overrides_apply():
    for strategy in STRATEGIES:
        for profile in ("full", "cpu_small"):
            assert AdaptConfig.profile(profile, strategy).strategy == strategy
    assert AdaptConfig.profile("cpu_small", "lora", steps=7).steps == 7


def test_round_trip_and_refusals():
    config = AdaptConfig.profile("cpu_small", "lora")
    assert AdaptConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown AdaptConfig fields"):
        AdaptConfig.from_dict({"stesp": 3})
    with pytest.raises(ValueError, match="strategy"):
        AdaptConfig(strategy="magic")
    with pytest.raises(ValueError, match="profile"):
        AdaptConfig.profile("huge")
