"""Post-training quantization of a language model: dynamic int8 (weights and activations) and weight-only
int8 / int4. Every nn.Linear is replaced, and the token embedding too: in a small model the vocabulary table
is most of the bytes, and with tied embeddings it is quantized once and shared with the output layer."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from fm_pipeline.compression.modules import (
    DynamicInt8Linear,
    QuantEmbedding,
    QuantizedWeight,
    WeightOnlyLinear,
    set_module,
)


def resolve_backend(backend: str, device: torch.device | str = "cpu", compiled: bool = False) -> str:
    """"auto": fbgemm through `torch.ao` on CPU in eager mode (torchao's int8 dynamic path measured 14-40x slower
    than fp32 there, `torch.ao`'s up to 2x faster); torchao when the model will be compiled by Inductor (which
    turns it into int8 micro-kernels, see `inference`) and on CUDA (fbgemm is CPU only)."""
    if backend != "auto":
        return backend
    return "torchao" if compiled or torch.device(device).type == "cuda" else "torch_ao"


def swap_quantized(
    model: nn.Module, bits: int, group_size: int | None, quantize_embedding: bool,
    make_linear: Callable[[QuantizedWeight, torch.Tensor | None], nn.Module],
) -> nn.Module:
    """A copy of `model` with every Linear (and Embedding) swapped; a Parameter shared by several modules
    (tied embeddings) becomes one QuantizedWeight they all hold."""
    model = copy.deepcopy(model).eval()
    shared: dict[int, QuantizedWeight] = {}

    def quantized(weight: nn.Parameter) -> QuantizedWeight:
        if id(weight) not in shared:
            shared[id(weight)] = QuantizedWeight.quantize(weight, bits, group_size)
        return shared[id(weight)]

    targets = [(path, m) for path, m in model.named_modules()
               if isinstance(m, nn.Linear) or (quantize_embedding and isinstance(m, nn.Embedding))]
    for path, module in targets:
        if isinstance(module, nn.Embedding):
            set_module(model, path, QuantEmbedding(quantized(module.weight)))
        else:
            set_module(model, path, make_linear(quantized(module.weight), module.bias))
    return model


def quantize_dynamic_int8(model: nn.Module, backend: str = "auto", quantize_embedding: bool = True) -> nn.Module:
    """Dynamic int8: weights int8 per output row, activations quantized per call, integer matmuls. The
    embedding table, which only is looked up, is stored int8 (weight-only) and shared with a tied head."""
    device = next(model.parameters()).device
    backend = resolve_backend(backend, device)
    return swap_quantized(model, 8, None, quantize_embedding,
                     lambda weight, bias: DynamicInt8Linear(weight, bias, backend))


def quantize_weight_only(
    model: nn.Module, bits: int = 8, group_size: int | None = None, quantize_embedding: bool = True
) -> nn.Module:
    """Weight-only int8 (per row; `group_size` None) or int4 (per group of `group_size` columns, 32 by
    default): smaller weights, fp32 activations."""
    if bits == 4 and group_size is None:
        group_size = 32
    return swap_quantized(model, bits, group_size, quantize_embedding, WeightOnlyLinear)
