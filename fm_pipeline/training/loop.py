"""One training loop for all three objectives: `train(config, callbacks) -> TrainResult`.

AdamW + cosine schedule with warmup, gradient accumulation and clipping, bf16 autocast on CUDA (fp32 on CPU),
optional `torch.compile`, and DDP when launched by torchrun. A checkpoint holds everything that decides the
next step (weights, optimizer, scheduler, step, every rank's RNG and data position) and the history logged so
far, so a resumed run continues exactly where the interrupted one stopped and reports the whole run. Which
checkpoint to resume, if any, is decided by `training.resume`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from safetensors.torch import load_model
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fm_pipeline.evaluation.perplexity import evaluate_packed, evaluate_texts, flat_metrics
from fm_pipeline.lake.layout import TRAIN, VAL
from fm_pipeline.lake.parquet_io import read_docs
from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import Objective, fit_to_tokenizer
from fm_pipeline.modeling.sizing import config_from_budget, flops_per_token
from fm_pipeline.tokenization.packed import PackedTokens, header_path, tokenizer_checksum
from fm_pipeline.training import step_checkpoints as steps
from fm_pipeline.training.callbacks import RunInfo, TrainingCallback, TrainResult
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.distributed import (
    DistContext,
    broadcast_flag,
    broadcast_object,
    gather_to_all,
    init_distributed,
    mean_across_ranks,
    shutdown_distributed,
)
from fm_pipeline.training.optim import build_optimizer, build_scheduler
from fm_pipeline.training.resume import find_resume_point, run_identity

TRAIN_CONFIG = "train_config.json"

# Dense bf16 peak FLOP/s per GPU, for model FLOPs utilisation.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    """bf16 autocast on CUDA when asked; float32 on CPU, where bf16 autocast is much slower."""
    if device.type != "cuda":
        return torch.float32
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[config.dtype]


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for gpu, flops in PEAK_FLOPS.items() if gpu in name), None)


def resolve_model_config(config: TrainConfig, sp: spm.SentencePieceProcessor) -> ModelConfig:
    """The configured model (or the compute-optimal one for `budget`), fitted to the tokenizer."""
    model_config = config.model
    if config.budget:
        defaults = {"block_size": model_config.block_size, "architecture": model_config.architecture}
        model_config = config_from_budget(vocab_size=sp.get_piece_size(), **{**defaults, **config.budget})
    return fit_to_tokenizer(model_config, sp)


def train(config: TrainConfig, callbacks: Sequence[TrainingCallback] = ()) -> TrainResult:
    """Train (or resume) as `config` says. Under torchrun every rank calls this; only rank 0 writes
    checkpoints and calls `callbacks`."""
    device = resolve_device(config.device)
    ctx = init_distributed(device.type)
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    try:
        return _train(config, list(callbacks) if ctx.is_main else [], ctx, device)
    finally:
        shutdown_distributed(ctx)


def _train(
    config: TrainConfig, callbacks: list[TrainingCallback], ctx: DistContext, device: torch.device
) -> TrainResult:
    out_dir = Path(config.out_dir)
    states = steps.state_dir(out_dir)
    sp = spm.SentencePieceProcessor(model_file=str(config.tokenizer_path))
    checksum = tokenizer_checksum(Path(config.tokenizer_path))
    train_tokens = PackedTokens.open(Path(config.token_dir), TRAIN, expected_checksum=checksum)
    has_val = header_path(Path(config.token_dir), VAL).is_file()
    val_tokens = PackedTokens.open(Path(config.token_dir), VAL, expected_checksum=checksum) if has_val else None

    model_config = resolve_model_config(config, sp)
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    raw_model = build_model(model_config).to(device)
    torch.manual_seed(config.seed + ctx.rank)  # dropout differs between ranks
    objective = Objective.for_model(model_config, sp)
    sampler = WindowSampler(train_tokens, objective.window_length(model_config.block_size), config.batch_size,
                            config.seed, ctx.rank, ctx.world_size, config.packing)
    optimizer = build_optimizer(raw_model, config.lr, config.weight_decay, config.betas, device.type)
    scheduler = build_scheduler(optimizer, config.warmup_steps, config.steps, config.lr, config.min_lr)

    identity, resume_from, note = _decide_resume(config, checksum, ctx)
    step, tokens_seen, train_time, train_loss = 0, 0, 0.0, float("nan")
    history: list[dict[str, float]] = []
    if resume_from is not None:
        state = _restore(resume_from, raw_model, optimizer, scheduler, sampler, ctx, device)
        step, tokens_seen, train_time = int(state["step"]), int(state["tokens_seen"]), float(state["train_time"])
        train_loss, history = float(state["train_loss"]), list(state["history"])
    start_step = step

    model: nn.Module = torch.compile(raw_model) if config.compile else raw_model
    if ctx.enabled:
        model = DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)
    dtype = autocast_dtype(config, device)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()

    n_params = raw_model.num_parameters(non_embedding=False)
    info = RunInfo(config, model_config.to_dict(), n_params, checksum, str(device), ctx.world_size, start_step, note)
    for cb in callbacks:
        cb.on_train_start(info)

    tokens_per_step = config.batch_size * config.grad_accum * model_config.block_size * ctx.world_size
    peak = peak_flops(device)
    interval_time = 0.0
    interval_tokens = 0
    model.train()
    # A run resumed from its final checkpoint (all steps done, or the time budget spent) only evaluates and
    # publishes again.
    spent = step > 0 and config.max_seconds is not None and train_time >= config.max_seconds
    last_step = step >= config.steps or spent
    while not last_step:
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for micro in range(config.grad_accum):
            batch = objective.make_batch(sampler.next_batch(), sampler.generator)
            batch = {k: _to_device(v, device) for k, v in batch.items()}
            # DDP all-reduces gradients on the last micro-batch only.
            last = micro == config.grad_accum - 1
            with model.no_sync() if ctx.enabled and not last else nullcontext():
                with autocast:
                    _, loss = model(**batch)
                (loss / config.grad_accum).backward()
            loss_sum += loss.detach()
        max_norm = config.grad_clip if config.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), max_norm)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += tokens_per_step
        interval_tokens += tokens_per_step
        elapsed = time.perf_counter() - t0
        train_time, interval_time = train_time + elapsed, interval_time + elapsed
        # Every rank must agree on stopping early, so the time limit is judged on rank 0's clock.
        over_time = config.max_seconds is not None and broadcast_flag(ctx, train_time >= config.max_seconds, device)
        last_step = step >= config.steps or over_time

        if step % config.log_every == 0 or last_step:
            train_loss = mean_across_ranks(ctx, loss_sum.item() / config.grad_accum, device)
            metrics = {"loss": train_loss, "lr": lr, "grad_norm": grad_norm.item(),
                       "tokens_per_s": interval_tokens / interval_time, **raw_model.moe_metrics()}
            if peak:
                metrics["mfu"] = flops_per_token(model_config) * metrics["tokens_per_s"] / ctx.world_size / peak
            history.append({"step": step, **metrics})
            for cb in callbacks:
                cb.on_step(step, metrics)
            interval_time, interval_tokens = 0.0, 0

        if ctx.is_main and val_tokens is not None and config.eval_every and step % config.eval_every == 0 \
                and not last_step:
            metrics = evaluate_packed(raw_model, val_tokens, objective, batch_size=config.batch_size,
                                      max_batches=config.eval_batches, autocast_dtype=dtype)
            for cb in callbacks:
                cb.on_eval(step, metrics)

        if step % config.checkpoint_every == 0 or last_step:
            progress = {"step": step, "tokens_seen": tokens_seen, "train_time": train_time, "train_loss": train_loss,
                        "history": history}
            _save(states, progress, identity, raw_model, model_config, optimizer, scheduler, sampler, config, ctx,
                  device, callbacks)

    eval_metrics: dict[str, Any] = {}
    if ctx.is_main:
        if config.val_docs_dir:
            eval_metrics = evaluate_texts(raw_model, sp, read_docs(Path(config.val_docs_dir)),
                                          max_docs_per_lang=config.eval_docs_per_lang, autocast_dtype=dtype,
                                          batch_size=config.batch_size)
        elif val_tokens is not None:
            eval_metrics = evaluate_packed(raw_model, val_tokens, objective, batch_size=config.batch_size,
                                           max_batches=config.eval_batches, autocast_dtype=dtype)
        for cb in callbacks:
            cb.on_eval(step, flat_metrics(eval_metrics))
        ckpt.publish(steps.step_folder(states, step), out_dir, {TRAIN_CONFIG: config.to_json_text().encode()})
    result = TrainResult(
        checkpoint=out_dir, step=step, train_loss=train_loss, eval_metrics=eval_metrics,
        tokens_per_s=tokens_seen / train_time if train_time else 0.0,  # the whole run's, across resumes
        n_params=n_params, tokens_seen=tokens_seen, history=history, resumed_from_step=start_step,
    )
    for cb in callbacks:
        cb.on_train_end(result)
    return result


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Pinned host memory lets the copy to the GPU overlap with compute."""
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


