"""Adapt a pretrained checkpoint to a domain with one strategy, measured before and after.

`adapt` evaluates the checkpoint (domain perplexity and bits per byte on the domain's val split, general
perplexity on `balanced_shards/val` for catastrophic forgetting, a linear domain probe), applies the strategy,
trains with `training.finetune` on the model's own pretraining objective, evaluates again and writes a
checkpoint folder (`model.safetensors` + `config.json`, `tokenizer.model` when the vocabulary changed, the
adapter files for an unmerged LoRA, and `adapt_result.json`), swapped in whole.

Perplexity is per token, so it is not comparable across tokenizers; bits per byte is. After vocabulary
expansion, `*_ppl_after` is therefore given per token of the base tokenizer (the same nats over the token
count `*_ppl_before` divides by: exp(loss_before · bpb_after / bpb_before)), and the perplexity per token of
the expanded tokenizer is in `*_ppl_after_own_tokens`.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.adaptation.config import AdaptConfig
from fm_pipeline.adaptation.lora import (
    LoraSpec,
    adapter_state,
    add_lora,
    merge_lora,
    parameter_counts,
    save_adapter,
    unload_lora,
)
from fm_pipeline.adaptation.probe import probe_accuracy
from fm_pipeline.adaptation.schedules import GradualUnfreezing, discriminative_lr, layer_groups
from fm_pipeline.adaptation.vocab import extend_tokenizer, find_terms, grow_vocabulary, tokens_per_word
from fm_pipeline.evaluation.perplexity import evaluate_texts
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.parquet_io import list_shards, read_docs
from fm_pipeline.lake.staging import staged_dir
from fm_pipeline.modeling.checkpoint import load_checkpoint, save_checkpoint
from fm_pipeline.modeling.objectives import Objective, make_batch
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum
from fm_pipeline.training.callbacks import TrainingCallback
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.finetune import FinetuneConfig, finetune
from fm_pipeline.training.loop import resolve_device

RESULT_FILE = "adapt_result.json"
EVAL_KEYS = ("val_loss", "val_ppl", "val_bpb")
SENTINEL = "<extra_id_0>"


@dataclass(frozen=True)
class MaskedObjective:
    """The model's objective with the masked-LM probability of the config (`Objective` uses BERT's 0.15)."""

    objective: Objective
    mask_prob: float

    def window_length(self, block_size: int) -> int:
        return self.objective.window_length(block_size)

    def make_batch(self, windows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        o = self.objective
        return make_batch(o.architecture, windows, vocab_size=o.vocab_size, pad_id=o.pad_id, mask_id=o.mask_id,
                          special_ids=o.special_ids, sentinel_ids=o.sentinel_ids, generator=generator,
                          mask_prob=self.mask_prob)


class MixedSampler:
    """Batches with `replay` of their rows drawn from the general corpus and the rest from the domain
    (experience replay against forgetting). Masks are drawn from the domain sampler's generator."""

    def __init__(self, domain: WindowSampler, general: WindowSampler) -> None:
        self.domain, self.general = domain, general
        self.generator = domain.generator

    def next_batch(self) -> torch.Tensor:
        return torch.cat((self.domain.next_batch(), self.general.next_batch()))


