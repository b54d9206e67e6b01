"""LoRA (Hu et al., 2021) through `peft` on the plain torch models of `modeling`: each targeted Linear W gets
W + (alpha / r)·B·A with A (r × in) and B (out × r, zero at start) the only trainable tensors.

`peft.LoraModel` injects the adapters into the model in place (module names and `forward` are unchanged, so
the training loop and evaluation see the same model), freezes everything else, and merges B·A back into W
for a plain checkpoint. Unmerged, a checkpoint folder holds the untouched base weights plus
`adapter_model.safetensors` and `adapter_config.json`; `load_adapted` puts the two together again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fm_pipeline.adaptation.config import LORA_TARGETS
from fm_pipeline.modeling.checkpoint import load_checkpoint

if TYPE_CHECKING:  # peft takes seconds to import: only runs that use LoRA pay for it
    from peft.tuners.lora import LoraModel

ADAPTER = "default"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class LoraSpec:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    targets: tuple[str, ...] = LORA_TARGETS

    def to_dict(self) -> dict[str, object]:
        return {"r": self.r, "alpha": self.alpha, "dropout": self.dropout, "targets": list(self.targets)}


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) unique parameters: a tied matrix counts once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def target_linears(model: nn.Module, targets: Sequence[str]) -> dict[str, nn.Linear]:
    """The Linear modules whose last name component is one of `targets` (how peft matches a list)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in set(targets)}


def add_lora(model: nn.Module, spec: LoraSpec) -> LoraModel:
    """Inject adapters into `model` in place and freeze its own parameters. Targets the model lacks (the
    cross-attention projections of a decoder-only model) are skipped. Returns peft's tuner, whose
    `merge_and_unload()` gives back the plain model."""
    from peft import LoraConfig
    from peft.tuners.lora import LoraModel

    present = [t for t in spec.targets if target_linears(model, [t])]
    if not present:
        raise ValueError(f"none of the LoRA targets {spec.targets} is a Linear module of {type(model).__name__}")
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=present,
                        bias="none")
    return LoraModel(model, config, ADAPTER)


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of an adapted model, by parameter name."""
    return {name: p.detach().contiguous() for name, p in model.named_parameters() if ".lora_" in name}


def save_adapter(folder: Path, state: dict[str, torch.Tensor], spec: LoraSpec) -> None:
    """`adapter_model.safetensors` (the `adapter_state` of the model) and `adapter_config.json` into `folder`."""
    save_file(state, str(Path(folder) / ADAPTER_WEIGHTS))
    (Path(folder) / ADAPTER_CONFIG).write_text(json.dumps(spec.to_dict(), indent=2) + "\n", encoding="utf-8")


def load_adapted(folder: Path, device: str | torch.device = "cpu", merge: bool = True) -> nn.Module:
    """A checkpoint folder's model with its adapter, when it has one: merged into the weights (a plain model)
    or, with `merge=False`, as live adapters. A folder without an adapter loads as `load_checkpoint` does."""
    folder = Path(folder)
    model, _ = load_checkpoint(folder, device)
    if not (folder / ADAPTER_CONFIG).is_file():
        return model
    raw = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    spec = LoraSpec(r=raw["r"], alpha=raw["alpha"], dropout=raw["dropout"], targets=tuple(raw["targets"]))
    tuner = add_lora(model, spec)
    weights = load_file(str(folder / ADAPTER_WEIGHTS), device=str(device))
    expected = set(adapter_state(model))
    if set(weights) != expected:
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise ValueError(f"{folder / ADAPTER_WEIGHTS} does not match its adapter config: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.load_state_dict(weights, strict=False)
    return merge_lora(tuner) if merge else model


def merge_lora(tuner: LoraModel) -> nn.Module:
    """W + (alpha / r)·B·A written into each adapted Linear, the adapter modules removed: the plain model
    (the same object the adapters were injected into), loadable by `modeling.checkpoint.load_checkpoint`."""
    return tuner.merge_and_unload(safe_merge=True)


def unload_lora(tuner: LoraModel) -> nn.Module:
    """The plain model with its original weights, the adapters removed (unmerged)."""
    return tuner.unload()
