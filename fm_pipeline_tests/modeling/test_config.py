from __future__ import annotations

import json

import pytest

from fm_pipeline.modeling.config import ModelConfig, swiglu_hidden


def test_defaults_are_resolved_so_a_saved_config_is_explicit() -> None:
    config = ModelConfig(d_model=128, n_head=4)
    assert config.n_kv_head == 4
    assert config.d_ff == 512
    assert ModelConfig(d_model=384, mlp="swiglu").d_ff == 1024 == swiglu_hidden(384)


def test_json_round_trip() -> None:
    config = ModelConfig(
        architecture="encoder_decoder", vocab_size=1000, block_size=32, n_layer=3, n_head=4, n_kv_head=2,
        d_model=64, mlp="swiglu", norm="layernorm", positions="sinusoidal", dropout=0.1, bias=True,
        tie_embeddings=False, pad_id=1, mask_id=7,
    )
    text = json.dumps(config.to_dict())
    assert ModelConfig.from_dict(json.loads(text)) == config


@pytest.mark.parametrize(
    "fields",
    [
        {"architecture": "rnn"},
        {"norm": "batchnorm"},
        {"positions": "alibi"},
        {"mlp": "relu"},
        {"d_model": 130, "n_head": 4},
        {"n_head": 6, "n_kv_head": 4},
        {"d_model": 36, "n_head": 4, "positions": "rope"},
    ],
)
def test_invalid_shapes_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError):
        ModelConfig(**fields)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="n_layers"):
        ModelConfig.from_dict({"n_layers": 4})
