import math

import pytest

from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.optim import lr_factor


def test_json_round_trip_keeps_every_field(tmp_path):
    config = TrainConfig(model=ModelConfig(architecture="encoder_decoder", n_layer=3), betas=(0.8, 0.9),
                         budget={"compute": 1e15}, val_docs_dir="val", resume="never")
    config.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == config


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="lrr"):
        TrainConfig.from_dict({"lrr": 1.0})


def test_profiles():
    small = TrainConfig.profile("cpu_small", steps=7)
    assert (small.model.n_layer, small.model.d_model, small.model.block_size, small.steps) == (4, 128, 128, 7)
    assert small.device == "cpu" and not small.compile
    big = TrainConfig.profile("gpu")
    assert (big.model.n_layer, big.model.n_head, big.model.d_model, big.model.block_size) == (12, 12, 768, 1024)
    assert big.dtype == "bfloat16" and big.compile
    with pytest.raises(ValueError, match="unknown profile"):
        TrainConfig.profile("tpu")


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_min():
    factors = [lr_factor(step, warmup_steps=10, total_steps=110, min_ratio=0.1) for step in range(120)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[110:] == pytest.approx([0.1] * 10)
