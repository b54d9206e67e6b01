"""Training throughput of the three architectures: tokens per second through forward, backward and an AdamW
step, at nanoGPT's CPU shape (4 layers, 4 heads, 128 wide, 64 context, batch 12, the 65-token vocabulary of
shakespeare_char by default) and a larger one (6 layers, 6 heads, 384 wide, 256 context, batch 8). On CPU in
fp32; on CUDA under bf16 autocast, with MFU = tokens/s × `sizing.flops_per_token` ÷ peak FLOP/s. Prints JSON.

    python -m benchmarks.train [--steps 300] [--max-seconds 60] [--vocab-size 65] [--device auto]
                              [--threads 2] [--peak-flops 989e12] [--shapes small large] [--styles llama gpt2]
                              [--nanogpt DIR] [--corpora DIR] [--compile]

Each shape runs our model in two styles, labelled by `model`: `ours_llama_style` (RoPE, RMSNorm, the project's
default) and `ours_gpt2_style` (learned positions, LayerNorm: nanoGPT's layout, built by our code).

`--nanogpt DIR` adds two rows from a nanoGPT checkout the user points at (nothing of it is copied here), both
decoder_only at the same shape, dropout 0, no biases:

- `nanogpt_model_in_our_loop`: `GPT` and `GPTConfig` imported from DIR/model.py, with its own
  `configure_optimizers` at our learning rate, weight decay and betas, in the same timed loop on the same
  batches as our models, so the rates differ by the model and optimizer alone.
- `nanogpt_train_py`: DIR/train.py itself, unmodified, run as a subprocess with its shakespeare_char config and
  its CPU recipe's overrides (`--device=cpu --compile=False --eval_iters=20 --log_interval=1 --dropout=0.0`)
  at the shape's sizes, on `--threads` threads (OMP_NUM_THREADS). Its data files
  (`data/shakespeare_char/{train,val}.bin`, `meta.pkl`) are written as its prepare.py writes them, from
  tinyshakespeare (`--corpora`/books/tinyshakespeare.txt) or, without it, the packaged English sample books,
  into a temporary folder that is its working directory (with a link to its configurator.py, which it reads
  from there) and `--out_dir`; it evaluates at iteration 0 only and saves nothing. On CUDA it gets
  `--device=cuda --dtype=bfloat16`, and `--compile=True` with `--compile`. It is stopped once its timed
  iterations add up to `--max-seconds`. Its own loop is timed: sampling from the memmap, gradient clipping
  and its logging included. Its "iter N: ... time Y ms" lines give seconds per
  iteration; warmup iterations are skipped and tokens/s is batch × block ÷ the median iteration
  (`tokens_per_s_windowed`: the median of 5 windows of consecutive iterations, as ours are timed).

`ratios` divides the rates within each shape: ours against both nanoGPT rows, and nanoGPT's model in our loop
against its own train.py.

A token is a position the model runs over: source plus target positions for encoder_decoder. Batches are made
by `objectives.make_batch` before the clock starts, so only the model's training step is timed; each timing
runs `--steps` steps after a warmup, in 5 windows each cut short at a fifth of `--max-seconds`, and reports the
median window's rate.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import pickle
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fm_pipeline
from fm_pipeline.modeling.config import ARCHITECTURES, ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import make_batch, span_counts, window_length
from fm_pipeline.modeling.sizing import flops_per_token
from fm_pipeline.training.optim import build_optimizer
from tools.corpora import SHARED_CORPORA

SHAPES: dict[str, dict[str, int]] = {
    "small": {"n_layer": 4, "n_head": 4, "d_model": 128, "block_size": 64, "batch_size": 12},
    "large": {"n_layer": 6, "n_head": 6, "d_model": 384, "block_size": 256, "batch_size": 8},
    # GPT-2 small, for the MFU target on one H100 (run it with --shapes gpt2 on a GPU only)
    "gpt2": {"n_layer": 12, "n_head": 12, "d_model": 768, "block_size": 1024, "batch_size": 16},
}
# The project's default blocks (RoPE, RMSNorm), and nanoGPT's layout (learned positions, LayerNorm without bias)
# built by our code; `--nanogpt` times nanoGPT's own model.
STYLES: dict[str, dict[str, str]] = {
    "llama": {"positions": "rope", "norm": "rmsnorm"},
    "gpt2": {"positions": "learned", "norm": "layernorm"},
}
H100_BF16_DENSE = 989e12
SMALL_DECODER_TARGET = 15_000  # tokens/s on 2 CPU cores, from the issue
WARMUP_STEPS = 10
BATCH_POOL = 8  # distinct batches cycled through, so the data is not one repeated batch
WINDOWS = 5
LEARNING_RATE, WEIGHT_DECAY, BETAS = 1e-4, 0.1, (0.9, 0.95)
SAMPLE_BOOKS = Path(fm_pipeline.__file__).parent / "sample_data" / "raw" / "books" / "en"
NANOGPT_CONFIG = Path("config") / "train_shakespeare_char.py"
# what nanoGPT's train.py prints per iteration with --log_interval=1; mfu is -100.00% until it has settled
ITER_LINE = re.compile(r"^iter (\d+): loss (\S+), time ([\d.]+)ms, mfu (-?[\d.]+)%$", re.MULTILINE)


def _batches(config: ModelConfig, batch_size: int, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Random token windows turned into the architecture's inputs (ids 0-4 special, sentinels at the top)."""
    generator = torch.Generator().manual_seed(0)
    length = window_length(config.architecture, config.block_size)
    _, spans = span_counts(config.block_size)
    sentinels = list(range(config.vocab_size - 1, config.vocab_size - 1 - spans, -1))
    batches = []
    for _ in range(BATCH_POOL):
        windows = torch.randint(5, sentinels[-1], (batch_size, length), generator=generator)
        batch = make_batch(config.architecture, windows, vocab_size=config.vocab_size, special_ids=range(5),
                           sentinel_ids=sentinels, generator=generator)
        batches.append({k: v.contiguous().to(device) for k, v in batch.items()})  # as a data loader gives them
    return batches


