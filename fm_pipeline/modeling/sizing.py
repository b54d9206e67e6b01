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


# Memory: what training and inference hold, by precision.

PRECISIONS = (32, 16, 8, 4)
"""Bits per weight (and per gradient and activation in training) that the memory table shows."""
MASTER_BITS = 32
"""Below 32 bits, training keeps a float32 master copy of the weights for the optimizer to update (mixed
precision), as updates smaller than a low-precision weight's resolution would otherwise be lost."""
INDEX_BYTES = 8
"""Token ids and targets are int64."""


def activation_elements_per_token(config: ModelConfig, seq_len: int | None = None,
                                  fused_attention: bool = True) -> float:
    """Values one block saves for backward per token (autograd's saved tensors, parameters excluded), for our
    blocks as they are written: each norm keeps its input and (RMSNorm) the normalized input and 1/rms, or
    (LayerNorm) mean and 1/std; each linear keeps its input; the fused QKV output (values are a view of it),
    the attention output, and, with SDPA's fused kernels, RoPE's rotated queries and keys and a log-sum-exp per
    head; on the unfused (math) path instead the (heads x keys) attention probabilities per query and, with
    grouped-query heads, keys and values repeated to every query head (as PyTorch's math kernel measures);
    GELU keeps its input and the down projection its output (2·d_ff), SwiGLU the gate and up halves,
    silu(gate) and their product (4·d_ff).
    A sparse layer holds the MLP's values for `capacity_factor` tokens per token (its slots), plus the router's
    float32 logits and probabilities and the gated output (approximate: its index tensors are left out).
    Dropout (off by default) would add its masks."""
    d, kv = config.d_model, config.n_kv_head * config.head_dim
    seq_len = seq_len or config.block_size
    norm = (2 * d + 1) if config.norm == "rmsnorm" else (d + 2)
    attention = norm + d + (d + 2 * kv) + d  # norm, QKV input, QKV output, attention output (= out input)
    if fused_attention:
        attention += config.n_head + ((d + kv) if config.positions == "rope" else 0)
    else:
        attention += config.n_head * seq_len + 2 * (d - kv)
    mlp = d + (4 if config.mlp == "swiglu" else 2) * config.d_ff  # up input, then the nonlinearity's values
    if config.moe_experts:
        mlp = config.moe_capacity_factor * mlp + d + 2 * config.moe_experts
    block = attention + norm + mlp
    if config.architecture == "encoder_decoder":  # the decoder's blocks also cross-attend
        cross = norm + d + d + 2 * kv + d + (config.n_head if fused_attention else config.n_head * seq_len)
        return block + (block + cross)  # per position of each stack, summed over a source and a target token
    return block


def memory_estimate(
    config: ModelConfig, bits: int = 32, batch_size: int = 1, seq_len: int | None = None, *,
    optimizer_bits: int = 32, checkpointing: bool = False, fused_attention: bool = True,
) -> dict[str, int]:
    """Bytes of training and inference, by part, for `build_model(config)` at `bits` per weight:

    - `weights`: every parameter once (a tied table counts once), at `bits`.
    - `gradients`: one per parameter, at `bits`.
    - `master_weights`: a float32 copy for the optimizer below 32 bits (mixed precision), else 0.
    - `optimizer`: AdamW's two moments per parameter at `optimizer_bits` (32; 8 for an 8-bit optimizer).
      PyTorch's AdamW also keeps a 4-byte step counter per parameter tensor, not counted.
    - `activations`: values saved for backward by `n_layer` blocks (see `activation_elements_per_token`) at
      `bits`, plus the final norm, the output projection's input and the float32 log-softmax over the
      vocabulary (and the token ids), for `batch_size` × `seq_len` tokens (an encoder-decoder: as many source
      as target tokens).
      With `checkpointing` (recompute each block in backward) only each block's input is kept, plus one
      block's values while it is recomputed.
    - `kv_cache`: inference's cached keys and values for `batch_size` sequences of `seq_len` at `bits` (a
      decoder's self-attention; an encoder-decoder's decoder also caches cross-attention keys and values of
      as many source tokens). Encoder-only models cache nothing.
    - `training` = weights + gradients + master + optimizer + activations; `inference` = weights + kv_cache.

    Quantized formats also store scales (e.g. one 16-bit scale per 32-128 weights), not counted here."""
    seq_len = seq_len or config.block_size
    n = count_parameters(config)
    tokens = batch_size * seq_len
    d, v = config.d_model, config.vocab_size
    per_block = activation_elements_per_token(config, seq_len, fused_attention)
    stacks = 2 if config.architecture == "encoder_decoder" else 1
    norm = (2 * d + 1) if config.norm == "rmsnorm" else (d + 2)
    layers = config.n_layer * d * stacks + per_block if checkpointing else config.n_layer * per_block
    indices = (3 if config.architecture == "encoder_decoder" else 2) * tokens * INDEX_BYTES  # inputs, targets
    # + the float32 log-softmax over the vocabulary, and the loss's 4-byte total weight
    activations = tokens * (layers + norm + d) * bits / 8 + tokens * 4 * v + indices + 4
    kv_per_token = 2 * config.n_layer * config.n_kv_head * config.head_dim
    kv_streams = {"decoder_only": 1, "encoder_only": 0, "encoder_decoder": 2}[config.architecture]
    out = {
        "weights": math.ceil(n * bits / 8),
        "gradients": math.ceil(n * bits / 8),
        "master_weights": n * MASTER_BITS // 8 if bits < MASTER_BITS else 0,
        "optimizer": math.ceil(2 * n * optimizer_bits / 8),
        "activations": math.ceil(activations),
        "kv_cache": math.ceil(kv_streams * kv_per_token * tokens * bits / 8),
    }
    out["training"] = sum(out[k] for k in ("weights", "gradients", "master_weights", "optimizer", "activations"))
    out["inference"] = out["weights"] + out["kv_cache"]
    return out


def memory_table(config: ModelConfig, batch_size: int, seq_len: int | None = None,
                 precisions: tuple[int, ...] = PRECISIONS) -> list[dict[str, str]]:
    """One row per precision (MiB): weights, gradients, master copy, AdamW moments, activations with and
    without checkpointing, training total, KV cache and inference total; for the asset's metadata."""
    rows = []
    for bits in precisions:
        plain = memory_estimate(config, bits, batch_size, seq_len)
        ckpt = memory_estimate(config, bits, batch_size, seq_len, checkpointing=True)
        rows.append({
            "bits": str(bits), **{k: f"{plain[k] / 2**20:.2f}" for k in (
                "weights", "gradients", "master_weights", "optimizer", "activations")},
            "activations_checkpointed": f"{ckpt['activations'] / 2**20:.2f}",
            "training": f"{plain['training'] / 2**20:.2f}", "kv_cache": f"{plain['kv_cache'] / 2**20:.2f}",
            "inference": f"{plain['inference'] / 2**20:.2f}"})
    return rows


def chinchilla_report(config: ModelConfig, tokens: int) -> dict[str, float]:
    """A trained model against Chinchilla: its parameters (total and active), the tokens it saw per parameter
    (the optimum is ~20), the compute spent (`flops_per_token` × tokens) and the compute-optimal parameters
    and tokens for that compute."""
    n = count_parameters(config)
    compute = flops_per_token(config) * tokens
    n_opt, d_opt = chinchilla_optimal(compute)
    return {"parameters": n, "active_parameters": count_parameters(config, active=True), "tokens": tokens,
            "tokens_per_parameter": tokens / n, "compute_flops": compute, "optimal_parameters": n_opt,
            "optimal_tokens": d_opt}
