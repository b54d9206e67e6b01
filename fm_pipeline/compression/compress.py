"""Run the configured compression techniques on a checkpoint, measure every candidate side by side, publish
the best one within the quality budget.

Every candidate is saved to its own folder (`export.py` format), loaded back from disk and measured from
there, so the numbers are those of what would be published. The output folder is built beside `out_dir` and
renamed into place:

    out_dir/
      model.safetensors, config.json, compression.json, tokenizer.model   the published model
      comparison.md, size_vs_ppl.png, metrics.json                        the comparison
      candidates/<name>/                                                  every candidate (unless not kept)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.compression.builders import BUILDERS
from fm_pipeline.compression.config import BASELINE, CompressConfig
from fm_pipeline.compression.distill import distill, make_student
from fm_pipeline.compression.export import COMPRESSION, CONFIG, WEIGHTS, load_compressed, save_compressed
from fm_pipeline.compression.lowrank import low_rank
from fm_pipeline.compression.measure import folder_bytes, quality, speed, threads
from fm_pipeline.compression.modules import count_weights
from fm_pipeline.compression.prune import prune_structured, prune_unstructured
from fm_pipeline.compression.qat import qat_int8
from fm_pipeline.compression.quantize import quantize_dynamic_int8, quantize_weight_only, resolve_backend
from fm_pipeline.compression.report import markdown_table
from fm_pipeline.compression.select import select
from fm_pipeline.compression.tuning import TuneData
from fm_pipeline.evaluation import plots
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.staging import swapped_dir
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.tokenization.packed import PackedTokens


@dataclass
class Candidate:
    """One compressed model: its folder, its numbers (for one MLflow run each) and how it was made."""

    name: str
    folder: Path | None
    """Its folder under `out_dir/candidates` (None when candidates are not kept; the published one's is out_dir)."""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"name": self.name, **self.metrics}


@dataclass
class CompressResult:
    out_dir: Path
    chosen: str
    candidates: list[Candidate]
    table_markdown: str
    plot_path: Path
    contract: dict[str, Any]
    """`compression/method`, `compression/size_ratio`, `compression/ppl_ratio`, `compression/speedup`."""
    distillation: dict[str, float] | None = None
    """The student's loss, the untrained student's and the teacher's, and `gap_recovery` (domain val)."""
    rule: str = ""
    """The selection rule that picked `chosen` (`select.Selection.rule`) and why, in words."""
    reason: str = ""

    def candidate(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)


def _build(
    name: str, teacher: nn.Module, data: TuneData, config: CompressConfig,
    built: dict[str, tuple[nn.Module, dict[str, Any]]], check_loss: Callable[[nn.Module], float] | None = None,
    calibration: TuneData | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The compressed model of technique `name`, and what to record about how it was made. `built`: the
    candidates made so far, so `prune_int8` quantizes `prune_structured`'s model rather than pruning and
    fine-tuning again (the same seed and data would give the same model). `check_loss`: a model's loss on the
    calibration text, for pruning to `prune_max_ppl_ratio`; `calibration`: batches of that text, on which
    structured pruning scores importance and refits (else the fine-tune text `data`)."""
    backend = resolve_backend(config.backend, next(teacher.parameters()).device, compiled=config.compile)
    if name == "dynamic_int8":
        return quantize_dynamic_int8(teacher, backend), {"backend": backend}
    if name == "dynamic_int8_torchao":
        return quantize_dynamic_int8(teacher, "torchao"), {"backend": "torchao"}
    if name == "weight_int8":
        return quantize_weight_only(teacher, 8), {"bits": 8}
    if name == "weight_int4":
        return quantize_weight_only(teacher, 4, config.int4_group_size), {"bits": 4,
                                                                           "group_size": config.int4_group_size}
    if name == "qat_int8":
        model, result = qat_int8(teacher, data, config.qat_steps, config.qat_lr, backend)
        return model, {"steps": config.qat_steps, "lr": config.qat_lr, "final_loss": result.final_loss}
    if name in ("prune_magnitude", "prune_gradual"):
        gradual = name == "prune_gradual"
        model = prune_unstructured(teacher, config.sparsity, data, config.recovery_steps, config.recovery_lr,
                                   gradual=gradual)
        return model, {"sparsity": config.sparsity, "recovery_steps": config.recovery_steps, "gradual": gradual}
    if name in ("prune_structured", "prune_int8"):
        if name == "prune_int8" and "prune_structured" in built:
            model, details = built["prune_structured"]
        else:
            model, removed = prune_structured(teacher, config.head_fraction, config.mlp_fraction,
                                              calibration or data, config.importance_batches, config.recovery_steps,
                                              config.recovery_lr, config.prune_max_ppl_ratio if check_loss else None,
                                              check_loss, config.reconstruct_batches, config.reconstruct_ridge)
            scale = removed.get("scale", 1.0)
            details = {"head_fraction": config.head_fraction * scale, "mlp_fraction": config.mlp_fraction * scale,
                       **({"check_ppl_ratio": removed["check_ppl_ratio"]} if "scale" in removed else {}),
                       "calibration_text": "the domain's training documents" if calibration else "fine-tune tokens",
                       "reconstruct_batches": config.reconstruct_batches,
                       **({"reconstruction": removed["reconstruction"]} if "reconstruction" in removed else {}),
                       "recovery_steps": config.recovery_steps, "removed_heads": removed["heads"],
                       "layer_n_head": model.config.layer_n_head, "layer_d_ff": model.config.layer_d_ff}
        if name == "prune_int8":
            return quantize_dynamic_int8(model, backend), {**details, "backend": backend}
        return model, details
    if name == "distill":
        student = make_student(teacher, config.student_layers, config.student_d_model, config.student_param_ratio,
                               seed=config.seed)
        model, result = distill(teacher, student, data, config.distill_steps, config.distill_lr, config.temperature,
                                config.alpha, config.hidden_weight)
        return model, {"n_layer": model.config.n_layer, "d_model": model.config.d_model, "steps": config.distill_steps,
                       "temperature": config.temperature, "alpha": config.alpha,
                       "hidden_weight": config.hidden_weight, "final_loss": result.final_loss}
    if name in BUILDERS:
        return BUILDERS[name](teacher, data, config)
    if name == "lowrank":
        model, ranks = low_rank(teacher, config.lowrank_energy, data, config.recovery_steps, config.recovery_lr)
        return model, {"energy": config.lowrank_energy, "ranks": ranks, "recovery_steps": config.recovery_steps}
    raise ValueError(f"unknown technique {name!r}")


def _calibration_data(docs: Sequence[tuple[str, str]], sp: spm.SentencePieceProcessor, model_config: ModelConfig,
                      config: CompressConfig) -> TuneData | None:
    """Batches of the calibration documents (up to `calibration_tokens`); None when they do not fill one
    training window."""
    data = TuneData.from_texts((text for _, text in docs), sp, model_config, config.batch_size, config.seed,
                               config.calibration_tokens)
    return data if data.tokens.num_tokens >= data.objective.window_length(data.block_size) else None


def _prompt(sp: spm.SentencePieceProcessor, docs: Sequence[tuple[str, str]], length: int) -> list[int]:
    """`length` tokens of real text (the validation documents, repeated if short) behind BOS."""
    ids: list[int] = []
    for _, text in docs:
        ids += sp.encode(text)
        if len(ids) >= length:
            break
    if not ids:
        raise ValueError("no validation text to build a timing prompt from")
    while len(ids) < length - 1:
        ids += ids
    return [sp.bos_id(), *ids[: length - 1]]


def _publish(staging: Path, chosen: Path, tokenizer: Path) -> None:
    for name in (WEIGHTS, CONFIG, COMPRESSION):
        shutil.copyfile(chosen / name, staging / name)
    shutil.copyfile(tokenizer, staging / TOKENIZER_MODEL)


def compress(
    checkpoint_dir: Path,
    tokenizer_path: Path,
    train_tokens: Path | PackedTokens,
    domain_val_docs: Sequence[tuple[str, str]],
    general_val_docs: Sequence[tuple[str, str]],
    config: CompressConfig,
    out_dir: Path,
    log: Callable[[str], None] = print,
    calibration_docs: Sequence[tuple[str, str]] = (),
) -> CompressResult:
    """Compress the decoder-only model in `checkpoint_dir` every configured way and publish the best within
    budget to `out_dir`.

    train_tokens: a tokenized_corpus folder (its `train` split is read) or an open `PackedTokens`, the text
    of the fine-tunes (recovery, QAT, distillation). Validation docs are (lang, text) pairs, e.g. from
    `lake.parquet_io.read_docs`: domain perplexity decides the budget, general perplexity is reported.
    calibration_docs: text of the model's use other than the validation documents (the domain's training
    documents), on which structured pruning measures its `prune_max_ppl_ratio`; without it pruning takes the
    configured fractions.
    """
    out_dir = Path(out_dir)
    teacher, model_config = load_checkpoint(Path(checkpoint_dir))
    teacher.eval()
    if model_config.architecture != "decoder_only":
        raise ValueError("compression measures generation: it needs a decoder_only checkpoint")
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    domain_docs, general_docs = list(domain_val_docs), list(general_val_docs)
    data = TuneData.open(train_tokens, sp, model_config, config.batch_size, config.seed)
    calibration = list(calibration_docs)
    calibration_data = _calibration_data(calibration, sp, model_config, config) if calibration else None

    def check_loss(model: nn.Module) -> float:
        with threads(config.threads):
            return quality(model, sp, calibration, config.calibration_max_docs)["loss"]

    with swapped_dir(out_dir) as staging:
        (staging / "candidates").mkdir()
        candidates: list[Candidate] = []
        loaded: dict[str, nn.Module] = {}
        distillation = None
        for name in (BASELINE, *config.techniques):
            log(f"compression: {name}")
            start = time.perf_counter()
            torch.manual_seed(config.seed)
            model, details = (teacher, {}) if name == BASELINE else _build(
                name, teacher, data, config, {c.name: (loaded[c.name], c.details) for c in candidates},
                check_loss if calibration else None, calibration_data)
            seconds = time.perf_counter() - start
            folder = save_compressed(staging / "candidates" / name, model, name, details)
            model, _ = load_compressed(folder)  # measure what was written, not what is in memory
            with threads(config.threads):
                domain, general = (quality(model, sp, docs, config.eval_max_docs)
                                   for docs in (domain_docs, general_docs))
            metrics = {"size_bytes": folder_bytes(folder), "params": count_weights(model), "build_seconds": seconds,
                       **{f"domain_{k}": v for k, v in domain.items()},
                       **{f"general_{k}": v for k, v in general.items()}}
            if name == "distill":
                torch.manual_seed(config.seed)
                untrained = make_student(teacher, config.student_layers, config.student_d_model,
                                         config.student_param_ratio, seed=config.seed, init_from_teacher=False)
                with threads(config.threads):
                    untrained_loss = quality(untrained, sp, domain_docs, config.eval_max_docs)["loss"]
                teacher_loss = candidates[0].metrics["domain_loss"]
                gap = untrained_loss - teacher_loss
                distillation = {"student_loss": domain["loss"], "untrained_loss": untrained_loss,
                                "teacher_loss": teacher_loss,
                                "gap_recovery": (untrained_loss - domain["loss"]) / gap if gap else float("nan"),
                                "param_ratio": metrics["params"] / candidates[0].metrics["params"]}
                metrics.update({f"distill/{k}": v for k, v in distillation.items()})
            candidates.append(Candidate(name, folder, metrics, details))
            loaded[name] = model

        log("compression: timing every candidate")
        prompt = _prompt(sp, domain_docs or general_docs, config.prompt_tokens)
        timings = speed(loaded, prompt, config.new_tokens, config.timing_rounds, config.threads,
                        config.timing_max_seconds, compile=config.compile)
        base = candidates[0].metrics | timings[BASELINE]
        for c in candidates:
            c.metrics.update(timings[c.name])
            m = c.metrics
            m.update({
                "size_ratio": m["size_bytes"] / base["size_bytes"],
                "params_ratio": m["params"] / base["params"],
                "domain_ppl_ratio": m["domain_ppl"] / base["domain_ppl"],
                "general_ppl_ratio": m["general_ppl"] / base["general_ppl"],
                "domain_bpb_ratio": m["domain_bpb"] / base["domain_bpb"],
                "speedup": base["latency_ms_per_token"] / m["latency_ms_per_token"],
                "throughput_ratio": m["throughput_tokens_per_s"] / base["throughput_tokens_per_s"],
            })

        rows = [c.row() for c in candidates]
        selection = select(rows, config.objective, config.max_ppl_ratio, config.budget_metric, config.min_speedup)
        chosen = selection.candidate
        log(f"compression: publishing {chosen['name']} by rule {selection.rule}: {selection.reason}")
        table = markdown_table(rows, chosen["name"])
        (staging / "comparison.md").write_text(table, encoding="utf-8")
        base_ppl = next(r["domain_ppl"] for r in rows if r["name"] == BASELINE)
        plots.size_vs_perplexity([{"label": r["name"], "size_mb": r["size_bytes"] / 1e6, "ppl": r["domain_ppl"]}
                                  for r in rows], staging / "size_vs_ppl.png",
                                 "compression candidates: size vs domain perplexity", chosen=chosen["name"],
                                 budget_ppl=base_ppl * config.max_ppl_ratio)
        contract = {"compression/method": chosen["name"], "compression/size_ratio": chosen["size_ratio"],
                    "compression/ppl_ratio": chosen[config.budget_metric], "compression/speedup": chosen["speedup"]}
        summary = {"chosen": chosen["name"], "rule": selection.rule, "reason": selection.reason,
                   "contract": contract, "config": config.to_dict(),
                   "distillation": distillation,
                   "candidates": [{"name": c.name, "metrics": c.metrics, "details": c.details} for c in candidates]}
        (staging / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        _publish(staging, staging / "candidates" / chosen["name"], Path(tokenizer_path))
        if not config.keep_candidates:
            shutil.rmtree(staging / "candidates")
    for c in candidates:
        c.folder = out_dir / "candidates" / c.name if config.keep_candidates else None
        if c.name == chosen["name"] and not config.keep_candidates:
            c.folder = out_dir
    return CompressResult(out_dir, chosen["name"], candidates, table, out_dir / "size_vs_ppl.png", contract,
                          distillation, selection.rule, selection.reason)
