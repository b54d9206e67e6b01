"""Compute-optimal sizing (Chinchilla, Hoffmann et al. 2022): for a training budget of C FLOPs, with C ≈ 6·N·D
and the fitted optimum D ≈ 20·N tokens, N ≈ sqrt(C / 120) parameters. Then a depth and width for N, and the
training FLOPs per token that turn measured throughput into MFU."""

from __future__ import annotations

import math
from typing import Any

from fm_pipeline.modeling.config import ModelConfig

TOKENS_PER_PARAMETER = 20.0


def chinchilla_optimal(compute: float) -> tuple[float, float]:
    """(N parameters, D tokens) spending `compute` FLOPs compute-optimally: 6·N·D = C with D = 20·N."""
    n_params = math.sqrt(compute / (6.0 * TOKENS_PER_PARAMETER))
    return n_params, TOKENS_PER_PARAMETER * n_params


def _norm_parameters(config: ModelConfig) -> int:
    return config.d_model * (2 if config.norm == "layernorm" and config.bias else 1)


def _attention_parameters(config: ModelConfig) -> int:
    """Q, K, V and output projections; self- and cross-attention have the same count."""
    d, kv = config.d_model, config.n_kv_head * config.head_dim
    biases = (2 * d + 2 * kv) if config.bias else 0
    return d * (d + 2 * kv) + d * d + biases


def _mlp_parameters(config: ModelConfig) -> int:
    up = 2 * config.d_ff if config.mlp == "swiglu" else config.d_ff
    biases = (up + config.d_model) if config.bias else 0
    return config.d_model * up + config.d_ff * config.d_model + biases


def _feed_forward_parameters(config: ModelConfig, active: bool) -> int:
    """One block's MLP, or its experts and router: all of them, or (`active`) those a token uses, one expert."""
    if not config.moe_experts:
        return _mlp_parameters(config)
    experts = 1 if active else config.moe_experts
    return experts * _mlp_parameters(config) + config.moe_experts * config.d_model


def _stack_parameters(config: ModelConfig, cross: bool, active: bool = False) -> int:
    block = 2 * _norm_parameters(config) + _attention_parameters(config) + _feed_forward_parameters(config, active)
    if cross:
        block += _norm_parameters(config) + _attention_parameters(config)
    return config.n_layer * block + _norm_parameters(config)


def count_parameters(config: ModelConfig, non_embedding: bool = False, active: bool = False) -> int:
    """The parameter count of `build_model(config)` without building it (what `num_parameters` returns).
    Chinchilla's N is the total; `non_embedding` is the N of 6·N FLOPs per token (see `num_parameters`).
    `active` counts, of a sparse model's experts, the one a token passes through (plus the routers): the
    parameters that do a token's matmuls; the same as the total for a dense model."""
    tokens = config.vocab_size * config.d_model
    positions = config.block_size * config.d_model if config.positions == "learned" else 0
    head = 0 if config.tie_embeddings else tokens
    stacks = _stack_parameters(config, cross=False, active=active)
    if config.architecture == "encoder_decoder":
        stacks += _stack_parameters(config, cross=True, active=active)
    if non_embedding:
        return stacks + (tokens if config.tie_embeddings else head)
    return tokens + positions + head + stacks


def flops_per_token(config: ModelConfig) -> float:
    """Training FLOPs per token at full context T = block_size (PaLM appendix B, Chinchilla): 6·N for the
    matmuls forward and backward plus 12·L·T·d for attention scores and weighted values.

    For encoder_decoder a token passes through one stack only: averaged over as many source as target tokens,
    it costs half the matmuls, 3·N, and 18·L·T·d of attention (a target token also cross-attends). For a
    sparse model N is the active count (one expert per token); the padding of expert capacity is not counted."""
    n = count_parameters(config, non_embedding=True, active=True)
    attention = 12.0 * config.n_layer * config.block_size * config.d_model
    if config.architecture == "encoder_decoder":
        return 3.0 * n + 1.5 * attention
    return 6.0 * n + attention


def propose_shape(
    n_params: float,
    vocab_size: int,
    block_size: int,
    architecture: str = "decoder_only",
    head_dim: int = 64,
    aspect_ratio: float = 64.0,
    tolerance: float = 0.1,
    max_layers: int = 256,
    **fields: Any,
) -> ModelConfig:
    """A config with about `n_params` parameters in total: width a multiple of `head_dim` (n_head = d/head_dim),
    and among the shapes within `tolerance` of the target the one whose d_model/n_layer is nearest
    `aspect_ratio` (Kaplan et al. found loss nearly flat for ratios of ~20-200; GPT-2 and BERT use 64). When
    no shape comes that close (a vocabulary larger than the budget), the closest count wins. `fields` sets the
    other ModelConfig fields (mlp, norm, positions...), which change the count and are accounted for."""

    def shape(n_layer: int, n_head: int) -> ModelConfig:
        return ModelConfig(architecture=architecture, vocab_size=vocab_size, block_size=block_size,
                           n_layer=n_layer, n_head=n_head, d_model=n_head * head_dim, **fields)

    candidates = []
    for n_layer in range(1, max_layers + 1):
        if count_parameters(shape(n_layer, 1)) > n_params * (1 + tolerance) and candidates:
            break
        lo, hi = 1, 1
        while count_parameters(shape(n_layer, hi)) < n_params:
            lo, hi = hi, hi * 2
        while hi - lo > 1:  # the widest head count still at or under the target, and the next one
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if count_parameters(shape(n_layer, mid)) < n_params else (lo, mid)
        candidates += [shape(n_layer, lo), shape(n_layer, hi)]

    def miss(config: ModelConfig) -> float:
        return abs(math.log(count_parameters(config) / n_params))

    close = [c for c in candidates if miss(c) <= math.log1p(tolerance)]
    if not close:
        return min(candidates, key=miss)
    return min(close, key=lambda c: abs(math.log(c.d_model / c.n_layer / aspect_ratio)))


def config_from_budget(
    compute: float, vocab_size: int, block_size: int, architecture: str = "decoder_only", **fields: Any
) -> ModelConfig:
    """The compute-optimal model for `compute` training FLOPs; train it on `chinchilla_optimal(compute)[1]`
    tokens. `fields` are passed on to `propose_shape`."""
    n_params, _ = chinchilla_optimal(compute)
    return propose_shape(n_params, vocab_size, block_size, architecture, **fields)
