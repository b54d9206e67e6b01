"""The candidates added for issue #18 (lottery tickets, attention/feature and progressive distillation, Tucker,
LoRA/AdaLoRA on a pruned base, static int8): each a function (teacher, data, config) -> (model, details), so
`compress._build` stays a dispatcher. Details are what the comparison records about how a candidate was made."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from fm_pipeline.compression.distill import distill, make_student, progressive_distill
from fm_pipeline.compression.lora import RankAllocator, add_lora, add_svd_deltas, finish_svd_deltas
from fm_pipeline.compression.lottery import lottery_ticket
from fm_pipeline.compression.prune import prune_structured
from fm_pipeline.compression.static_int8 import quantize_static_int8
from fm_pipeline.compression.tucker import tucker_ffn
from fm_pipeline.compression.tuning import TuneData

if TYPE_CHECKING:
    from fm_pipeline.compression.config import CompressConfig

Built = tuple[nn.Module, dict[str, Any]]


def lottery(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    model, result = lottery_ticket(teacher, data, config.lottery_rounds, config.lottery_rate, config.lottery_steps,
                                   config.recovery_lr, config.lottery_rewind_step)
    return model, {"rounds": config.lottery_rounds, "rate": config.lottery_rate, "steps": config.lottery_steps,
                   "rewind_step": config.lottery_rewind_step,
                   "rewind_to": "pretrained weights" if config.lottery_rewind_step == 0 else
                   f"step {config.lottery_rewind_step} of the dense fine-tune",
                   "alive": result.alive, "sparsity": result.sparsity, "round_losses": result.losses}


def _distill_weights(config: CompressConfig) -> dict[str, float]:
    return {"temperature": config.temperature, "alpha": config.alpha, "hidden_weight": config.feature_weight,
            "attention_weight": config.attention_weight}


def distill_features(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    """The `distill` student, trained with attention-map and hidden-state terms besides the logits'."""
    student = make_student(teacher, config.student_layers, config.student_d_model, config.student_param_ratio,
                           seed=config.seed)
    weights = _distill_weights(config)
    model, result = distill(teacher, student, data, config.distill_steps, config.distill_lr, **weights)
    return model, {"n_layer": model.config.n_layer, "d_model": model.config.d_model, "steps": config.distill_steps,
                   **weights, "final_loss": result.final_loss}


def distill_progressive(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    """Teacher -> `progressive_ratios` intermediates -> the `distill` student's size, `distill_steps` each stage,
    on the logits (plus `hidden_weight` as `distill`), so it compares with `distill` at equal final size."""
    ratios = (*config.progressive_ratios, config.student_param_ratio)
    model, stages = progressive_distill(teacher, ratios, data, config.distill_steps, config.distill_lr,
                                        seed=config.seed, temperature=config.temperature, alpha=config.alpha,
                                        hidden_weight=config.hidden_weight)
    return model, {"param_ratios": list(ratios), "steps_per_stage": config.distill_steps, "stages": stages}


def tucker(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    model, done = tucker_ffn(teacher, config.tucker_rank_ratio, data, config.recovery_steps, config.recovery_lr)
    return model, {"rank_ratio": config.tucker_rank_ratio, "projections": done,
                   "recovery_steps": config.recovery_steps}


def _pruned_base(teacher: nn.Module, data: TuneData, config: CompressConfig) -> tuple[nn.Module, dict[str, Any]]:
    """The base of the LoRA candidates: `prune_structured`'s cut, without its recovery fine-tune (the delta
    does the recovering)."""
    base, removed = prune_structured(teacher, config.head_fraction, config.mlp_fraction, data,
                                     config.importance_batches)
    return base, {"base": "prune_structured without recovery", "head_fraction": config.head_fraction,
                  "mlp_fraction": config.mlp_fraction, "layer_n_head": base.config.layer_n_head,
                  "layer_d_ff": base.config.layer_d_ff, "removed_heads": removed["heads"]}


def lora(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    base, details = _pruned_base(teacher, data, config)
    model = add_lora(base, config.lora_rank)
    model, result = distill(teacher, model, data, config.lora_steps, config.lora_lr, config.temperature,
                            config.alpha)
    return model.requires_grad_(True), {**details, "rank": config.lora_rank, "steps": config.lora_steps,
                                        "final_loss": result.final_loss}


def adalora(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    """AdaLoRA from `adalora_initial_rank` triplets per layer to `lora_rank` per layer on average (the same
    delta budget as `lora`), allocated by importance."""
    base, details = _pruned_base(teacher, data, config)
    layers = add_svd_deltas(base, config.adalora_initial_rank)
    allocator = RankAllocator(layers, config.lora_rank * len(layers), config.lora_steps)
    model, result = distill(teacher, base, data, config.lora_steps, config.lora_lr, config.temperature,
                            config.alpha, regularizer=allocator.regularizer, before_step=allocator.before_step)
    allocator.finish()
    ranks = finish_svd_deltas(model)
    return model.requires_grad_(True), {**details, "initial_rank": config.adalora_initial_rank,
                                        "budget": config.lora_rank * len(layers), "ranks": ranks,
                                        "steps": config.lora_steps, "final_loss": result.final_loss}


def static_int8(teacher: nn.Module, data: TuneData, config: CompressConfig) -> Built:
    model, ranges = quantize_static_int8(teacher, data.batches(config.calibration_batches),
                                         config.calibration_percentile)
    return model, {"calibration_batches": config.calibration_batches, "batch_size": config.batch_size,
                   "percentile": config.calibration_percentile, "kernel": "torch._int_mm",
                   "input_ranges": {k: round(v, 6) for k, v in ranges.items()}}


BUILDERS: dict[str, Callable[[nn.Module, TuneData, CompressConfig], Built]] = {
    "static_int8": static_int8,
    "lottery_ticket": lottery,
    "distill_features": distill_features,
    "distill_progressive": distill_progressive,
    "tucker": tucker,
    "lora": lora,
    "adalora": adalora,
}
