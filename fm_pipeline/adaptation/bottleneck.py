"""Bottleneck language adapters (Houlsby et al., 2019; Pfeiffer et al., 2020), one set per language.

Each transformer block's feed-forward layer gets, after it, a small down-projection, a non-linearity and an
up-projection added back to the feed-forward output (a residual): h + up(gelu(down(h))). The up-projection
starts at zero, so a fresh adapter leaves the model exactly as it was. Every language has its own adapters
(MAD-X's language adapters); `set_language` picks the active one, and None runs the untouched base model.
The base weights are frozen while adapters train, so one language's adapter never changes another's outputs.

A language's adapter is saved alone (`language_adapter.safetensors` + `language_adapter.json`) beside the
base weights; `load_language_adapter` puts base and adapter together again, bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

ADAPTER_WEIGHTS = "language_adapter.safetensors"
ADAPTER_CONFIG = "language_adapter.json"


@dataclass(frozen=True)
class BottleneckSpec:
    reduction: int = 8
    """The bottleneck is d_model // reduction wide (Pfeiffer's reduction factor; 16 in their paper)."""


class BottleneckAdapter(nn.Module):
    """h + up(gelu(down(h))), up initialised to zero."""

    def __init__(self, d_model: int, width: int) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, width)
        self.up = nn.Linear(width, d_model)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(F.gelu(self.down(h)))


class AdaptedMLP(nn.Module):
    """A block's feed-forward layer followed by the active language's adapter (none: the layer alone)."""

    def __init__(self, mlp: nn.Module, d_model: int, width: int) -> None:
        super().__init__()
        self.mlp = mlp
        self.adapters = nn.ModuleDict()
        self.d_model, self.width = d_model, width
        self.active: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mlp(x)
        return h if self.active is None else self.adapters[self.active](h)


def _stacks(model: nn.Module) -> list[nn.Module]:
    return [getattr(model, name) for name in ("encoder", "decoder") if getattr(model, name, None) is not None]


def adapted_mlps(model: nn.Module) -> list[AdaptedMLP]:
    return [m for m in model.modules() if isinstance(m, AdaptedMLP)]


def add_language_adapter(model: nn.Module, lang: str, spec: BottleneckSpec) -> None:
    """Give every block of `model` an adapter for `lang` (wrapping the feed-forward layers on first use), make it
    the active one, and leave only `lang`'s adapter parameters trainable."""
    width = max(1, model.config.d_model // spec.reduction)
    for stack in _stacks(model):
        for block in stack.blocks:
            if not isinstance(block.mlp, AdaptedMLP):
                block.mlp = AdaptedMLP(block.mlp, model.config.d_model, width)
            if block.mlp.width != width:
                raise ValueError(f"adapters of width {block.mlp.width} already present, not {width}")
            device = next(block.mlp.mlp.parameters()).device
            block.mlp.adapters[lang] = BottleneckAdapter(model.config.d_model, width).to(device)
    for name, param in model.named_parameters():
        param.requires_grad_(f".adapters.{lang}." in name)
    set_language(model, lang)


def set_language(model: nn.Module, lang: str | None) -> None:
    """Route every block through `lang`'s adapter, or through none (the base model) with None."""
    mlps = adapted_mlps(model)
    if lang is not None and any(lang not in m.adapters for m in mlps):
        raise KeyError(f"no adapter for language {lang!r}")
    for m in mlps:
        m.active = lang


def adapter_state(model: nn.Module, lang: str) -> dict[str, torch.Tensor]:
    """`lang`'s adapter tensors, named as in the model without the language (so any language's file loads
    into the same slots)."""
    marker = f".adapters.{lang}."
    return {name.replace(marker, ".adapters.LANG."): p.detach().contiguous()
            for name, p in model.named_parameters() if marker in name}


def save_language_adapter(folder: Path, state: dict[str, torch.Tensor], lang: str, spec: BottleneckSpec) -> None:
    """`language_adapter.safetensors` (`adapter_state(model, lang)`) and `language_adapter.json` (kind, language,
    reduction) into `folder`."""
    save_file(state, str(Path(folder) / ADAPTER_WEIGHTS))
    meta = {"kind": "bottleneck", "lang": lang, **asdict(spec)}
    (Path(folder) / ADAPTER_CONFIG).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_language_adapter(model: nn.Module, folder: Path) -> str:
    """Add the adapter saved in `folder` to `model` (a base model, or one with other languages' adapters), make
    it active and return its language. Refuses a file whose tensors do not match the model's slots."""
    meta = json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    lang = meta["lang"]
    add_language_adapter(model, lang, BottleneckSpec(reduction=meta["reduction"]))
    device = next(model.parameters()).device
    saved = load_file(str(Path(folder) / ADAPTER_WEIGHTS), device=str(device))
    expected = adapter_state(model, lang)
    if set(saved) != set(expected):
        raise ValueError(f"{Path(folder) / ADAPTER_WEIGHTS} does not fit this model: "
                         f"missing {sorted(set(expected) - set(saved))[:3]}, "
                         f"unexpected {sorted(set(saved) - set(expected))[:3]}")
    marker = ".adapters.LANG."
    model.load_state_dict({k.replace(marker, f".adapters.{lang}."): v for k, v in saved.items()}, strict=False)
    return lang


def remove_adapters(model: nn.Module) -> nn.Module:
    """The base model again (every adapter dropped, the feed-forward layers unwrapped), with the parameter names
    `modeling.checkpoint` expects; returns the same object."""
    for stack in _stacks(model):
        for block in stack.blocks:
            if isinstance(block.mlp, AdaptedMLP):
                block.mlp = block.mlp.mlp
    return model
