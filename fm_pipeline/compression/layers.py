"""More modules a compressed model can be made of (the rest are in `modules.py`), with the same rules: every
tensor a plain parameter or buffer, a `spec()` that rebuilds an empty one, nothing from the training code.

- `StaticInt8Linear`: static post-training int8. Weights int8 per output row, the input's scale fixed by
  calibration, products in integers (`torch._int_mm`), so nothing is measured at run time.
- `TuckerFactors` + `TuckerLinear`: Tucker-2 of a stack of same-shaped matrices, W_l ≈ U·G_l·Vᵀ, the factors U
  and V shared by every layer of the stack, a small core G_l each.
- `LoRALinear`: a (smaller) base layer plus a low-rank delta B·A stored apart, merged once for inference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.compression.modules import INT8_MAX, QuantizedWeight, _cache_key


class StaticInt8Linear(nn.Module):
    """y = (q_x · q_Wᵀ) · s_x · s_W + b with q_x = round(x / s_x) clipped to [-127, 127]: symmetric int8
    activations at the calibrated scale `input_scale`, symmetric int8 weights per output row (`QuantizedWeight`).
    The integer product runs in `torch._int_mm` (int8 × int8 → int32)."""

    def __init__(self, weight: QuantizedWeight, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        if weight.bits != 8:
            raise ValueError("static quantization is int8")
        self.weight = weight
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.register_buffer("input_scale", torch.ones(()))

    def _kernel_weight(self) -> torch.Tensor:
        """The int8 weight transposed to (in, out), contiguous, as `_int_mm` takes it; cached."""
        key = _cache_key(self.weight.q)
        if getattr(self, "_key", None) != key:
            self._wt, self._key = self.weight.q.t().contiguous(), key
        return self._wt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        q = torch.round(flat / self.input_scale).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
        rows = q.shape[0]
        if q.is_cuda and rows <= 16:  # the CUDA kernel needs more than 16 rows
            q = F.pad(q, (0, 0, 0, 17 - rows))
        acc = torch._int_mm(q, self._kernel_weight())[:rows]
        y = acc.float() * (self.input_scale * self.weight.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], -1)


class TuckerFactors(nn.Module):
    """The factor matrices shared by a stack of layers: U (out, r_out) and V (in, r_in)."""

    def __init__(self, out_features: int, in_features: int, rank_out: int, rank_in: int) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.zeros(out_features, rank_out))
        self.v = nn.Parameter(torch.zeros(in_features, rank_in))

    def spec(self) -> dict[str, Any]:
        return {"out_features": self.u.shape[0], "in_features": self.v.shape[0], "rank_out": self.u.shape[1],
                "rank_in": self.v.shape[1]}


class TuckerLinear(nn.Module):
    """y = ((x·V)·Gᵀ)·Uᵀ + b: one layer of a Tucker-2 stack, its own core G (r_out, r_in)."""

    def __init__(self, factors: TuckerFactors, bias: bool = False) -> None:
        super().__init__()
        self.factors = factors
        self.core = nn.Parameter(torch.zeros(factors.u.shape[1], factors.v.shape[1]))
        self.bias = nn.Parameter(torch.zeros(factors.u.shape[0])) if bias else None

    def dense_weight(self) -> torch.Tensor:
        return self.factors.u @ self.core @ self.factors.v.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(F.linear(x, self.factors.v.T), self.core), self.factors.u, self.bias)


class LoRALinear(nn.Module):
    """y = base(x) + B(A x): the base layer and the delta (A: rank × in, B: out × rank) stored apart, so the
    size counts both; in eval mode the product runs on W + B·A, merged once and cached."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = False) -> None:
        super().__init__()
        self.base = nn.Linear(in_features, out_features, bias=bias)
        self.a = nn.Parameter(torch.zeros(rank, in_features))
        self.b = nn.Parameter(torch.zeros(out_features, rank))

    @classmethod
    def wrap(cls, linear: nn.Linear, rank: int) -> LoRALinear:
        """A frozen copy of `linear` with a trainable rank-`rank` delta at zero (A random, B zero, as LoRA)."""
        module = cls(linear.in_features, linear.out_features, rank, linear.bias is not None).to(linear.weight.device)
        module.base.load_state_dict(linear.state_dict())
        module.base.requires_grad_(False)
        nn.init.kaiming_uniform_(module.a, a=5**0.5)
        return module

    @property
    def rank(self) -> int:
        return self.a.shape[0]

    def merged_weight(self) -> torch.Tensor:
        key = _cache_key(self.base.weight, self.a, self.b)
        if getattr(self, "_key", None) != key:
            self._merged, self._key = (self.base.weight + self.b @ self.a).detach(), key
        return self._merged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.base(x) + F.linear(F.linear(x, self.a), self.b)
        return F.linear(x, self.merged_weight(), self.base.bias)

    def spec(self) -> dict[str, Any]:
        return {"in_features": self.base.in_features, "out_features": self.base.out_features, "rank": self.rank,
                "bias": self.base.bias is not None}