def _timed(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list[dict[str, torch.Tensor]],
           device: torch.device, steps: int, max_seconds: float, compile: bool = False) -> dict[str, Any]:
    """Warmup, then `steps` training steps in WINDOWS windows; the median window's tokens/s. With `compile`, the
    model's forward runs through `torch.compile`, as the training loop's `compile: true` does, and the warmup
    steps pay for the compilation."""
    if compile:
        model = torch.compile(model)
    tokens_per_step = sum(v.numel() for k, v in batches[0].items() if k != "targets")
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def step(i: int) -> torch.Tensor:
        with autocast:
            _, loss = model(**batches[i % BATCH_POOL])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(WARMUP_STEPS):
        step(i)
    sync()
    # Timed in windows: the median window's rate shrugs off a burst of work from another process on the host.
    rates, done, start = [], 0, time.perf_counter()
    for _ in range(WINDOWS):
        window_start, window_steps = time.perf_counter(), 0
        while window_steps < max(1, steps // WINDOWS) and time.perf_counter() - window_start < max_seconds / WINDOWS:
            loss = step(done)
            done, window_steps = done + 1, window_steps + 1
        sync()
        rates.append(window_steps * tokens_per_step / (time.perf_counter() - window_start))
    return {
        "steps": done,
        "seconds": round(time.perf_counter() - start, 2),
        "tokens_per_step": tokens_per_step,
        "tokens_per_s": round(statistics.median(rates)),
        "tokens_per_s_best_window": round(max(rates)),
        "final_loss": round(loss.item(), 4),
        "compiled": compile,
    }


def _config(architecture: str, shape: dict[str, int], vocab_size: int, style: str) -> ModelConfig:
    fields = {k: v for k, v in shape.items() if k != "batch_size"}
    return ModelConfig(architecture=architecture, vocab_size=vocab_size, **fields, **STYLES[style])


def _row(label: str, config: ModelConfig, shape: dict[str, int], parameters: int | None,
         timed: dict[str, Any]) -> dict:
    return {
        "model": label,
        "architecture": config.architecture,
        **shape,
        **({"parameters": parameters} if parameters is not None else {}),
        **timed,
        "flops_per_token": flops_per_token(config),
        "achieved_flops_per_s": timed["tokens_per_s"] * flops_per_token(config),
    }


def measure(
    architecture: str, shape: dict[str, int], vocab_size: int, device: torch.device, steps: int, max_seconds: float,
    style: str = "llama", compile: bool = False,
) -> dict[str, Any]:
    """Time training steps of a freshly initialised model of ours on `device`, with the training loop's
    optimizer."""
    torch.manual_seed(0)
    config = _config(architecture, shape, vocab_size, style)
    model = build_model(config).to(device).train()
    optimizer = build_optimizer(model, LEARNING_RATE, WEIGHT_DECAY, BETAS, device.type)
    timed = _timed(model, optimizer, _batches(config, shape["batch_size"], device), device, steps, max_seconds,
                   compile)
    return _row(f"ours_{style}_style", config, shape, model.num_parameters(non_embedding=False), timed)


def load_nanogpt(checkout: Path) -> tuple[Callable[..., Any], Callable[..., torch.nn.Module]]:
    """(GPTConfig, GPT) from `checkout`/model.py, imported from that file in place (no __pycache__ left
    there)."""
    path = Path(checkout) / "model.py"
    if not path.is_file():
        raise FileNotFoundError(f"no nanoGPT model.py in {checkout}")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module.GPTConfig, module.GPT


def measure_nanogpt(
    checkout: Path, shape: dict[str, int], vocab_size: int, device: torch.device, steps: int, max_seconds: float,
    compile: bool = False,
) -> dict[str, Any]:
    """nanoGPT's GPT at `shape`, fed the batches our decoder_only model gets, in the same timed loop."""
    gpt_config, gpt = load_nanogpt(checkout)
    torch.manual_seed(0)
    config = _config("decoder_only", shape, vocab_size, "gpt2")
    with contextlib.redirect_stdout(sys.stderr):  # nanoGPT prints as it builds; stdout carries the JSON
        model = gpt(gpt_config(n_layer=config.n_layer, n_head=config.n_head, n_embd=config.d_model,
                               block_size=config.block_size, vocab_size=vocab_size, dropout=0.0, bias=False))
        model = model.to(device).train()
        optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS, device.type)
    timed = _timed(model, optimizer, _batches(config, shape["batch_size"], device), device, steps, max_seconds,
                   compile)
    return _row("nanogpt_model_in_our_loop", config, shape, model.get_num_params(non_embedding=False), timed)


