"""Architectures compared at equal compute: a trained model beside variants that differ only in the feed-forward,
`dense` (one MLP per block) or `moe_<N>` (N Switch experts of the dense MLP's width, top-1).

A token passes through one expert, so a variant's active parameters, and its training FLOPs per token, are the
dense model's plus the routers' (d_model per expert and layer); its total parameters grow with the experts.
A variant trains through the same loop with the same `TrainConfig` but for the model and where it publishes:
the same token files, seed (so the same initialisation seed and the same batches), steps, optimizer and
schedule; the loop's final evaluation scores it on the same validation text. `benchmarks.moe` builds its
dense and sparse models with `variant_model` too, on characters and outside the loop.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fm_pipeline.modeling.checkpoint_files import load_config
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.sizing import count_parameters, flops_per_token
from fm_pipeline.training.config import TrainConfig

DENSE = "dense"
MOE_PREFIX = "moe_"
CANDIDATES_SUFFIX = ".candidates"
COLUMNS = ["model", "published", "moe_experts", "parameters_total", "parameters_active", "flops_per_token", "steps",
           "tokens_seen", "train_loss", "val_loss", "val_ppl", "val_bpb", "tokens_per_s", "moe_dropped",
           "moe_max_load"]
"""The keys of a comparison row, in table order. `tokens_per_s` is the median of the rates logged every `log_every`
steps: the models train one after the other, so a passing burst of load on the host would move a whole-run mean
of one of them. `moe_dropped` (share of tokens over an expert's capacity) and `moe_max_load` (the busiest
expert's share, 1/N when balanced) are the last logged step's, averaged over the layers, and None for a dense
model."""


def variant_name(model: ModelConfig) -> str:
    """`dense`, or `moe_<N>` for a model with N experts per block."""
    return f"{MOE_PREFIX}{model.moe_experts}" if model.moe_experts else DENSE


def variant_model(model: ModelConfig, name: str) -> ModelConfig:
    """`model` with the feed-forward `name` asks for and everything else as it is (the experts' capacity and loss
    weights are the model's own `moe_*` fields)."""
    if name == DENSE:
        return replace(model, moe_experts=0)
    experts = name.removeprefix(MOE_PREFIX)
    if not name.startswith(MOE_PREFIX) or not experts.isdigit() or int(experts) < 2:
        raise ValueError(f"unknown architecture variant {name!r}: use {DENSE!r} or '{MOE_PREFIX}<N>' with N >= 2 "
                         "experts")
    return replace(model, moe_experts=int(experts))


def compared_variants(model: ModelConfig, names: Iterable[str]) -> list[str]:
    """The variants to train beside `model`: each name checked (ValueError for an unknown one), repeats and the
    model's own variant left out, in the order given."""
    for name in names:
        variant_model(model, name)
    return [name for name in dict.fromkeys(names) if name != variant_name(model)]


def candidates_dir(out_dir: Path) -> Path:
    """Where the variants of the run publishing to `out_dir` publish theirs: `<out_dir>.candidates/<name>/`, beside
    `out_dir` (which publishing replaces whole), each with its own resumable step checkpoints beside it."""
    out_dir = Path(out_dir).absolute()
    return out_dir.with_name(out_dir.name + CANDIDATES_SUFFIX)


def variant_config(config: TrainConfig, trained: ModelConfig, name: str) -> TrainConfig:
    """`config` for the variant `name` of `trained`, the model the run of `config` built (its shape as resolved:
    sized by a budget, fitted to the tokenizer). A run that must resume may resume its variants, which need not
    have started yet."""
    return replace(config, model=variant_model(trained, name), budget=None,
                   out_dir=str(candidates_dir(Path(config.out_dir)) / name),
                   resume="never" if config.resume == "never" else "auto")


def size_columns(model: ModelConfig) -> dict[str, Any]:
    """Experts, parameters total and active (what one token's matmuls use) and training FLOPs per token."""
    return {"moe_experts": model.moe_experts, "parameters_total": count_parameters(model),
            "parameters_active": count_parameters(model, active=True), "flops_per_token": round(flops_per_token(model))}


def comparison_row(name: str, result: Mapping[str, Any], published: bool) -> dict[str, Any]:
    """One row of `COLUMNS` from a training result (a `TrainResult` as a dict: `asdict`, or the torchrun
    launcher's message) whose `checkpoint` folder holds the trained model."""
    metrics = result["eval_metrics"]
    history = result.get("history", [])
    routed = next((h for h in reversed(history) if "moe_max_load" in h), {})
    rates = [h["tokens_per_s"] for h in history if "tokens_per_s" in h]

    def rounded(value: Any, digits: int) -> float | None:
        return round(float(value), digits) if value is not None else None

    return {"model": name, "published": published, **size_columns(load_config(Path(result["checkpoint"]))),
            "steps": int(result["step"]), "tokens_seen": int(result["tokens_seen"]),
            "train_loss": rounded(result["train_loss"], 4), "val_loss": rounded(metrics["val_loss"], 4),
            "val_ppl": rounded(metrics["val_ppl"], 3), "val_bpb": rounded(metrics.get("val_bpb"), 4),
            "tokens_per_s": round(statistics.median(rates) if rates else float(result["tokens_per_s"])),
            "moe_dropped": rounded(routed.get("moe_dropped"), 4),
            "moe_max_load": rounded(routed.get("moe_max_load"), 4)}
