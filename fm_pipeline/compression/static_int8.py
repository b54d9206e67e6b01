"""Static post-training int8 with calibration: run a few batches of the training text through the fp32 model,
observe every Linear's input, fix each input's int8 scale from what was seen, then swap in `StaticInt8Linear`
(int8 weights per output row, integer products through `torch._int_mm`).

Unlike dynamic int8, no range is measured per call: cheaper at run time, but an input beyond the calibrated
range is clipped. The observer keeps, per layer, the largest |x| over the calibration batches ("minmax",
`percentile` 100) or the mean over batches of that batch's `percentile`-th percentile of |x| (clipping rare
outliers to give the bulk of the values finer steps)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fm_pipeline.compression.layers import StaticInt8Linear
from fm_pipeline.compression.modules import INT8_MAX
from fm_pipeline.compression.quantize import swap_quantized

MAX_QUANTILE_INPUT = 1 << 24
"""`torch.quantile` refuses larger inputs; a longer batch is subsampled evenly."""


def _batch_range(x: torch.Tensor, percentile: float) -> float:
    magnitude = x.detach().abs().float().flatten()
    if percentile >= 100.0:
        return float(magnitude.max())
    if magnitude.numel() > MAX_QUANTILE_INPUT:
        magnitude = magnitude[:: magnitude.numel() // MAX_QUANTILE_INPUT + 1]
    return float(torch.quantile(magnitude, percentile / 100.0))


@torch.no_grad()
def calibrate(model: nn.Module, batches: Sequence[dict[str, torch.Tensor]], percentile: float = 100.0
              ) -> dict[str, float]:
    """Per Linear (by module path), the input range to quantize to ±127: the observed maximum of |x|, or the
    mean over batches of its `percentile`-th percentile."""
    if not batches:
        raise ValueError("static quantization needs at least one calibration batch")
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], not {percentile}")
    seen: dict[str, list[float]] = {}
    hooks = [module.register_forward_pre_hook(
        lambda _m, args, path=path: seen.setdefault(path, []).append(_batch_range(args[0], percentile)))
        for path, module in model.named_modules() if isinstance(module, nn.Linear)]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for batch in batches:
            model(batch["idx"].to(device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    combine = max if percentile >= 100.0 else (lambda values: sum(values) / len(values))
    return {path: combine(values) for path, values in seen.items()}


def quantize_static_int8(
    model: nn.Module, batches: Sequence[dict[str, torch.Tensor]], percentile: float = 100.0,
    quantize_embedding: bool = True,
) -> tuple[nn.Module, dict[str, float]]:
    """A copy of `model` with every Linear static int8 (input scales from calibration on `batches`) and the
    token table int8 (shared with a tied head); returns it and each layer's calibrated input range."""
    ranges = calibrate(model, batches, percentile)
    quantized = swap_quantized(model, 8, None, quantize_embedding, StaticInt8Linear)
    with torch.no_grad():
        for path, module in quantized.named_modules():
            if isinstance(module, StaticInt8Linear):
                module.input_scale.fill_(max(ranges[path], 1e-8) / INT8_MAX)
    return quantized, ranges
