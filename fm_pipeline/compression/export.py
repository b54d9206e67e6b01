"""Compressed model folders: `model.safetensors` + `config.json` + `compression.json`.

Nothing is pickled. `config.json` is the `ModelConfig` of the architecture (a pruned or distilled model has its
own, smaller one); `compression.json` lists every module that compression replaced (its kind and shapes) and
the quantized matrices they hold; `model.safetensors` is the state dict. Loading builds the plain model from
the config, swaps in empty modules as `compression.json` says, and fills everything from safetensors, strictly.
A matrix shared by two modules (the token table and the tied output layer) is stored once.

Only `fm_pipeline.modeling` and `compression.modules` are needed, not the training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from fm_pipeline.compression.layers import LoRALinear, StaticInt8Linear, TuckerFactors, TuckerLinear
from fm_pipeline.compression.modules import (
    DynamicInt8Linear,
    LowRankLinear,
    QuantEmbedding,
    QuantizedWeight,
    SparseLinear,
    WeightOnlyLinear,
    set_module,
)
from fm_pipeline.lake.staging import swapped_dir
from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model

COMPRESSION = "compression.json"
SPEC_KINDS: dict[str, type[nn.Module]] = {"SparseLinear": SparseLinear, "LowRankLinear": LowRankLinear,
                                          "LoRALinear": LoRALinear}
"""Modules rebuilt from their `spec()` alone."""
FORMAT = "fm-pipeline-compressed"
VERSION = 1


def describe(model: nn.Module) -> dict[str, Any]:
    """The structure of the replaced modules: what `rebuild` needs to make an empty model of the same shape."""
    weight_paths: dict[int, str] = {}
    quantized: dict[str, dict[str, Any]] = {}
    factor_paths: dict[int, str] = {}
    factors: dict[str, dict[str, Any]] = {}
    modules: dict[str, dict[str, Any]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, QuantizedWeight) and id(module) not in weight_paths:
            weight_paths[id(module)] = path
            quantized[path] = module.spec()
        elif isinstance(module, TuckerFactors) and id(module) not in factor_paths:
            factor_paths[id(module)] = path
            factors[path] = module.spec()
    for path, module in model.named_modules(remove_duplicate=False):
        kind = type(module).__name__
        if isinstance(module, QuantEmbedding):
            modules[path] = {"kind": kind, "weight": weight_paths[id(module.weight)]}
        elif isinstance(module, (WeightOnlyLinear, DynamicInt8Linear, StaticInt8Linear)):
            modules[path] = {"kind": kind, "weight": weight_paths[id(module.weight)], "bias": module.bias is not None}
            if isinstance(module, DynamicInt8Linear):
                modules[path]["backend"] = module.backend
        elif isinstance(module, TuckerLinear):
            modules[path] = {"kind": kind, "factors": factor_paths[id(module.factors)], "bias": module.bias is not None}
        elif isinstance(module, (SparseLinear, LowRankLinear, LoRALinear)):
            modules[path] = {"kind": kind, **module.spec()}
    return {"quantized_weights": quantized, "shared_factors": factors, "modules": modules}


def rebuild(model: nn.Module, structure: dict[str, Any], backend: str | None = None) -> nn.Module:
    """Swap empty compressed modules into a freshly built model, as `describe` recorded them. `backend`
    overrides the int8 kernel recorded for dynamic layers (e.g. torchao on a GPU)."""
    weights = {path: QuantizedWeight(**spec) for path, spec in structure["quantized_weights"].items()}
    shared = {path: TuckerFactors(**spec) for path, spec in structure.get("shared_factors", {}).items()}
    for path, spec in structure["modules"].items():
        kind = spec["kind"]
        if kind == "QuantEmbedding":
            module: nn.Module = QuantEmbedding(weights[spec["weight"]])
        elif kind in ("WeightOnlyLinear", "DynamicInt8Linear", "StaticInt8Linear"):
            weight = weights[spec["weight"]]
            bias = torch.zeros(weight.rows) if spec["bias"] else None
            if kind == "WeightOnlyLinear":
                module = WeightOnlyLinear(weight, bias)
            elif kind == "StaticInt8Linear":
                module = StaticInt8Linear(weight, bias)
            else:
                module = DynamicInt8Linear(weight, bias, backend or spec["backend"])
        elif kind == "TuckerLinear":
            module = TuckerLinear(shared[spec["factors"]], spec["bias"])
        elif kind in SPEC_KINDS:
            module = SPEC_KINDS[kind](**{k: v for k, v in spec.items() if k != "kind"})
        else:
            raise ValueError(f"unknown compressed module kind {kind!r} at {path}")
        set_module(model, path, module)
    return model


def save_compressed(folder: Path, model: nn.Module, method: str, details: dict[str, Any] | None = None) -> Path:
    """Write the folder atomically (built beside it, then swapped into place whole)."""
    folder = Path(folder)
    with swapped_dir(folder) as staging:
        save_model(model, str(staging / WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n", encoding="utf-8")
        info = {"format": FORMAT, "version": VERSION, "method": method, "details": details or {}, **describe(model)}
        (staging / COMPRESSION).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder


def load_compressed(
    folder: Path, device: str | torch.device = "cpu", backend: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a compressed folder (or of a plain checkpoint folder, which has no `compression.json`),
    in eval mode, and the compression info."""
    folder = Path(folder)
    config = ModelConfig.from_dict(json.loads((folder / CONFIG).read_text(encoding="utf-8")))
    info_path = folder / COMPRESSION
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {
        "format": FORMAT, "version": VERSION, "method": "none", "details": {}, "quantized_weights": {}, "modules": {}}
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise ValueError(f"{info_path} is not a {FORMAT} v{VERSION} description")
    model = rebuild(build_model(config), info, backend)
    load_model(model, str(folder / WEIGHTS), strict=True, device=str(device))
    return model.to(device).eval(), info
