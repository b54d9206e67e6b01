"""Adapt a pretrained multilingual checkpoint to one language, measuring every language before and after.

`adapt_language` scores the val text of every language (`balanced_shards/val`, grouped by `lang`), splits the
training text into the target language and the others (the replay pool), applies a strategy of
`LanguageAdaptConfig`, trains with `training.finetune` through the same replay sampler as domain adaptation
(`adapt.replay_sampler`), scores every language again and writes a checkpoint folder. Forgetting is the change
in the other languages' perplexity: what this checkpoint does to text it was not adapted to.

Checkpoint folders (`model.safetensors` + `config.json` always): `continual`, `alignment` and `output_head` write
the adapted model itself (an untied output projection for `output_head`); `adapter` and `lora` write the base
weights untouched beside the language's adapter (`language_adapter.*`, or LoRA's `adapter_model.safetensors` and
`adapter_config.json`), so one base serves every language and `load_language_model` puts them together.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.adaptation import bottleneck
from fm_pipeline.adaptation.adapt import loop_settings, model_objective, replay_sampler
from fm_pipeline.adaptation.alignment import AlignmentLoss, ParallelPair, lake_translation_pairs, pair_retrieval
from fm_pipeline.adaptation.language_config import SHARED_WEIGHT_STRATEGIES, LanguageAdaptConfig
from fm_pipeline.adaptation.lora import (
    LoraSpec,
    adapter_state,
    add_lora,
    load_adapted,
    parameter_counts,
    save_adapter,
    unload_lora,
)
from fm_pipeline.evaluation.perplexity import evaluate_texts
from fm_pipeline.lake.parquet_io import ShardWriter, iter_rows, list_shards, read_docs
from fm_pipeline.lake.staging import staged_dir
from fm_pipeline.modeling.checkpoint import load_checkpoint, save_checkpoint
from fm_pipeline.training.callbacks import TrainingCallback
from fm_pipeline.training.finetune import finetune, objective_loss
from fm_pipeline.training.loop import resolve_device

RESULT_FILE = "language_adapt_result.json"
SPLIT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("lang", pa.string())])
EVAL_KEYS = ("val_loss", "val_ppl", "val_bpb")


@dataclass
class LanguageAdaptResult:
    """Everything the asset's metadata, the comparison table and the forgetting table need."""

    lang: str
    strategy: str
    checkpoint: Path
    trainable_params: int
    total_params: int
    before: dict[str, dict[str, float]]
    """Per language of the val text: val_loss, val_ppl, val_bpb before adaptation."""
    after: dict[str, dict[str, float]]
    target_train_documents: int
    replay_train_documents: int
    replay_share: float
    parallel_pairs: int
    retrieval_before: dict[str, float] | None
    retrieval_after: dict[str, float] | None
    train: dict[str, float]
    wall_s: float = 0.0
    contrastive_history: list[float] = field(default_factory=list)

    @property
    def others(self) -> list[str]:
        return sorted(k for k in self.before if k != self.lang)

    def forgetting(self) -> list[dict[str, Any]]:
        """One row per other language of the val text: perplexity and bits per byte before and after, and the
        relative perplexity change (positive: forgotten)."""
        return [{"lang": k, "ppl_before": self.before[k]["val_ppl"], "ppl_after": self.after[k]["val_ppl"],
                 "bpb_before": self.before[k]["val_bpb"], "bpb_after": self.after[k]["val_bpb"],
                 "ppl_change": self.after[k]["val_ppl"] / self.before[k]["val_ppl"] - 1} for k in self.others]

    def metrics(self) -> dict[str, Any]:
        """The asset's metadata: the target language before/after, the others summarized, the run."""
        rows = self.forgetting()
        target_before, target_after = self.before[self.lang], self.after[self.lang]
        out: dict[str, Any] = {
            "adapt/strategy": self.strategy,
            "adapt/language": self.lang,
            "eval/lang_ppl_before": target_before["val_ppl"],
            "eval/lang_ppl_after": target_after["val_ppl"],
            "eval/lang_bpb_before": target_before["val_bpb"],
            "eval/lang_bpb_after": target_after["val_bpb"],
            "eval/others_ppl_before": _geomean([r["ppl_before"] for r in rows]),
            "eval/others_ppl_after": _geomean([r["ppl_after"] for r in rows]),
            "eval/max_forgetting": max((r["ppl_change"] for r in rows), default=0.0),
            "adapt/trainable_params": self.trainable_params,
            "adapt/total_params": self.total_params,
            "adapt/trainable_share": self.trainable_params / self.total_params,
            "adapt/replay_share": self.replay_share,
            "adapt/target_train_documents": self.target_train_documents,
            "adapt/replay_train_documents": self.replay_train_documents,
            "adapt/parallel_pairs": self.parallel_pairs,
            "adapt/wall_s": self.wall_s,
            "train/final_loss": self.train["final_loss"],
            "train/tokens_per_s": self.train["tokens_per_s"],
        }
        if self.retrieval_before is not None and self.retrieval_after is not None:
            out["eval/retrieval_accuracy_before"] = self.retrieval_before["mean"]
            out["eval/retrieval_accuracy_after"] = self.retrieval_after["mean"]
        return out

    def row(self) -> dict[str, Any]:
        """One row of the comparison table."""
        m = self.metrics()
        retrieval = ("-" if "eval/retrieval_accuracy_before" not in m else
                     f"{m['eval/retrieval_accuracy_before']:.3f} → {m['eval/retrieval_accuracy_after']:.3f}")
        return {
            "strategy": self.strategy, "trainable_params": self.trainable_params,
            "trainable_share": round(m["adapt/trainable_share"], 4),
            "lang_ppl": f"{m['eval/lang_ppl_before']:.2f} → {m['eval/lang_ppl_after']:.2f}",
            "lang_bpb": f"{m['eval/lang_bpb_before']:.4f} → {m['eval/lang_bpb_after']:.4f}",
            "others_ppl": f"{m['eval/others_ppl_before']:.2f} → {m['eval/others_ppl_after']:.2f}",
            "max_forgetting": f"{m['eval/max_forgetting']:+.1%}", "retrieval": retrieval,
            "wall_s": round(self.wall_s, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checkpoint"] = str(self.checkpoint)
        return out


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def split_by_language(train_dir: Path, lang: str, target_dir: Path, replay_dir: Path) -> tuple[int, int]:
    """Stream the shards of `train_dir` into `target_dir` (rows of `lang`) and `replay_dir` (every other row);
    returns the two row counts. Memory is bounded by a row group."""
    target_dir.mkdir(parents=True, exist_ok=True)
    replay_dir.mkdir(parents=True, exist_ok=True)
    with ShardWriter(target_dir, SPLIT_SCHEMA) as target, ShardWriter(replay_dir, SPLIT_SCHEMA) as replay:
        for row in iter_rows(list_shards(Path(train_dir)), ["id", "text", "lang"]):
            (target if row["lang"] == lang else replay).write(row)
    return target.rows_written, replay.rows_written


def evaluate_languages(model: nn.Module, sp: spm.SentencePieceProcessor, docs: list[tuple[str, str]],
                       config: LanguageAdaptConfig) -> dict[str, dict[str, float]]:
    """val_loss, val_ppl and val_bpb per language of `docs` (`(lang, text)`)."""
    report = evaluate_texts(model, sp, docs, max_docs_per_lang=config.eval_docs_per_lang,
                            batch_size=config.eval_batch_size)
    return {lang: {k: m[k] for k in EVAL_KEYS} for lang, m in report["by_lang"].items()}


def untie_output_head(model: nn.Module) -> None:
    """Give the model an output projection of its own (a copy of the tied embedding when tied), the only
    parameter left trainable: a language-specific head over a frozen trunk."""
    weight = model.head.weight.detach().clone()
    model.head.weight = nn.Parameter(weight)
    model.config = replace(model.config, tie_embeddings=False)
    for name, param in model.named_parameters():
        param.requires_grad_(name == "head.weight")


def load_language_model(folder: Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model of a `language_adapted_checkpoint` folder with its language's adapter live (bottleneck or
    LoRA), or the plain model when the folder has none."""
    folder = Path(folder)
    if (folder / bottleneck.ADAPTER_CONFIG).is_file():
        model, _ = load_checkpoint(folder, device)
        bottleneck.load_language_adapter(model, folder)
        return model.eval()
    return load_adapted(folder, device, merge=False).eval()


def adapt_language(
    checkpoint_dir: Path, tokenizer_path: Path, train_dir: Path, val_dir: Path, lang: str, out_dir: Path,
    config: LanguageAdaptConfig, *, work_dir: Path | None = None, processes: int | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> LanguageAdaptResult:
    """Adapt the checkpoint to `lang` with `config.strategy` and write the adapted checkpoint folder to `out_dir`.

    `train_dir` and `val_dir` are folders of Parquet shards with `id`, `text` and `lang` (and `meta` for the
    parallel pairs): `balanced_shards/train` and `balanced_shards/val`. Parallel pairs of `lang` with
    `config.pivot` are read from both; with two or more, retrieval accuracy is measured before and after for
    every strategy, and `alignment` trains on them (it refuses to run with fewer).
    """
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model, _ = load_checkpoint(Path(checkpoint_dir), resolve_device(config.device))
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    val_docs = list(read_docs(Path(val_dir)))
    if lang not in {doc_lang for doc_lang, _ in val_docs}:
        raise ValueError(f"no val text in {lang!r} to measure the adaptation with")
    before = evaluate_languages(model, sp, val_docs, config)
    pairs: list[ParallelPair] = []
    if lang != config.pivot:
        pairs = lake_translation_pairs([Path(train_dir), Path(val_dir)], lang, config.pivot)
    retrieval_before = pair_retrieval(model, sp, pairs) if len(pairs) >= 2 else None
    for cb in callbacks:
        cb.on_eval(0, {"lang_ppl": before[lang]["val_ppl"], "lang_bpb": before[lang]["val_bpb"]})

    with tempfile.TemporaryDirectory(prefix="langadapt-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        n_target, n_replay = split_by_language(Path(train_dir), lang, work / "target", work / "replay")
        if not n_target:
            raise ValueError(f"no training text in {lang!r}")
        lora_spec, tuner, loss_fn, aligner = None, None, objective_loss, None
        if config.strategy == "adapter":
            bottleneck.add_language_adapter(model, lang, bottleneck.BottleneckSpec(config.adapter_reduction))
        elif config.strategy == "lora":
            lora_spec = LoraSpec(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
            tuner = add_lora(model, lora_spec)
        elif config.strategy == "output_head":
            untie_output_head(model)
        elif config.strategy == "alignment":
            aligner = AlignmentLoss(sp, pairs, config.align_weight, config.align_temperature,
                                    config.align_batch_pairs, config.seed)
            loss_fn = aligner
        objective = model_objective(model, sp, config.mlm_probability)
        sampler = replay_sampler(
            Path(tokenizer_path), list_shards(work / "target"), list_shards(work / "replay"), work / "tokens",
            objective.window_length(model.config.block_size), config.batch_size, config.replay_share, config.seed,
            processes=processes)
        trained = finetune(
            model, sampler, objective,
            loop_settings(config),
            loss_fn=loss_fn, callbacks=callbacks,
        )
    trainable, total = parameter_counts(model)
    after = evaluate_languages(model, sp, val_docs, config)
    retrieval_after = pair_retrieval(model, sp, pairs) if len(pairs) >= 2 else None
    for cb in callbacks:
        cb.on_eval(config.steps, {"lang_ppl": after[lang]["val_ppl"], "lang_bpb": after[lang]["val_bpb"]})

    out_dir = Path(out_dir)
    result = LanguageAdaptResult(
        lang=lang, strategy=config.strategy, checkpoint=out_dir, trainable_params=trainable, total_params=total,
        before=before, after=after, target_train_documents=n_target, replay_train_documents=n_replay,
        replay_share=config.replay_share, parallel_pairs=len(pairs), retrieval_before=retrieval_before,
        retrieval_after=retrieval_after,
        train={"steps": trained.steps, "final_loss": trained.final_loss, "tokens_per_s": trained.tokens_per_s,
               "wall_s": trained.wall_s},
        contrastive_history=aligner.history if aligner is not None else [],
    )
    with staged_dir(out_dir) as stage:
        _save(stage, model, tuner, lora_spec, config, lang)
        result.wall_s = time.perf_counter() - start
        payload = {**result.to_dict(), "config": config.to_dict(),
                   "modular": config.strategy not in SHARED_WEIGHT_STRATEGIES}
        (stage / RESULT_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return result


def _save(folder: Path, model: nn.Module, tuner: Any, lora_spec: LoraSpec | None, config: LanguageAdaptConfig,
          lang: str) -> None:
    """The strategy's checkpoint files into `folder` (see the module docstring)."""
    if config.strategy == "adapter":  # the checkpoint first: writing it replaces the folder
        state = bottleneck.adapter_state(model, lang)
        save_checkpoint(folder, bottleneck.remove_adapters(model), model.config, None)
        bottleneck.save_language_adapter(folder, state, lang, bottleneck.BottleneckSpec(config.adapter_reduction))
    elif tuner is not None and lora_spec is not None:
        adapter = adapter_state(model)
        save_checkpoint(folder, unload_lora(tuner), model.config, None)
        save_adapter(folder, adapter, lora_spec)
    else:
        save_checkpoint(folder, model, model.config, None)
