"""Quantization-aware training: a short fine-tune through fake quantization (round to the int8 grid in the
forward pass, straight-through gradients), so the weights settle where rounding costs little, then the same
conversion as post-training dynamic int8.

Fake quantization mirrors the deployed kernels: weights symmetric per output row on [-127, 127] (as
`QuantizedWeight`), activations per tensor, asymmetric, on fbgemm's 7-bit range [0, 127]."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.compression.modules import INT8_MAX, set_module
from fm_pipeline.compression.quantize import quantize_dynamic_int8
from fm_pipeline.compression.tuning import TuneData, tune
from fm_pipeline.training.finetune import FinetuneResult

ACT_QMAX = 127  # fbgemm's reduce_range: activations on 7 bits


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    scale = (weight.detach().abs().amax(dim=1).clamp(min=1e-12) / INT8_MAX).float()
    zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -INT8_MAX, INT8_MAX)


def fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    lo, hi = x.detach().min().clamp(max=0), x.detach().max().clamp(min=0)
    scale = ((hi - lo) / ACT_QMAX).clamp(min=1e-8).float().reshape(1)
    zero = torch.round(-lo / scale).clamp(0, ACT_QMAX).to(torch.int32).reshape(1)
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, ACT_QMAX)


class FakeQuantLinear(nn.Module):
    """Holds the original Linear (so tied parameters stay tied) and quantizes on the fly."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(fake_quant_activation(x), fake_quant_weight(self.linear.weight), self.linear.bias)


class FakeQuantEmbedding(nn.Module):
    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, fake_quant_weight(self.embedding.weight))


def prepare_qat(model: nn.Module) -> nn.Module:
    """A copy of the model with every Linear and Embedding wrapped in fake quantization."""
    model = copy.deepcopy(model)
    targets = [(p, m) for p, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Embedding))]
    for path, module in targets:
        wrapper = FakeQuantLinear(module) if isinstance(module, nn.Linear) else FakeQuantEmbedding(module)
        set_module(model, path, wrapper)
    return model


def strip_qat(model: nn.Module) -> nn.Module:
    """The wrapped modules back in place (in place), holding the weights QAT trained."""
    wrappers = [(p, m) for p, m in model.named_modules() if isinstance(m, (FakeQuantLinear, FakeQuantEmbedding))]
    for path, module in wrappers:
        set_module(model, path, module.linear if isinstance(module, FakeQuantLinear) else module.embedding)
    return model


def qat_int8(
    model: nn.Module, data: TuneData, steps: int = 100, lr: float = 1e-4, backend: str = "auto"
) -> tuple[nn.Module, FinetuneResult]:
    """Fine-tune a copy with fake quantization, then convert it to dynamic int8."""
    prepared = prepare_qat(model)
    result = tune(prepared, data, steps, lr)
    return quantize_dynamic_int8(strip_qat(prepared), backend=backend), result