@dataclass
class AdaptResult:
    """Everything a run's table row and the asset's metadata need."""

    strategy: str
    checkpoint: Path
    tokenizer: Path
    """The tokenizer the checkpoint's ids belong to (a copy inside the checkpoint when the vocabulary grew)."""
    trainable_params: int
    total_params: int
    domain_before: dict[str, float]
    domain_after: dict[str, float]
    general_before: dict[str, float]
    general_after: dict[str, float]
    probe_before: float | None
    probe_after: float | None
    train: dict[str, float]
    wall_s: float
    vocab: dict[str, Any] | None = None
    """For vocab_expansion: base and new size, the new pieces and the domain's tokens per word before/after."""
    merged: bool | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params

    def _ppl_after(self, before: dict[str, float], after: dict[str, float]) -> float:
        """Perplexity after, per token of the tokenizer `before` was measured with."""
        if self.vocab is None:
            return after["val_ppl"]
        return math.exp(before["val_loss"] * after["val_bpb"] / before["val_bpb"])

    def metrics(self) -> dict[str, Any]:
        """The asset's metadata: the contract's keys first, then bits per byte, the probe and the run."""
        out: dict[str, Any] = {
            "adapt/strategy": self.strategy,
            "eval/domain_ppl_before": self.domain_before["val_ppl"],
            "eval/domain_ppl_after": self._ppl_after(self.domain_before, self.domain_after),
            "eval/general_ppl_before": self.general_before["val_ppl"],
            "eval/general_ppl_after": self._ppl_after(self.general_before, self.general_after),
            "eval/domain_bpb_before": self.domain_before["val_bpb"],
            "eval/domain_bpb_after": self.domain_after["val_bpb"],
            "eval/general_bpb_before": self.general_before["val_bpb"],
            "eval/general_bpb_after": self.general_after["val_bpb"],
            "adapt/trainable_params": self.trainable_params,
            "adapt/total_params": self.total_params,
            "adapt/trainable_share": self.trainable_share,
            "adapt/wall_s": self.wall_s,
            "train/final_loss": self.train["final_loss"],
            "train/tokens_per_s": self.train["tokens_per_s"],
        }
        if self.probe_before is not None:
            out["eval/probe_accuracy_before"] = self.probe_before
            out["eval/probe_accuracy_after"] = self.probe_after
        if self.vocab is not None:
            out["eval/domain_ppl_after_own_tokens"] = self.domain_after["val_ppl"]
            out["eval/general_ppl_after_own_tokens"] = self.general_after["val_ppl"]
            out["vocab/new_tokens"] = self.vocab["new_tokens"]
            out["vocab/tokens_per_word_before"] = self.vocab["tokens_per_word_before"]
            out["vocab/tokens_per_word_after"] = self.vocab["tokens_per_word_after"]
        return out

    def row(self) -> dict[str, Any]:
        """One row of the comparison table: strategy, trainable parameters, domain and general perplexity
        before → after, probe accuracy before → after, wall time."""
        m = self.metrics()
        return {
            "strategy": self.strategy,
            "trainable_params": self.trainable_params,
            "trainable_share": round(self.trainable_share, 4),
            "domain_ppl": f"{m['eval/domain_ppl_before']:.2f} → {m['eval/domain_ppl_after']:.2f}",
            "domain_bpb": f"{m['eval/domain_bpb_before']:.4f} → {m['eval/domain_bpb_after']:.4f}",
            "general_ppl": f"{m['eval/general_ppl_before']:.2f} → {m['eval/general_ppl_after']:.2f}",
            "probe_accuracy": (None if self.probe_before is None
                               else f"{self.probe_before:.3f} → {self.probe_after:.3f}"),
            "wall_s": round(self.wall_s, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checkpoint"], out["tokenizer"] = str(self.checkpoint), str(self.tokenizer)
        return out


def _evaluate(model: nn.Module, sp: spm.SentencePieceProcessor, domain_val: list[tuple[str, str]],
              general_val: list[tuple[str, str]], probe_docs: Mapping[str, Sequence[str]] | None,
              config: AdaptConfig) -> tuple[dict[str, float], dict[str, float], float | None]:
    domain = evaluate_texts(model, sp, domain_val, batch_size=config.eval_batch_size)
    general = evaluate_texts(model, sp, general_val, max_docs_per_lang=config.eval_docs_per_lang,
                             batch_size=config.eval_batch_size)
    probe = None
    if probe_docs:
        probe = probe_accuracy(model, sp, probe_docs, max_windows=config.probe_windows_per_doc,
                               batch_size=config.eval_batch_size).accuracy
    return ({k: domain[k] for k in EVAL_KEYS}, {k: general[k] for k in EVAL_KEYS}, probe)


def _sampler(tokens: Path, split: str, checksum: str, length: int, batch_size: int, seed: int) -> WindowSampler:
    packed = PackedTokens.open(tokens, split, expected_checksum=checksum)
    if packed.num_tokens < length:
        raise ValueError(f"the {split} text has {packed.num_tokens} tokens, fewer than one {length}-token window")
    return WindowSampler(packed, length, batch_size, seed)


def replay_rows(batch_size: int, share: float) -> int:
    """Rows of each batch replayed from the general corpus: the share of the batch, rounded, leaving at least
    one row of the text being adapted to."""
    return min(round(batch_size * share), batch_size - 1)


def loop_settings(config: Any) -> FinetuneConfig:
    """The training loop's settings from an adaptation config's same-named fields (domain or language)."""
    return FinetuneConfig(steps=config.steps, lr=config.lr, min_lr_ratio=config.min_lr_ratio,
                          warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
                          grad_clip=config.grad_clip, log_every=config.log_every)


def model_objective(model: nn.Module, sp: spm.SentencePieceProcessor,
                    mlm_probability: float) -> Objective | MaskedObjective:
    """The model's own pretraining objective, masking `mlm_probability` of the tokens for encoder_only."""
    objective = Objective.for_model(model.config, sp)
    return MaskedObjective(objective, mlm_probability) if model.config.architecture == "encoder_only" else objective


def replay_sampler(
    tokenizer: Path, target: Sequence[Path], replay: Sequence[Path] | None, tokens_dir: Path, length: int,
    batch_size: int, replay_share: float, seed: int, *, processes: int | None = None,
) -> WindowSampler | MixedSampler:
    """Encode the `target` shards (and the `replay` shards when the share asks for replayed rows) into
    `tokens_dir` and sample `length`-token windows: `batch_size - replay_rows` target rows and `replay_rows`
    replayed rows in every batch, exactly."""
    rows = replay_rows(batch_size, replay_share)
    splits = {"domain": list(target)}
    if rows:
        if not replay:
            raise ValueError("a replay share > 0 needs shards to replay")
        splits["general"] = list(replay)
    encode_corpus(tokenizer, splits, tokens_dir, processes=processes)
    checksum = tokenizer_checksum(tokenizer)
    sampler = _sampler(tokens_dir, "domain", checksum, length, batch_size - rows, seed)
    if not rows:
        return sampler
    return MixedSampler(sampler, _sampler(tokens_dir, "general", checksum, length, rows, seed + 1))


def adapt(
    checkpoint_dir: Path,
    tokenizer_path: Path,
    domain_train: Path,
    domain_val: Path,
    general_val: Path,
    out_dir: Path,
    config: AdaptConfig,
    *,
    general_train: Path | None = None,
    probe_docs: Mapping[str, Sequence[str]] | None = None,
    work_dir: Path | None = None,
    processes: int | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> AdaptResult:
    """Adapt the checkpoint in `checkpoint_dir` (with the tokenizer at `tokenizer_path`) to the domain and
    write the adapted checkpoint folder to `out_dir`.

    `domain_train`, `domain_val`, `general_val` and `general_train` are folders of Parquet shards with `text`
    and `lang` columns (`domain_corpus/<domain>/{train,val}`, `balanced_shards/{train,val}`);
    `general_train` is needed for `config.replay_share` > 0. `probe_docs` maps every domain to texts for the
    domain probe (skipped when None). Token files are written under `work_dir` (a temporary folder when
    None), encoded with `processes` workers. `callbacks` get `on_step` from the training loop and `on_eval`
    (domain_ppl, domain_bpb, general_ppl, general_bpb, probe_accuracy) at step 0 and after training.
    """
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    model, _ = load_checkpoint(Path(checkpoint_dir), device)
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    domain_docs = list(read_docs(Path(domain_val)))
    general_docs = list(read_docs(Path(general_val)))
    domain_before, general_before, probe_before = _evaluate(model, sp, domain_docs, general_docs, probe_docs,
                                                            config)
    _report(callbacks, 0, domain_before, general_before, probe_before)

    with tempfile.TemporaryDirectory(prefix="adapt-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tokenizer = Path(tokenizer_path)
        vocab = None
        if config.strategy == "vocab_expansion":
            tokenizer = work / TOKENIZER_MODEL
            sp, vocab = _expand_vocabulary(model, sp, Path(tokenizer_path), tokenizer, Path(domain_train),
                                           [text for _, text in domain_docs], config)

        tuner, lora_spec, lr_scale, before_step = None, None, None, None
        if config.strategy == "lora":
            lora_spec = LoraSpec(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
            tuner = add_lora(model, lora_spec)
        elif config.strategy == "gradual_unfreezing":
            every = config.unfreeze_every or max(1, config.steps // (2 * len(layer_groups(model))))
            before_step = GradualUnfreezing(model, every)
        elif config.strategy == "discriminative_lr":
            lr_scale = discriminative_lr(model, config.layer_lr_decay)

        if replay_rows(config.batch_size, config.replay_share) and general_train is None:
            raise ValueError("replay_share > 0 needs general_train (balanced_shards/train)")
        objective = model_objective(model, sp, config.mlm_probability)
        replay = None if general_train is None else list_shards(Path(general_train))
        sampler = replay_sampler(
            tokenizer, list_shards(Path(domain_train)), replay, work / "tokens",
            objective.window_length(model.config.block_size), config.batch_size, config.replay_share, config.seed,
            processes=processes)

        trained = finetune(
            model, sampler, objective,
            loop_settings(config),
            lr_scale=lr_scale, before_step=before_step, callbacks=callbacks,
        )
        trainable, total = parameter_counts(model)
        domain_after, general_after, probe_after = _evaluate(model, sp, domain_docs, general_docs, probe_docs,
                                                             config)
        _report(callbacks, config.steps, domain_after, general_after, probe_after)

        out_dir = Path(out_dir)
        result = AdaptResult(
            strategy=config.strategy, checkpoint=out_dir,
            tokenizer=out_dir / TOKENIZER_MODEL if vocab is not None else Path(tokenizer_path),
            trainable_params=trainable, total_params=total,
            domain_before=domain_before, domain_after=domain_after, general_before=general_before,
            general_after=general_after, probe_before=probe_before, probe_after=probe_after,
            train={"steps": trained.steps, "final_loss": trained.final_loss, "tokens_per_s": trained.tokens_per_s,
                   "wall_s": trained.wall_s},
            wall_s=0.0, vocab=vocab, merged=None if tuner is None else config.merge, history=trained.history,
        )
        with staged_dir(out_dir) as stage:
            if tuner is not None and lora_spec is not None:
                if config.merge:
                    save_checkpoint(stage, merge_lora(tuner), model.config, None)
                else:
                    adapter = adapter_state(model)
                    save_checkpoint(stage, unload_lora(tuner), model.config, None)
                    save_adapter(stage, adapter, lora_spec)
            else:
                save_checkpoint(stage, model, model.config, None)
            if vocab is not None:
                shutil.copyfile(tokenizer, stage / TOKENIZER_MODEL)
            result.wall_s = time.perf_counter() - start
            payload = {**result.to_dict(), "config": config.to_dict()}
            (stage / RESULT_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return result


def _expand_vocabulary(
    model: nn.Module, sp: spm.SentencePieceProcessor, base_path: Path, out_path: Path, domain_train: Path,
    val_texts: list[str], config: AdaptConfig,
) -> tuple[spm.SentencePieceProcessor, dict[str, Any]]:
    """New pieces for the domain's terms, the model grown to match; returns the new tokenizer and a report."""
    if model.config.architecture == "encoder_decoder" and sp.id_to_piece(sp.piece_to_id(SENTINEL)) != SENTINEL:
        # Objective.for_model then takes the top ids as span sentinels: they would be the new terms.
        raise ValueError(f"vocabulary expansion of an encoder_decoder needs {SENTINEL!r}-style sentinel pieces "
                         "in the tokenizer; without them the new pieces would become span sentinels")
    train_texts = [text for _, text in read_docs(domain_train)]
    terms = find_terms(sp, train_texts, config.max_new_tokens, config.min_term_count, config.min_base_pieces,
                       config.domain_vocab_size)
    new_sp = extend_tokenizer(base_path, [t.piece for t in terms], out_path)
    grow_vocabulary(model, [t.base_ids for t in terms])
    report = {
        "base_vocab_size": sp.get_piece_size(), "vocab_size": new_sp.get_piece_size(), "new_tokens": len(terms),
        "tokens_per_word_before": tokens_per_word(sp, val_texts),
        "tokens_per_word_after": tokens_per_word(new_sp, val_texts),
        "terms": [{"piece": t.piece, "count": t.count, "base_pieces": len(t.base_ids)} for t in terms],
    }
    return new_sp, report


def _report(callbacks: Sequence[TrainingCallback], step: int, domain: dict[str, float], general: dict[str, float],
            probe: float | None) -> None:
    metrics = {"domain_ppl": domain["val_ppl"], "domain_bpb": domain["val_bpb"], "general_ppl": general["val_ppl"],
               "general_bpb": general["val_bpb"]}
    if probe is not None:
        metrics["probe_accuracy"] = probe
    for cb in callbacks:
        cb.on_eval(step, metrics)