def _decide_resume(
    config: TrainConfig, checksum: str, ctx: DistContext,
) -> tuple[dict[str, Any] | None, Path | None, str]:
    """(run identity, checkpoint to resume or None, why), decided on rank 0 alone (it also clears a foreign
    state) and shared with every rank; a refusal (`resume="must"`) is raised on every rank."""
    decision: tuple[Any, ...]
    if ctx.is_main:
        try:
            identity = run_identity(config, checksum)
            point = find_resume_point(config, identity)
            decision = (identity, point.folder, point.note, None)
        except ValueError as exc:
            decision = (None, None, "", str(exc))
    else:
        decision = (None, None, "", None)
    identity, folder, note, error = broadcast_object(ctx, decision)
    if error:
        raise ValueError(error)
    return identity, folder, note


def _save(
    states: Path, progress: dict[str, Any], identity: dict[str, Any] | None, model: nn.Module,
    model_config: ModelConfig, optimizer: torch.optim.Optimizer, scheduler: Any, sampler: WindowSampler,
    config: TrainConfig, ctx: DistContext, device: torch.device, callbacks: list[TrainingCallback],
) -> None:
    """Every rank contributes its RNG and data position; rank 0 writes the folder, with the run's identity."""
    rank_state = {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "data": sampler.state_dict(),
    }
    ranks = gather_to_all(ctx, rank_state)
    if not ctx.is_main:
        return
    state = {
        **progress,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ranks": ranks,
        "train_config": config.to_dict(),
    }
    folder = ckpt.save_checkpoint(steps.step_folder(states, progress["step"]), model, model_config, state, identity)
    steps.prune_checkpoints(states, config.keep_checkpoints)
    for cb in callbacks:
        cb.on_checkpoint(folder)


def _restore(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, sampler: WindowSampler,
    ctx: DistContext, device: torch.device,
) -> dict[str, Any]:
    """Load a checkpoint into the live objects; returns its training state (step, tokens_seen, train_time,
    train_loss, history, ...)."""
    load_model(model, str(folder / ckpt.WEIGHTS), strict=True, device=str(device))
    state = ckpt.load_training_state(folder)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if len(state["ranks"]) == ctx.world_size:
        mine = state["ranks"][ctx.rank]
        sampler.load_state_dict(mine["data"])
        torch.set_rng_state(mine["torch_rng"])
        if mine["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda_rng"], device)
    else:
        warnings.warn(
            f"{folder} was written by {len(state['ranks'])} ranks, this run has {ctx.world_size}: the weights, "
            "optimizer and schedule resume exactly, the data order restarts from the seed",
            stacklevel=2,
        )
    return state
