"""Domain adaptation on the sample domain corpus: every strategy on every domain, from the lake's
pretrained checkpoint, with the issue's targets checked (domain perplexity and bits per byte go down, general
perplexity rises by less than 10%). Prints JSON: per domain per strategy the table row and the checks.

    python -m benchmarks.adapt [--lake $FM_PIPELINE_HOME/lake] [--profile cpu_small]
                               [--domains biomedical legal ...] [--strategies dapt lora ...] [--threads 2]

Needs `pretrained_checkpoint`, `tokenizer` and `balanced_shards` in the lake (`make run`). Each domain's
documents are split by a hash of their id: about a fifth (at least two) to val, the rest to train; the probe
separates the four domains on all their documents (held out by document).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from fm_pipeline.adaptation import STRATEGIES, AdaptConfig, adapt
from fm_pipeline.paths import DOMAINS, domain_corpus_root, lake_root
from fm_pipeline.tokenization.train import MODEL_FILE

MAX_GENERAL_RISE = 0.10  # the target: general perplexity rises by less than 10%


def read_domain(folder: Path) -> list[dict[str, str]]:
    """The JSONL documents of one domain folder, as (id, text, lang) rows."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                doc = json.loads(line)
                rows.append({"id": doc["id"], "text": doc["text"], "lang": "en"})
    return rows


def split(rows: list[dict[str, str]], val_share: float = 0.2) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, val): the documents whose id hashes lowest go to val."""
    ranked = sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    n_val = max(2, round(val_share * len(rows)))
    return ranked[n_val:], ranked[:n_val]


def write_split(folder: Path, rows: list[dict[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=None)
    parser.add_argument("--domain-corpus", type=Path, default=None)
    parser.add_argument("--profile", default="cpu_small")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                        help="AdaptConfig overrides, e.g. steps=100 lr=3e-4")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lake = args.lake or lake_root()
    corpus = args.domain_corpus or domain_corpus_root()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}

    docs = {domain: read_domain(corpus / domain) for domain in DOMAINS}
    probe_docs = {domain: [r["text"] for r in rows] for domain, rows in docs.items()}
    results: dict[str, Any] = {}
    passed = True
    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as tmp:
        root = Path(tmp)
        for domain in args.domains:
            train, val = split(docs[domain])
            train_dir = write_split(root / domain / "train", train)
            val_dir = write_split(root / domain / "val", val)
            results[domain] = {}
            for strategy in args.strategies:
                config = AdaptConfig.profile(args.profile, strategy, **overrides)
                start = time.perf_counter()
                result = adapt(
                    lake / "pretrained_checkpoint", lake / "tokenizer" / MODEL_FILE, train_dir, val_dir,
                    lake / "balanced_shards" / "val", root / domain / strategy / "out", config,
                    general_train=lake / "balanced_shards" / "train", probe_docs=probe_docs,
                    work_dir=root / domain / strategy / "work", processes=1,
                )
                m = result.metrics()
                general_rise = m["eval/general_ppl_after"] / m["eval/general_ppl_before"] - 1
                checks = {
                    "domain_ppl_down": m["eval/domain_ppl_after"] < m["eval/domain_ppl_before"],
                    "domain_bpb_down": m["eval/domain_bpb_after"] < m["eval/domain_bpb_before"],
                    "general_ppl_rise_under_10pct": general_rise < MAX_GENERAL_RISE,
                }
                passed &= all(checks.values())
                row = {**result.row(), "general_ppl_rise": round(general_rise, 4), "checks": checks,
                       "seconds": round(time.perf_counter() - start, 1)}
                if result.vocab is not None:
                    row["vocab"] = {k: result.vocab[k] for k in ("new_tokens", "tokens_per_word_before",
                                                                 "tokens_per_word_after")}
                    row["domain_ppl_own_tokens_after"] = round(m["eval/domain_ppl_after_own_tokens"], 2)
                results[domain][strategy] = row
                print(json.dumps({"domain": domain, **row}, ensure_ascii=False), flush=True)
    print(json.dumps({"profile": args.profile, "overrides": overrides, "all_targets_met": passed,
                      "results": results}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
