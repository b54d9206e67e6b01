"""Where a token is: absolute encodings added to the embeddings (sinusoidal, learned) or RoPE rotating queries
and keys inside attention, so attention scores depend on relative offsets only."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(length, dim) with PE[pos, 2i] = sin(pos / base^(2i/dim)) and PE[pos, 2i+1] = cos(...) (Vaswani et al.):
    fixed wavelengths from 2π to base·2π, no parameters, defined for any position."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(base) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq[: dim // 2])
    return table


class SinusoidalPositions(nn.Module):
    """The fixed sinusoidal table, kept out of the state dict: it is recomputed, never learned."""

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("table", sinusoidal_table(length, dim), persistent=False)

    def forward(self, seq_len: int) -> torch.Tensor:
        return self.table[:seq_len]


class LearnedPositions(nn.Module):
    """One trained vector per position (GPT-2, BERT): flexible, but undefined beyond `length`."""

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(length, dim))

    def forward(self, seq_len: int) -> torch.Tensor:
        return self.weight[:seq_len]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90° turn of every channel pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """RoPE (Su et al.): channel pair (i, i + d/2) of the vector at position m is rotated by m·θ_i with
    θ_i = base^(-2i/d). Rotations compose, so <R_m q, R_n k> = <q, R_(n-m) k>: scores see only the offset.
    The "rotate half" pairing of GPT-NeoX and LLaMA; cos and sin are precomputed up to `length` positions."""

    def __init__(self, head_dim: int, length: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., seq_len, head_dim), position m at index m of the sequence dimension."""
        seq_len = x.shape[-2]
        cos, sin = self.cos[:seq_len].to(x.dtype), self.sin[:seq_len].to(x.dtype)
        return x * cos + rotate_half(x) * sin
