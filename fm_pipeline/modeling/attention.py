"""Multi-head attention through `F.scaled_dot_product_attention` (fused kernels on CPU and GPU), with
grouped-query heads: `n_kv_head` key/value heads shared by `n_head // n_kv_head` query heads each, which
shrinks the KV projections (and an inference KV cache) by that factor."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.positions import RotaryEmbedding


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, keys) with 1 for real tokens and 0 for padding -> a boolean (batch, 1, 1, keys) mask that SDPA
    broadcasts over heads and queries: True where a key may be attended to."""
    return attention_mask.bool()[:, None, None, :]


class Attention(nn.Module):
    """Self-attention (one fused QKV projection) or, with `cross=True`, attention from `x` to `memory` (the
    encoder's output). A causal module uses SDPA's `is_causal`, which needs no mask tensor at all."""

    def __init__(self, config: ModelConfig, causal: bool = False, cross: bool = False,
                 heads: tuple[int, int] | None = None) -> None:
        """`heads` = (query heads, key/value heads) when a layer has fewer than the config's (structured
        pruning); each head keeps `head_dim` channels, so the attention is narrower than `d_model`."""
        super().__init__()
        self.n_head, self.n_kv_head = heads or (config.n_head, config.n_kv_head)
        self.head_dim = config.head_dim
        self.causal, self.cross = causal, cross
        self.dropout = config.dropout
        d, inner, kv = config.d_model, self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        if cross:
            self.q = nn.Linear(d, inner, bias=config.bias)
            self.kv = nn.Linear(d, 2 * kv, bias=config.bias)
        else:
            self.qkv = nn.Linear(d, inner + 2 * kv, bias=config.bias)
        self.out = nn.Linear(inner, d, bias=config.bias)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        rope: RotaryEmbedding | None = None,
    ) -> torch.Tensor:
        """x: (B, T, d); memory: (B, S, d) for cross-attention; mask: boolean, broadcastable to (B, heads, T, keys),
        True where attending is allowed. RoPE applies to self-attention only: across two sequences, a query's
        and a key's positions have no common origin."""
        B, T, d = x.shape
        if self.cross:
            q = self.q(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
            k, v = self.kv(memory).view(B, memory.shape[1], -1, self.head_dim).transpose(1, 2).chunk(2, dim=1)
        else:
            # (B, n_head + 2·n_kv_head, T, head_dim): queries, keys and values are groups of heads.
            heads = self.qkv(x).view(B, T, -1, self.head_dim).transpose(1, 2)
            qk, v = heads.split((self.n_head + self.n_kv_head, self.n_kv_head), dim=1)
            if rope is not None:
                qk = rope(qk)  # queries and keys rotated in one pass
            q, k = qk.split((self.n_head, self.n_kv_head), dim=1)
        y = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal,
            enable_gqa=self.n_kv_head != self.n_head,
        )
        return self.out(y.transpose(1, 2).contiguous().view(B, T, self.n_head * self.head_dim))