def parse_iterations(log: str) -> list[dict[str, float]]:
    """Iteration number, loss and seconds of each "iter N: loss X, time Y ms, mfu Z%" line of nanoGPT's
    train.py."""
    return [{"iter": int(n), "loss": float(loss), "seconds": float(ms) / 1000}
            for n, loss, ms, _ in ITER_LINE.findall(log)]


def windowed_rate(seconds: list[float], tokens_per_step: int) -> int:
    """Tokens/s of the median of WINDOWS runs of consecutive iterations, as our rows are timed: comparable
    with them where the median iteration, which a burst of load on the host barely moves, is not."""
    windows = [w for w in np.array_split(np.array(seconds), WINDOWS) if len(w)]
    return round(statistics.median(len(w) * tokens_per_step / w.sum() for w in windows))


def benchmark_text(corpora: Path) -> tuple[str, str]:
    """(text, where it came from): tinyshakespeare, nanoGPT's shakespeare_char text, when the corpora hold it,
    else the packaged English sample books."""
    book = corpora / "books" / "tinyshakespeare.txt"
    if book.is_file():
        return book.read_text(encoding="utf-8"), "tinyshakespeare.txt"
    return "".join(p.read_text(encoding="utf-8") for p in sorted(SAMPLE_BOOKS.iterdir())), "sample books (en)"


