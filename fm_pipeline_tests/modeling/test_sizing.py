from __future__ import annotations

import math

import pytest

from fm_pipeline.modeling.config import ARCHITECTURES, ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.sizing import (
    chinchilla_optimal,
    config_from_budget,
    count_parameters,
    flops_per_token,
    propose_shape,
)


def test_chinchilla_numbers() -> None:
    n_params, tokens = chinchilla_optimal(6e18)
    assert n_params == pytest.approx(math.sqrt(6e18 / 120)) == pytest.approx(2.236e8, rel=1e-3)
    assert tokens == pytest.approx(20 * n_params)
    assert 6 * n_params * tokens == pytest.approx(6e18)


@pytest.mark.parametrize("compute", [1e17, 6e18, 1e21, 1e23])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_proposed_shape_has_about_n_parameters(compute: float, architecture: str) -> None:
    config = config_from_budget(compute, vocab_size=32000, block_size=1024, architecture=architecture)
    n_params, _ = chinchilla_optimal(compute)
    assert count_parameters(config) == pytest.approx(n_params, rel=0.15)
    assert config.architecture == architecture
    assert config.d_model == 64 * config.n_head
    assert 16 <= config.d_model / config.n_layer <= 256


def test_a_gpt2_small_budget_proposes_a_gpt2_small_like_shape() -> None:
    config = propose_shape(124e6, vocab_size=50257, block_size=1024, positions="learned", norm="layernorm",
                           bias=True)
    assert 10 <= config.n_layer <= 14 and 640 <= config.d_model <= 896


def test_shape_fields_pass_through_and_count() -> None:
    config = config_from_budget(6e18, 32000, 2048, mlp="swiglu", positions="learned", tie_embeddings=False)
    assert (config.mlp, config.positions, config.tie_embeddings) == ("swiglu", "learned", False)
    assert count_parameters(config) == pytest.approx(chinchilla_optimal(6e18)[0], rel=0.15)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize(
    "fields",
    [{}, {"mlp": "swiglu", "n_kv_head": 2, "bias": True, "norm": "layernorm", "positions": "learned",
          "tie_embeddings": False}],
)
def test_count_parameters_matches_built_models(architecture: str, fields: dict) -> None:
    config = ModelConfig(architecture=architecture, vocab_size=300, block_size=32, n_layer=3, n_head=4, d_model=64,
                         **fields)
    model = build_model(config)
    assert count_parameters(config) == model.num_parameters(non_embedding=False)
    assert count_parameters(config, non_embedding=True) == model.num_parameters(non_embedding=True)


def test_flops_per_token_is_6n_plus_attention() -> None:
    config = ModelConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, d_model=768, positions="learned")
    n = count_parameters(config, non_embedding=True)
    assert flops_per_token(config) == 6 * n + 12 * 12 * 1024 * 768
    # nanoGPT's GPT-2 small: about 124M parameters, 85M outside the embeddings, ~0.87 GFLOPs per token.
    assert n == pytest.approx(124e6, rel=0.02)
    assert flops_per_token(config) == pytest.approx(0.86e9, rel=0.03)
    seq2seq = ModelConfig(architecture="encoder_decoder", vocab_size=32000, block_size=512, n_layer=6, d_model=512,
                          n_head=8)
    assert flops_per_token(seq2seq) == 3 * count_parameters(seq2seq, True) + 18 * 6 * 512 * 512
