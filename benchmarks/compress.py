"""Every compression technique on the sample model, side by side: size, weights, perplexity and bits per byte
(domain and general), CPU latency per token at batch 1 and throughput at batch 8, each as a ratio to the
uncompressed model, plus the distillation gap recovery and the issue's targets. Prints JSON.

`int8_speedup_by_width` times dynamic int8 against fp32 on untrained models of the sample model's depth, vocabulary
and context at growing widths: the share of time in matrix products, the part int8 speeds up, grows with width
(norms, attention and the per-operator overhead do not shrink).

`--compile` times every candidate compiled by Inductor (`compression.inference`), and the width sweep then runs
torchao's int8 kernels, which Inductor turns into int8 micro-kernels on CPUs with AMX or VNNI.

    python -m benchmarks.compress [--home $FM_PIPELINE_HOME] [--domain biomedical] [--profile cpu_small]
                                  [--techniques dynamic_int8 ...] [--threads 1] [--out DIR] [--compile]
                                  [--set distill_steps=100 ...] [--no-width-sweep]

Reads the lake `make run` builds: `domain_adapted_checkpoint/<domain>` when present, else
`pretrained_checkpoint`; the tokenizer; `tokenized_corpus` (fine-tuning text); `balanced_shards/val` (general
validation); `domain_corpus/<domain>/train` when present (the text structured pruning's budget is measured on).
Domain validation text is `domain_corpus/<domain>/val` when present, else the sample domain corpus
shipped in the package. Runs the profile's techniques (`--profile thorough`: every one, torchao's dynamic int8
included) and prints which one the selection rule publishes, and why.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import fm_pipeline
from fm_pipeline.compression.compress import CompressResult, compress
from fm_pipeline.compression.config import TECHNIQUES, CompressConfig
from fm_pipeline.compression.measure import speed
from fm_pipeline.compression.quantize import quantize_dynamic_int8, resolve_backend
from fm_pipeline.lake.parquet_io import list_shards, read_docs
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline.modeling.models import build_model

SAMPLE_DOMAINS = Path(fm_pipeline.__file__).parent / "sample_data" / "domain"
INT8_TARGETS = {"size_ratio": ("<=", 0.30), "domain_ppl_ratio": ("<=", 1.01), "speedup": (">=", 1.3)}
TARGETS = {
    "dynamic_int8": INT8_TARGETS,
    "dynamic_int8_torchao": INT8_TARGETS,
    "prune_int8": {"domain_ppl_ratio": ("<=", 1.02), "speedup": (">=", 1.3)},
    "distill": {"distill/gap_recovery": (">=", 0.90)},
}


def domain_docs(lake: Path, domain: str) -> tuple[list[tuple[str, str]], str]:
    """(lang, text) validation documents of a domain, and where they came from."""
    val = lake / "domain_corpus" / domain / "val"
    if val.is_dir() and list_shards(val):
        return list(read_docs(val)), str(val)
    docs = []
    for path in sorted((SAMPLE_DOMAINS / domain).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                docs.append((row.get("lang", "en"), row["text"]))
    return docs, str(SAMPLE_DOMAINS / domain)


def check(metrics: dict[str, float], targets: dict[str, tuple[str, float]]) -> dict[str, Any]:
    out = {}
    for key, (op, bound) in targets.items():
        value = metrics.get(key)
        met = value is not None and (value <= bound if op == "<=" else value >= bound)
        out[key] = {"value": value, "target": f"{op} {bound}", "met": met}
    return out


def summary(result: CompressResult) -> list[dict[str, Any]]:
    rows = []
    for c in result.candidates:
        m = c.metrics
        rows.append({
            "technique": c.name,
            "size_bytes": m["size_bytes"], "size_ratio": round(m["size_ratio"], 4),
            "params": m["params"], "params_ratio": round(m["params_ratio"], 4),
            "domain_ppl": round(m["domain_ppl"], 3), "domain_ppl_ratio": round(m["domain_ppl_ratio"], 4),
            "domain_bpb": round(m["domain_bpb"], 4),
            "general_ppl": round(m["general_ppl"], 3), "general_ppl_ratio": round(m["general_ppl_ratio"], 4),
            "general_bpb": round(m["general_bpb"], 4),
            "latency_ms_per_token_b1": round(m["latency_ms_per_token"], 3), "speedup_b1": round(m["speedup"], 3),
            "throughput_tokens_per_s_b8": round(m["throughput_tokens_per_s"], 1),
            "throughput_ratio_b8": round(m["throughput_ratio"], 3),
            "build_seconds": round(m["build_seconds"], 1),
        })
    return rows


WIDTHS = ((128, 4), (256, 4), (384, 6))
"""(d_model, heads) of the width sweep."""


def int8_speedup_by_width(checkpoint: Path, config: CompressConfig) -> list[dict[str, Any]]:
    """fp32 and dynamic int8 latency per token (batch 1) and throughput (batch 8) of untrained models shaped like
    the checkpoint but wider, timed as the candidates are."""
    _, base = load_checkpoint(checkpoint)
    prompt = list(range(5, 5 + config.prompt_tokens))
    rows = []
    for width, heads in WIDTHS:
        torch.manual_seed(config.seed)
        shape = base.from_dict({**base.to_dict(), "d_model": width, "n_head": heads, "n_kv_head": None,
                                "d_ff": None})
        model = build_model(shape).eval()
        quantized = quantize_dynamic_int8(model, resolve_backend("auto", compiled=config.compile))
        timed = speed({"fp32": model, "dynamic_int8": quantized}, prompt, config.new_tokens, config.timing_rounds,
                      config.threads, config.timing_max_seconds, compile=config.compile)
        fp32, int8 = timed["fp32"], timed["dynamic_int8"]
        rows.append({"d_model": width, "n_layer": shape.n_layer, "params": model.num_parameters(False),
                     "fp32_ms_per_token_b1": round(fp32["latency_ms_per_token"], 3),
                     "int8_ms_per_token_b1": round(int8["latency_ms_per_token"], 3),
                     "speedup_b1": round(fp32["latency_ms_per_token"] / int8["latency_ms_per_token"], 3),
                     "throughput_ratio_b8": round(int8["throughput_tokens_per_s"]
                                                  / fp32["throughput_tokens_per_s"], 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("FM_PIPELINE_HOME", ".fm_pipeline")))
    parser.add_argument("--domain", default="biomedical")
    parser.add_argument("--profile", default="cpu_small")
    parser.add_argument("--techniques", nargs="+", default=None, choices=TECHNIQUES,
                        help="default: the profile's (`thorough`: every technique)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads while evaluating and timing")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (default: the profile's)")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="CompressConfig fields over the profile's, e.g. distill_steps=100 (JSON values)")
    parser.add_argument("--no-width-sweep", action="store_true", help="skip `int8_speedup_by_width`")
    parser.add_argument("--out", type=Path, default=None, help="where to write the output (default: a temp dir)")
    parser.add_argument("--compile", action="store_true",
                        help="time generation compiled by Inductor (dynamic int8 then runs on torchao's kernels)")
    args = parser.parse_args()

    lake = args.home / "lake"
    adapted = lake / "domain_adapted_checkpoint" / args.domain
    checkpoint = adapted if (adapted / "model.safetensors").is_file() else lake / "pretrained_checkpoint"
    domain, domain_source = domain_docs(lake, args.domain)
    general = list(read_docs(lake / "balanced_shards" / "val"))
    train = lake / "domain_corpus" / args.domain / "train"  # pruning's budget text, as the asset passes it
    calibration = list(read_docs(train)) if train.is_dir() and list_shards(train) else []
    overrides: dict[str, Any] = {"threads": args.threads}
    if args.techniques:
        overrides["techniques"] = tuple(args.techniques)
    if args.compile:
        overrides["compile"] = True
    if args.rounds:
        overrides["timing_rounds"] = args.rounds
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    config = CompressConfig.profile(args.profile, **overrides)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "compressed_model"
        result = compress(checkpoint, lake / "tokenizer" / "tokenizer.model", lake / "tokenized_corpus", domain,
                          general, config, out, log=lambda msg: print(msg, file=sys.stderr, flush=True),
                          calibration_docs=calibration)
    by_name = {c.name: c.metrics for c in result.candidates}
    targets = {name: check(by_name[name], t) for name, t in TARGETS.items() if name in by_name}
    print(json.dumps({
        "device": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": args.threads,
        "checkpoint": str(checkpoint),
        "domain_val": domain_source,
        "domain_docs": len(domain),
        "general_docs": len(general),
        "calibration_docs": len(calibration),
        "profile": args.profile,
        "config": config.to_dict(),
        "table": summary(result),
        "chosen": result.chosen,
        "rule": result.rule,
        "reason": result.reason,
        "contract": result.contract,
        "distillation": result.distillation,
        "targets": targets,
        "int8_speedup_by_width": None if args.no_width_sweep else int8_speedup_by_width(checkpoint, config),
        "seconds": round(time.perf_counter() - start, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