def write_char_dataset(text: str, folder: Path) -> int:
    """train.bin and val.bin (uint16 character ids, the first 90% and the rest) and meta.pkl (vocab_size, itos,
    stoi), as nanoGPT's data/shakespeare_char/prepare.py writes them; returns the vocabulary size."""
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([stoi[ch] for ch in text], dtype=np.uint16)
    split = int(len(ids) * 0.9)
    folder.mkdir(parents=True, exist_ok=True)
    ids[:split].tofile(folder / "train.bin")
    ids[split:].tofile(folder / "val.bin")
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)
    return len(chars)


def _follow(command: list[str], cwd: Path, env: dict[str, str], max_seconds: float) -> tuple[str, int, bool]:
    """Run `command`, reading its output as it comes; stop it once the iterations past warmup add up to
    `max_seconds`. (output, return code, whether it was stopped here)."""
    lines, timed_seconds = [], 0.0
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            timed_seconds += sum(it["seconds"] for it in parse_iterations(line) if it["iter"] >= WARMUP_STEPS)
            if timed_seconds >= max_seconds:
                process.terminate()
                return "".join(lines), process.wait(), True
    return "".join(lines), process.returncode, False


def measure_nanogpt_train(
    checkout: Path, shape: dict[str, int], device: torch.device, steps: int, max_seconds: float,
    text: tuple[str, str], compile: bool = False,
) -> dict[str, Any]:
    """nanoGPT's own train.py, unmodified, at `shape` on `text`, in a temporary working directory; its
    per-iteration times after WARMUP_STEPS iterations."""
    checkout = Path(checkout).resolve()
    for name in ("train.py", "configurator.py", NANOGPT_CONFIG):
        if not (checkout / name).is_file():
            raise FileNotFoundError(f"no nanoGPT {name} in {checkout}")
    iterations = WARMUP_STEPS + steps
    with tempfile.TemporaryDirectory(prefix="nanogpt-train-") as tmp:
        work = Path(tmp)
        vocab_size = write_char_dataset(text[0], work / "data" / "shakespeare_char")
        (work / "configurator.py").symlink_to(checkout / "configurator.py")  # train.py execs it from its cwd
        command = [
            sys.executable, str(checkout / "train.py"), str(checkout / NANOGPT_CONFIG),
            f"--device={device.type}", f"--compile={compile}", "--eval_iters=20", "--log_interval=1",
            f"--block_size={shape['block_size']}", f"--batch_size={shape['batch_size']}",
            f"--n_layer={shape['n_layer']}", f"--n_head={shape['n_head']}", f"--n_embd={shape['d_model']}",
            f"--max_iters={iterations - 1}", f"--lr_decay_iters={iterations - 1}", "--dropout=0.0",
            f"--out_dir={work / 'out'}", "--always_save_checkpoint=False",
            f"--eval_interval={iterations}",  # it evaluates at iteration 0 only, a warmup iteration
            *(["--dtype=bfloat16"] if device.type == "cuda" else []),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONUNBUFFERED": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}  # no __pycache__ in the checkout
        log, returncode, stopped = _follow(command, work, env, max_seconds)
    timed = [it for it in parse_iterations(log) if it["iter"] >= WARMUP_STEPS]
    if (returncode != 0 and not stopped) or not timed:
        sys.stderr.write(log)
        raise RuntimeError(f"nanoGPT's train.py exited with {returncode} after {len(timed)} timed iterations")
    tokens_per_step = shape["batch_size"] * shape["block_size"]
    seconds = [it["seconds"] for it in timed]
    config = _config("decoder_only", shape, vocab_size, "gpt2")
    return {**_row("nanogpt_train_py", config, shape, None, {
        "steps": len(timed),
        "seconds": round(sum(seconds), 2),
        "tokens_per_step": tokens_per_step,
        "tokens_per_s": round(tokens_per_step / statistics.median(seconds)),
        "tokens_per_s_mean": round(len(seconds) * tokens_per_step / sum(seconds)),
        "tokens_per_s_windowed": windowed_rate(seconds, tokens_per_step),
        "final_loss": timed[-1]["loss"],
        "compiled": compile,
    }), "vocab_size": vocab_size, "text": text[1]}


def ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per shape, decoder_only tokens/s of each of ours over each nanoGPT row, and of nanoGPT's model in our
    loop over its own train.py."""
    out = {}
    for shape in dict.fromkeys(r["shape"] for r in results):
        rate = {r["model"]: r["tokens_per_s"] for r in results
                if r["shape"] == shape and r["architecture"] == "decoder_only"}
        peers = [m for m in ("nanogpt_model_in_our_loop", "nanogpt_train_py") if m in rate]
        pairs = [(m, p) for m in rate if m.startswith("ours_") for p in peers]
        if len(peers) == 2:
            pairs.append((peers[0], peers[1]))
        if pairs:
            out[shape] = {f"{a} / {b}": round(rate[a] / rate[b], 3) for a, b in pairs}
    return out


def rows(shapes: list[str], architectures: list[str], styles: list[str], vocab_size: int, device: torch.device,
         steps: int, max_seconds: float, nanogpt: Path | None = None, compile: bool = False,
         corpora: Path = SHARED_CORPORA) -> list[dict[str, Any]]:
    """One timed row per shape, architecture and style of ours, then nanoGPT's two per shape when given."""
    results = []
    text = benchmark_text(corpora) if nanogpt else ("", "")
    for shape_name in shapes:
        shape = SHAPES[shape_name]
        for architecture in architectures:
            for style in styles:
                results.append({"shape": shape_name,
                                **measure(architecture, shape, vocab_size, device, steps, max_seconds, style,
                                          compile)})
        if nanogpt:
            results.append({"shape": shape_name,
                            **measure_nanogpt(nanogpt, shape, vocab_size, device, steps, max_seconds, compile)})
            results.append({"shape": shape_name,
                            **measure_nanogpt_train(nanogpt, shape, device, steps, max_seconds, text, compile)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap on each timing, warmup excluded")
    parser.add_argument("--vocab-size", type=int, default=65)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--peak-flops", type=float, default=None,
                        help=f"peak FLOP/s for MFU (default on CUDA: {H100_BF16_DENSE:g}, H100 bf16 dense)")
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=["small", "large"])
    parser.add_argument("--architectures", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES))
    parser.add_argument("--styles", nargs="+", choices=sorted(STYLES), default=sorted(STYLES))
    parser.add_argument("--nanogpt", type=Path, metavar="DIR",
                        help="a nanoGPT checkout: time its model.py in our loop, and its train.py")
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA,
                        help="where books/tinyshakespeare.txt, the text for nanoGPT's train.py, is looked for")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (as nanoGPT's train.py does)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    peak = args.peak_flops or (H100_BF16_DENSE if device.type == "cuda" else None)
    results = rows(args.shapes, args.architectures, args.styles, args.vocab_size, device, args.steps,
                   args.max_seconds, args.nanogpt, args.compile, args.corpora)
    for result in results:
        if peak:
            result["mfu"] = round(result["achieved_flops_per_s"] / peak, 4)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": "bfloat16 autocast" if device.type == "cuda" else "float32",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "vocab_size": args.vocab_size,
        "peak_flops": peak,
        "results": results,
        "ratios": ratios(results),
    }
    small_decoder = {r["model"]: r["tokens_per_s"] for r in results if r["shape"] == "small"
                     and r["architecture"] == "decoder_only" and r["model"].startswith("ours_")}
    if device.type == "cpu" and small_decoder:
        met = {f"met_{model}": rate >= SMALL_DECODER_TARGET for model, rate in small_decoder.items()}
        report["cpu_target"] = {"small_decoder_only_tokens_per_s": SMALL_DECODER_TARGET, **met}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
