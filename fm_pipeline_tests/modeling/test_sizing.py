from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_model
from torch.nn.attention import SDPBackend, sdpa_kernel

from fm_pipeline.modeling.config import ARCHITECTURES, ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.sizing import (
    activation_elements_per_token,
    chinchilla_optimal,
    config_from_budget,
    count_parameters,
    flops_per_token,
    memory_estimate,
    memory_table,
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


def saved_activation_bytes(model: torch.nn.Module, **batch: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass, parameters and buffers excluded,
    each storage once (views share one)."""
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in own:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**batch)
    return sum(saved.values())


SHAPES = [{}, {"mlp": "swiglu"}, {"norm": "layernorm"}, {"positions": "learned"}, {"n_kv_head": 2},
          {"positions": "sinusoidal", "norm": "layernorm", "mlp": "swiglu"}, {"architecture": "encoder_only"}]


@pytest.mark.parametrize("fields", SHAPES)
def test_activation_bytes_equal_what_autograd_saves_in_float32(fields):
    config = ModelConfig(vocab_size=100, block_size=16, n_layer=3, n_head=4, d_model=32, **fields)
    model = build_model(config)
    idx = torch.randint(5, 100, (2, 16), generator=torch.Generator().manual_seed(0))
    assert memory_estimate(config, 32, 2, 16)["activations"] == saved_activation_bytes(model, idx=idx, targets=idx)
    with sdpa_kernel(SDPBackend.MATH):  # the unfused path keeps the attention probabilities
        unfused = saved_activation_bytes(model, idx=idx, targets=idx)
    assert memory_estimate(config, 32, 2, 16, fused_attention=False)["activations"] == unfused


def test_sparse_and_encoder_decoder_activations_are_estimated_within_ten_percent():
    idx = torch.randint(5, 100, (2, 16), generator=torch.Generator().manual_seed(0))
    for fields, batch in (({"moe_experts": 4}, {"targets": idx}),
                          ({"architecture": "encoder_decoder"}, {"decoder_idx": idx, "targets": idx})):
        config = ModelConfig(vocab_size=100, block_size=16, n_layer=3, n_head=4, d_model=32, **fields)
        measured = saved_activation_bytes(build_model(config), idx=idx, **batch)
        assert memory_estimate(config, 32, 2, 16)["activations"] == pytest.approx(measured, rel=0.1)


def test_checkpointing_keeps_each_block_input_and_one_block():
    config = ModelConfig(vocab_size=100, block_size=16, n_layer=6, n_head=4, d_model=32)
    plain = memory_estimate(config, 16, 4, 16)
    kept = memory_estimate(config, 16, 4, 16, checkpointing=True)
    per_block = activation_elements_per_token(config, 16)
    assert plain["activations"] - kept["activations"] == 4 * 16 * (5 * per_block - 6 * 32) * 2


@pytest.mark.parametrize("fields", [{}, {"tie_embeddings": False, "positions": "learned"}, {"moe_experts": 3}])
def test_weight_bytes_are_the_state_dict_bytes_at_32_and_16_bits(tmp_path, fields):
    config = ModelConfig(vocab_size=100, block_size=16, n_layer=2, n_head=4, d_model=32, **fields)
    model = build_model(config)
    unique = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in model.state_dict().values()}
    assert memory_estimate(config, 32)["weights"] == sum(unique.values())
    assert memory_estimate(config, 16)["weights"] == sum(unique.values()) // 2
    assert memory_estimate(config, 8)["weights"] == sum(unique.values()) // 4
    save_model(model.to(torch.bfloat16), str(tmp_path / "model.safetensors"))
    header = json.loads((tmp_path / "model.safetensors").read_bytes()[8:][: int.from_bytes(
        (tmp_path / "model.safetensors").read_bytes()[:8], "little")])
    stored = sum(end - start for k, v in header.items() if k != "__metadata__" for start, end in [v["data_offsets"]])
    assert stored == memory_estimate(config, 16)["weights"]


def test_optimizer_bytes_are_adamw_moments_after_one_step_and_gradients_match():
    config = ModelConfig(vocab_size=100, block_size=16, n_layer=2, n_head=4, d_model=32, mlp="swiglu")
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    idx = torch.randint(5, 100, (2, 16), generator=torch.Generator().manual_seed(0))
    model(idx, idx)[1].backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    optimizer.step()
    moments = sum(t.numel() * t.element_size() for state in optimizer.state.values()
                  for name, t in state.items() if name != "step")
    steps = sum(state["step"].numel() * state["step"].element_size() for state in optimizer.state.values())
    estimate = memory_estimate(config, 32)
    assert estimate["optimizer"] == moments and estimate["gradients"] == grads
    assert steps == 4 * len(list(model.parameters()))  # the uncounted step counters
    assert estimate["master_weights"] == 0 and memory_estimate(config, 16)["master_weights"] == grads
    assert memory_estimate(config, 32, optimizer_bits=8)["optimizer"] == moments // 4


def test_kv_cache_and_the_memory_table():
    config = ModelConfig(vocab_size=1000, block_size=128, n_layer=4, n_head=8, n_kv_head=2, d_model=256)
    estimate = memory_estimate(config, 16, batch_size=3, seq_len=100)
    assert estimate["kv_cache"] == 2 * 4 * 2 * 32 * 3 * 100 * 2  # K and V, layers, kv heads, head_dim, tokens
    assert memory_estimate(ModelConfig(architecture="encoder_only"), 16, 1)["kv_cache"] == 0
    assert estimate["inference"] == estimate["weights"] + estimate["kv_cache"]
    rows = memory_table(config, batch_size=3, seq_len=100)
    assert [r["bits"] for r in rows] == ["32", "16", "8", "4"]
    assert rows[3]["weights"] == f"{count_parameters(config) / 2 / 2**20:.2f}"
    assert float(rows[0]["training"]) > float(rows[1]["training"]) > float(rows[3]["training"])
    assert float(rows[1]["activations_checkpointed"]) < float(rows[1]["activations"])
