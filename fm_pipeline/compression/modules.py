"""The modules a compressed model is made of, with every tensor a plain buffer or parameter, so the model's
state dict saves to safetensors as it is and a rebuilt skeleton loads it back (see `export.py`).

- `QuantizedWeight`: an int8 (per output row) or int4 (per group of columns) matrix with its scales;
  shared by the token embedding and the tied output layer, so the table is stored once.
- `QuantEmbedding`: a token table looked up from a `QuantizedWeight`, rows dequantized on the fly.
- `DynamicInt8Linear`: int8 weights and activations quantized per call (fbgemm through `torch.ao`, or torchao).
- `WeightOnlyLinear`: int8/int4 weights, fp32 compute (dequantized once and cached).
- `SparseLinear`: a pruned matrix stored as a bitmask and its non-zero values.
- `LowRankLinear`: W ≈ B·A, two thinner matrices.

Nothing here imports the training code: a published model needs only this and `fm_pipeline.modeling`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

INT8_MAX = 127


def _cache_key(*tensors: torch.Tensor) -> tuple[Any, ...]:
    """Changes whenever one of the tensors is replaced or written in place (loading a state dict copies
    into buffers, which bumps their version), so caches derived from them never go stale."""
    return tuple((t.data_ptr(), t._version, t.device) for t in tensors)


class QuantizedWeight(nn.Module):
    """A (rows, cols) matrix as integers and scales.

    bits=8: symmetric per row, w ≈ q · scale[row], q in [-127, 127] (the layout fbgemm's int8 kernels take).
    bits=4: asymmetric per group of `group_size` columns, w ≈ q · scale + zero, q in [0, 15], two per byte;
    scales and zeros in fp16 so they add 1 bit per weight at group size 32, not 2.
    """

    def __init__(self, rows: int, cols: int, bits: int = 8, group_size: int | None = None) -> None:
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"bits must be 8 or 4, not {bits}")
        if bits == 4 and (group_size is None or cols % group_size or group_size % 2):
            raise ValueError(f"int4 needs an even group_size dividing {cols} columns, not {group_size}")
        self.rows, self.cols, self.bits, self.group_size = rows, cols, bits, group_size
        if bits == 8:
            self.register_buffer("q", torch.zeros(rows, cols, dtype=torch.int8))
            self.register_buffer("scale", torch.ones(rows))
            self.zero = None
        else:
            groups = cols // group_size
            self.register_buffer("q", torch.zeros(rows, cols // 2, dtype=torch.uint8))
            self.register_buffer("scale", torch.ones(rows, groups, dtype=torch.float16))
            self.register_buffer("zero", torch.zeros(rows, groups, dtype=torch.float16))

    @classmethod
    def quantize(cls, weight: torch.Tensor, bits: int = 8, group_size: int | None = None) -> QuantizedWeight:
        rows, cols = weight.shape
        qw = cls(rows, cols, bits, group_size).to(weight.device)
        w = weight.detach().float()
        with torch.no_grad():
            if bits == 8:
                scale = w.abs().amax(dim=1).clamp(min=1e-12) / INT8_MAX
                qw.q.copy_(torch.round(w / scale[:, None]).clamp(-INT8_MAX, INT8_MAX).to(torch.int8))
                qw.scale.copy_(scale)
            else:
                g = w.reshape(rows, -1, group_size)
                lo, hi = g.amin(dim=-1), g.amax(dim=-1)
                scale = ((hi - lo) / 15).clamp(min=1e-6).half().float()
                zero = lo.half().float()
                q = torch.round((g - zero[..., None]) / scale[..., None]).clamp(0, 15).to(torch.uint8)
                q = q.reshape(rows, cols)
                qw.q.copy_(q[:, 0::2] | (q[:, 1::2] << 4))
                qw.scale.copy_(scale.half())
                qw.zero.copy_(zero.half())
        return qw

    def ints(self) -> torch.Tensor:
        """The integer values, unpacked: (rows, cols)."""
        if self.bits == 8:
            return self.q
        low, high = self.q & 0xF, self.q >> 4
        return torch.stack((low, high), dim=-1).reshape(self.rows, self.cols)

    def dequantize(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The fp32 matrix, or only the given rows (an embedding lookup)."""
        if self.bits == 8:
            q, scale = (self.q, self.scale) if rows is None else (self.q[rows], self.scale[rows])
            return q.float() * scale.unsqueeze(-1)
        q = self.ints() if rows is None else self.ints()[rows]
        scale = (self.scale if rows is None else self.scale[rows]).float()
        zero = (self.zero if rows is None else self.zero[rows]).float()
        g = q.float().reshape(*q.shape[:-1], -1, self.group_size)
        return (g * scale.unsqueeze(-1) + zero.unsqueeze(-1)).reshape(q.shape)

    def spec(self) -> dict[str, Any]:
        return {"rows": self.rows, "cols": self.cols, "bits": self.bits, "group_size": self.group_size}

    def stored_weights(self) -> int:
        return self.rows * self.cols


class QuantEmbedding(nn.Module):
    """Token lookup from a quantized table: only the looked-up rows are dequantized."""

    def __init__(self, weight: QuantizedWeight) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.weight.bits == 8:
            return self.weight.dequantize(idx)
        return F.embedding(idx, self.table())

    def table(self) -> torch.Tensor:
        """int4 rows are packed by pairs of columns, so the table is dequantized once and cached."""
        key = _cache_key(self.weight.q, self.weight.scale)
        if getattr(self, "_key", None) != key:
            self._cached, self._key = self.weight.dequantize(), key
        return self._cached


class WeightOnlyLinear(nn.Module):
    """Weight-only quantization: int8 or int4 weights on disk and in the state dict, fp32 matmuls.

    On these CPUs torch's weight-only int8/int4 kernels (`_weight_int8pack_mm`, `_weight_int4pack_mm_for_cpu`)
    were 10-100x slower than fp32 at this model's shapes, so the weights are dequantized once, on first use,
    and cached: the model is smaller to store and ship, not faster to run.
    """

    def __init__(self, weight: QuantizedWeight, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight = weight
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None

    def dense_weight(self) -> torch.Tensor:
        key = _cache_key(self.weight.q, self.weight.scale)
        if getattr(self, "_key", None) != key:
            self._cached, self._key = self.weight.dequantize(), key
        return self._cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dense_weight(), self.bias)


BACKENDS = ("torch_ao", "torchao")


def plain_linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Linear:
    """An nn.Linear holding copies of `weight` (out, in) and `bias`."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


def _torchao_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """An nn.Linear quantized by torchao (int8 dynamic activations, int8 weights). Its symmetric per-row
    quantization of weights that are already int8 multiples of their row scale gives back the same integers."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    holder = nn.Sequential(plain_linear(weight, bias))
    quantize_(holder, Int8DynamicActivationInt8WeightConfig())
    return holder[0]


class DynamicInt8Linear(nn.Module):
    """Post-training dynamic quantization: int8 weights, and activations quantized to 8 bits at each call
    from their observed range, so the matmul runs in integers.

    `torch_ao`: fbgemm through `torch.ops.quantized.linear_dynamic` (CPU; what `quantize_dynamic` builds),
    activations per tensor on 7 bits (`reduce_range`, which fbgemm needs against overflow on AVX2).
    `torchao`: torchao's `Int8DynamicActivationInt8WeightConfig`, activations per token (the path for GPUs).
    The kernel's packed weights are derived from the stored integers on first use and cached.
    """

    def __init__(self, weight: QuantizedWeight, bias: torch.Tensor | None = None, backend: str = "torch_ao") -> None:
        super().__init__()
        if weight.bits != 8:
            raise ValueError("dynamic quantization is int8")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.weight = weight
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.backend = backend

    def _kernel(self) -> Any:
        tensors = (self.weight.q, self.weight.scale) + ((self.bias,) if self.bias is not None else ())
        key = _cache_key(*tensors)
        if getattr(self, "_key", None) == key:
            return self._packed
        bias = None if self.bias is None else self.bias.detach().float()
        if self.backend == "torch_ao":
            with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao
                warnings.simplefilter("ignore")
                zero_points = torch.zeros(self.weight.rows, dtype=torch.long)
                qweight = torch._make_per_channel_quantized_tensor(
                    self.weight.q.cpu(), self.weight.scale.double().cpu(), zero_points, 0)
                packed = torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.cpu())
        else:
            packed = _torchao_linear(self.weight.dequantize(), bias)
        # plain attributes, not submodules: the kernel's tensors must stay out of the state dict
        object.__setattr__(self, "_packed", packed)
        self._key = key
        return packed

    def torchao_linear(self) -> nn.Module:
        """The torchao-quantized nn.Linear this layer runs (backend "torchao" only), for compiling."""
        if self.backend != "torchao":
            raise ValueError(f"a {self.backend!r} layer runs no torchao Linear")
        return self._kernel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self._kernel()
        if self.backend == "torch_ao":
            return torch.ops.quantized.linear_dynamic(x.float().contiguous(), kernel, True)
        return kernel(x)


