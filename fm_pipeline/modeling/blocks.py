"""The parts every architecture is built from: token embeddings with absolute positions, pre-norm transformer
blocks (self-attention, optional cross-attention, MLP) and a stack of them ending in a final norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.modeling.attention import Attention
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.moe import SwitchMLP
from fm_pipeline.modeling.positions import LearnedPositions, RotaryEmbedding, SinusoidalPositions


def make_norm(config: ModelConfig) -> nn.Module:
    """RMSNorm (LLaMA: no mean subtraction, no bias, a little cheaper) or LayerNorm (GPT-2, BERT)."""
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.d_model, eps=1e-6)
    return nn.LayerNorm(config.d_model, bias=config.bias)


class MLP(nn.Module):
    """The position-wise feed-forward layer: GELU (GPT-2, BERT) or SwiGLU (PaLM, LLaMA), whose gate and up
    projections are fused into one matrix so a forward pass is two matmuls either way."""

    def __init__(self, config: ModelConfig, d_ff: int | None = None) -> None:
        """`d_ff` overrides the config's width for a layer whose channels were pruned."""
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        d_ff = d_ff or config.d_ff
        width = 2 * d_ff if self.swiglu else d_ff
        self.up = nn.Linear(config.d_model, width, bias=config.bias)
        self.down = nn.Linear(d_ff, config.d_model, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h)
        return self.drop(self.down(h))


def make_mlp(config: ModelConfig, d_ff: int) -> nn.Module:
    """The dense MLP, or `moe_experts` of them behind a Switch router when the config asks for experts."""
    if not config.moe_experts:
        return MLP(config, d_ff)
    experts = nn.ModuleList(MLP(config, d_ff) for _ in range(config.moe_experts))
    return SwitchMLP(experts, config.d_model, config.moe_capacity_factor)


class Block(nn.Module):
    """x + attention(norm(x)) [+ cross-attention(norm(x), memory)] + MLP(norm(x)): pre-norm keeps the residual
    stream an identity path, which is what lets deep stacks train without warmup tricks."""

    def __init__(self, config: ModelConfig, causal: bool, cross: bool, layer: int = 0) -> None:
        """`layer` picks this block's widths when the config has per-layer ones (a pruned model)."""
        super().__init__()
        self.norm_attn = make_norm(config)
        self.attn = Attention(config, causal=causal, heads=config.layer_heads(layer))
        self.norm_cross = make_norm(config) if cross else None
        self.cross = Attention(config, cross=True) if cross else None
        self.norm_mlp = make_norm(config)
        self.mlp = make_mlp(config, config.layer_ff(layer))
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
        rope: RotaryEmbedding | None,
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm_attn(x), mask=mask, rope=rope))
        if self.cross is not None:
            x = x + self.drop(self.cross(self.norm_cross(x), mask=memory_mask, memory=memory))
        return x + self.mlp(self.norm_mlp(x))


class Embeddings(nn.Module):
    """Token vectors plus an absolute position encoding when the config asks for one (RoPE lives in attention)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.tokens = nn.Embedding(config.vocab_size, config.d_model)
        if config.positions == "learned":
            self.positions: nn.Module | None = LearnedPositions(config.block_size, config.d_model)
        elif config.positions == "sinusoidal":
            self.positions = SinusoidalPositions(config.block_size, config.d_model)
        else:
            self.positions = None
        self.drop = nn.Dropout(config.dropout)
        self.block_size = config.block_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[1] > self.block_size:
            raise ValueError(f"sequence of {idx.shape[1]} tokens is longer than block_size {self.block_size}")
        x = self.tokens(idx)
        if self.positions is not None:
            x = x + self.positions(idx.shape[1])
        return self.drop(x)


class Stack(nn.Module):
    """`n_layer` blocks and a final norm: causal for a decoder, bidirectional for an encoder, with
    cross-attention to an encoder's output in an encoder-decoder's decoder."""

    def __init__(self, config: ModelConfig, causal: bool, cross: bool = False) -> None:
        super().__init__()
        self.rope = RotaryEmbedding(config.head_dim, config.block_size) if config.positions == "rope" else None
        self.blocks = nn.ModuleList(Block(config, causal, cross, i) for i in range(config.n_layer))
        self.norm = make_norm(config)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask, memory, memory_mask, self.rope)
        return self.norm(x)
