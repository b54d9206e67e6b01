"""A Switch-style sparse model against the dense one at equal compute. Prints JSON.

    python -m benchmarks.moe [--experts 4] [--steps 600] [--threads 2] [--device auto] [--corpora DIR]

Both are decoder_only at nanoGPT's CPU shape (4 layers, 4 heads, 128 wide, context 64, batch 12) on characters,
as nanoGPT's shakespeare_char: tinyshakespeare from `--corpora` (FM_SHARED_CORPORA) when it holds it, else the
packaged English sample books; the first 90% trains, the rest validates. Equal compute (the models come from
`fm_pipeline.training.equal_compute.variant_model`, as pretrained_checkpoint's `compare` builds them): each sparse
block's experts are dense-MLP sized and a token uses one (top-1), so the active parameters per token differ from
the dense model's only by the routers; both see the same batches (same seed) for the same steps, with the same
AdamW, schedule and initialisation seed. Steps alternate dense, sparse, dense, ..., each timed on its own, so
load from other processes on the host falls on both alike; tokens/s is the median of 5 windows of consecutive
steps (the first window includes warmup).

Reported per model: val loss (nats per character, eval mode, the same `--val-batches` fixed windows), train
loss, tokens/s (median over 5 windows of consecutive steps), parameters total and active, training FLOPs per
token, and for the sparse model its routing on the validation windows: per-layer share of tokens per expert, the
load-balancing loss (1 = balanced) and, from the last training step, the fraction of tokens dropped over capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.train import benchmark_text
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import LanguageModel, build_model
from fm_pipeline.training.equal_compute import DENSE, MOE_PREFIX, size_columns, variant_model
from fm_pipeline.training.optim import build_optimizer, build_scheduler
from tools.corpora import SHARED_CORPORA

SHAPE = {"n_layer": 4, "n_head": 4, "d_model": 128, "block_size": 64}
BATCH_SIZE = 12
LR, MIN_LR, WARMUP, WEIGHT_DECAY, BETAS = 1e-3, 1e-4, 50, 0.1, (0.9, 0.95)
WINDOWS = 5
SEED = 1337


def char_ids(text: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(train ids, val ids, vocabulary size): characters numbered in sorted order, split 90/10."""
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    split = int(len(ids) * 0.9)
    return ids[:split], ids[split:], len(chars)


def windows(ids: torch.Tensor, count: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(count, length + 1) windows at random starts: inputs and next-character targets."""
    starts = torch.randint(len(ids) - length - 1, (count,), generator=generator)
    return torch.stack([ids[s : s + length + 1] for s in starts.tolist()])


@torch.no_grad()
def evaluate(model: LanguageModel, val: torch.Tensor, device: torch.device) -> dict[str, Any]:
    """Mean val loss over the fixed windows, and for a sparse model the routing they got."""
    model.eval()
    losses, loads, aux = [], [], []
    for batch in val:
        batch = batch.to(device)
        logits, _ = model(batch[:, :-1])
        losses.append(float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())))
        if model.moe_layers():
            loads.append(torch.stack([m.load for m in model.moe_layers()]))
            aux.append(model.moe_metrics()["moe_aux_loss"])
    model.train()
    out: dict[str, Any] = {"val_loss": round(statistics.fmean(losses), 4)}
    if loads:
        load = torch.stack(loads).mean(dim=0)
        out["expert_load"] = [[round(float(x), 3) for x in layer] for layer in load]
        out["val_balance_loss"] = round(statistics.fmean(aux), 4)
    return out


def run(experts: int, steps: int, device: torch.device, val_batches: int, text: str) -> dict[str, Any]:
    train_ids, val_ids, vocab = char_ids(text)
    base = ModelConfig(vocab_size=vocab, **SHAPE)
    configs = {name: variant_model(base, name) for name in (DENSE, f"{MOE_PREFIX}{experts}")}
    data = torch.Generator().manual_seed(SEED)
    train_batches = [windows(train_ids, BATCH_SIZE, SHAPE["block_size"], data) for _ in range(steps)]
    val = [windows(val_ids, BATCH_SIZE, SHAPE["block_size"], data) for _ in range(val_batches)]
    models, optimizers, schedulers = {}, {}, {}
    for name, config in configs.items():
        torch.manual_seed(SEED)
        models[name] = build_model(config).to(device).train()
        optimizers[name] = build_optimizer(models[name], LR, WEIGHT_DECAY, BETAS, device.type)
        schedulers[name] = build_scheduler(optimizers[name], WARMUP, steps, LR, MIN_LR)
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    losses: dict[str, float] = {}
    dropped: dict[str, float] = {}
    for batch in train_batches:
        batch = batch.to(device)
        for name, model in models.items():  # interleaved, so both see the same load on the host
            start = time.perf_counter()
            _, loss = model(batch[:, :-1], batch[:, 1:])
            loss.backward()
            optimizers[name].step()
            schedulers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
            losses[name] = float(loss.detach())
            dropped[name] = model.moe_metrics().get("moe_dropped", 0.0)
    tokens = BATCH_SIZE * SHAPE["block_size"]
    rows = []
    for name, config in configs.items():
        chunk = len(seconds[name]) // WINDOWS
        per_window = [seconds[name][i * chunk : (i + 1) * chunk] for i in range(WINDOWS)]
        rate = statistics.median(len(w) * tokens / sum(w) for w in per_window)
        row = {"model": name, **size_columns(config), "steps": steps, "tokens_seen": steps * tokens,
               "tokens_per_s": round(rate),
               "train_loss_last_step": round(losses[name], 4), **evaluate(models[name], val, device)}
        if config.moe_experts:
            row["train_dropped_last_step"] = round(dropped[name], 4)
        rows.append(row)
    dense, sparse = rows
    return {"rows": rows, "val_loss_sparse_minus_dense": round(sparse["val_loss"] - dense["val_loss"], 4),
            "speed_sparse_over_dense": round(sparse["tokens_per_s"] / dense["tokens_per_s"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--val-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    text, source = benchmark_text(args.corpora)
    load = [round(x, 2) for x in os.getloadavg()]  # the host's 1/5/15-minute load, before and after
    result = run(args.experts, args.steps, device, args.val_batches, text)
    load += [round(x, 2) for x in os.getloadavg()]
    print(json.dumps({"text": source, "characters": len(text), "device": str(device), "threads": args.threads,
                      "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                      "load_average": load, "shape": {**SHAPE, "batch_size": BATCH_SIZE}, **result}, indent=2))


if __name__ == "__main__":
    main()
