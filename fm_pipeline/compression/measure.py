"""What every candidate is judged on: bytes on disk, stored weights, perplexity and bits per byte on domain
and general validation text, and CPU generation speed (latency per token at batch 1, tokens per second at
batch 8) under a fixed thread count.

Speed is timed in rounds that visit every candidate in turn, and each candidate's median round is kept: a
burst of load from another process then slows one round of every candidate instead of one candidate's
whole measurement, so the ratios stay fair on a shared machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.compression.inference import compile_for_inference
from fm_pipeline.evaluation.perplexity import evaluate_texts


def folder_bytes(folder: Path) -> int:
    """Total size of the files of a model folder (weights, config, compression description)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def quality(
    model: nn.Module, sp: spm.SentencePieceProcessor, docs: Sequence[tuple[str, str]], max_docs: int | None = None
) -> dict[str, float]:
    """{"loss", "ppl", "bpb"} on (lang, text) documents, each scored whole in block-size windows."""
    metrics = evaluate_texts(model, sp, docs, max_docs=max_docs)
    return {"loss": metrics["val_loss"], "ppl": metrics["val_ppl"], "bpb": metrics.get("val_bpb", float("nan"))}


@contextmanager
def threads(n: int) -> Iterator[None]:
    """A fixed intra-op thread count for the duration (timings depend on it), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def time_generation(model: nn.Module, prompt: torch.Tensor, new_tokens: int, max_seconds: float) -> float:
    """Seconds per generated token (greedy, full-context forward per token, as `DecoderOnly.generate`), for
    the whole batch of prompts; stops early after `max_seconds`, so a very slow candidate costs bounded time."""
    idx, done, start = prompt, 0, time.perf_counter()
    chunk = max(1, new_tokens // 4)
    while done < new_tokens and (done == 0 or time.perf_counter() - start < max_seconds):
        step = min(chunk, new_tokens - done)
        idx = model.generate(idx, step, temperature=0.0)
        done += step
    return (time.perf_counter() - start) / done


def speed(
    models: dict[str, nn.Module], prompt_ids: Sequence[int], new_tokens: int = 32, rounds: int = 5, n_threads: int = 1,
    max_seconds: float = 5.0, batch_sizes: tuple[int, int] = (1, 8), compile: bool = False,
) -> dict[str, dict[str, float]]:
    """Per model: `latency_ms_per_token` at batch 1 and `throughput_tokens_per_s` at batch 8, medians over
    `rounds` interleaved rounds after one warmup pass each. `compile`: every model's generation step compiled by
    Inductor (`inference.compile_for_inference`), compiled in the warmup, outside the clock."""
    if compile:
        models = {name: compile_for_inference(model) for name, model in models.items()}
    single, batched = batch_sizes
    prompts = {b: torch.tensor([list(prompt_ids)] * b) for b in (single, batched)}
    samples: dict[str, dict[int, list[float]]] = {name: {single: [], batched: []} for name in models}
    with threads(n_threads):
        for model in models.values():
            model.eval()
            for prompt in prompts.values():
                time_generation(model, prompt, 2, max_seconds)
        for _ in range(rounds):
            for name, model in models.items():
                for b, prompt in prompts.items():
                    samples[name][b].append(time_generation(model, prompt, new_tokens, max_seconds))
    return {name: {"latency_ms_per_token": 1000 * statistics.median(s[single]),
                   "throughput_tokens_per_s": batched / statistics.median(s[batched])}
            for name, s in samples.items()}