class SparseLinear(nn.Module):
    """A pruned linear layer stored as a packed bitmask (1 bit per weight) and its non-zero values, so 50%
    sparsity stores 0.53x the bytes of the dense fp32 matrix. Computation is dense (the matrix is rebuilt once
    and cached): unstructured sparsity saves storage, not time, without sparse kernels."""

    def __init__(self, out_features: int, in_features: int, nnz: int, bias: bool = False) -> None:
        super().__init__()
        self.out_features, self.in_features = out_features, in_features
        self.register_buffer("mask_bits", torch.zeros(math.ceil(out_features * in_features / 8), dtype=torch.uint8))
        self.register_buffer("values", torch.zeros(nnz))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_dense(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> SparseLinear:
        w = weight.detach().float()
        mask = w != 0
        module = cls(w.shape[0], w.shape[1], int(mask.sum()), bias is not None).to(w.device)
        flat = mask.flatten()
        flat = F.pad(flat, (0, (-flat.numel()) % 8)).view(-1, 8).to(torch.uint8)
        weights = torch.tensor([1 << i for i in range(8)], dtype=torch.uint8, device=w.device)
        with torch.no_grad():
            module.mask_bits.copy_((flat * weights).sum(dim=1).to(torch.uint8))
            module.values.copy_(w[mask])
            if bias is not None:
                module.bias.copy_(bias)
        return module

    def mask(self) -> torch.Tensor:
        bits = (self.mask_bits[:, None] >> torch.arange(8, device=self.mask_bits.device)) & 1
        return bits.flatten()[: self.out_features * self.in_features].bool().view(self.out_features, self.in_features)

    def dense_weight(self) -> torch.Tensor:
        key = _cache_key(self.mask_bits, self.values)
        if getattr(self, "_key", None) != key:
            dense = torch.zeros(self.out_features, self.in_features, device=self.values.device)
            dense[self.mask()] = self.values
            self._cached, self._key = dense, key
        return self._cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dense_weight(), self.bias)

    def spec(self) -> dict[str, Any]:
        return {"out_features": self.out_features, "in_features": self.in_features, "nnz": self.values.numel(),
                "bias": self.bias is not None}

    def stored_weights(self) -> int:
        return self.values.numel()


class LowRankLinear(nn.Module):
    """y = B(A x): a rank-r factorization of an (out, in) layer, r·(in + out) weights instead of in·out."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = False) -> None:
        super().__init__()
        self.a = nn.Linear(in_features, rank, bias=False)
        self.b = nn.Linear(rank, out_features, bias=bias)

    @property
    def rank(self) -> int:
        return self.a.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))

    def spec(self) -> dict[str, Any]:
        return {"in_features": self.a.in_features, "out_features": self.b.out_features, "rank": self.rank,
                "bias": self.b.bias is not None}


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted `path`."""
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def count_weights(model: nn.Module) -> int:
    """Weights the model stores: parameters, plus quantized matrices at one per entry and sparse ones at their
    non-zeros (scales and masks are not counted). A table shared by two layers counts once."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():  # unique modules: a shared QuantizedWeight is seen once
        if isinstance(module, (QuantizedWeight, SparseLinear)):
            total += module.stored_weights()
    return total
