"""Generation compiled by TorchInductor for CPU inference: what lets int8 pay off on a small model.

In eager mode every operator is a separate call: in a small model the norms, attention and per-operator overhead
cost as much as the matrix products, so faster int8 products save little (1.05-1.2x per token at 128 wide).
Inductor with freezing (weights become constants, packed once) fuses the rest, and its C++ GEMM templates give
torchao's int8 dynamic quantization int8 micro-kernels that use the CPU's int8 matrix units (AMX, VNNI) where it
has them.
"""

from __future__ import annotations

import copy
from itertools import count
from types import FunctionType, MethodType

import torch
from torch import nn

from fm_pipeline.compression.modules import (
    DynamicInt8Linear,
    QuantEmbedding,
    SparseLinear,
    WeightOnlyLinear,
    plain_linear,
    set_module,
)

INDUCTOR_CPU_OPTIONS = {"freezing": True, "max_autotune": True, "max_autotune_gemm_backends": "CPP,ATEN"}
_CODE_IDS = count()


def compile_for_inference(model: nn.Module) -> nn.Module:
    """A copy of a decoder-only `model` whose generation step (`next_logits`) is compiled for the CPU, with
    dynamic shapes (the context grows by a token per step). Call it under `torch.no_grad()`: freezing is for
    inference. The first calls compile (tens of seconds); later ones run the compiled kernels.

    Layers that cache what they compute from their stored form are replaced by that plain form (`_traceable`):
    Inductor then traces the step whole, where the cache checks would split it into pieces."""
    from torch._inductor import config as inductor_config  # imported here: a second of start-up for every
    # process that loads the code location, where only compiling needs it
    model = copy.deepcopy(model).eval()
    for path, module in list(model.named_modules()):
        plain = _traceable(module)
        if plain is not None:
            set_module(model, path, plain)
    compiled = torch.compile(_with_own_code(model.next_logits), dynamic=True)

    def next_logits(idx: torch.Tensor) -> torch.Tensor:
        # Inductor reads these settings whenever it compiles, which a new shape can make happen on any call;
        # `torch.compile(options=...)` was measured not to apply them (int8 stayed on its slow kernels).
        with inductor_config.patch(INDUCTOR_CPU_OPTIONS):
            return compiled(idx)

    model.next_logits = next_logits
    return model


def _with_own_code(method: MethodType) -> MethodType:
    """`method` with a code object of its own. Dynamo keeps compiled variants per code object: models sharing
    `next_logits`'s would check each other's guards on every call (measured: 2-6x slower steps with a dozen
    models compiled) and share one recompile limit, past which Dynamo silently runs eager."""
    func = method.__func__
    code = func.__code__.replace(co_name=f"{func.__name__}_{next(_CODE_IDS)}")
    return MethodType(FunctionType(code, func.__globals__, code.co_name, func.__defaults__, func.__closure__),
                      method.__self__)


def _traceable(module: nn.Module) -> nn.Module | None:
    """What a compressed layer computes, as a module without caches, or None when it has none to drop: the
    torchao-quantized Linear a torchao int8 layer runs; the dense Linear a weight-only or sparse layer multiplies
    by (it does so in eager mode too); the dequantized table of an int4 embedding."""
    if isinstance(module, DynamicInt8Linear) and module.backend == "torchao":
        return module.torchao_linear()
    if isinstance(module, (WeightOnlyLinear, SparseLinear)):
        return plain_linear(module.dense_weight(), module.bias)
    if isinstance(module, QuantEmbedding) and module.weight.bits != 8:
        return nn.Embedding.from_pretrained(module.table())
    return None
