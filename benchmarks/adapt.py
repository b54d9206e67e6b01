"""Domain adaptation: every strategy on every domain, from the lake's pretrained checkpoint, with the issue's
targets checked (domain perplexity and bits per byte go down, general perplexity rises by less than 10%).
Prints JSON: per domain the domain corpus statistics and per strategy the table row and the checks.

    python -m benchmarks.adapt [--lake $FM_PIPELINE_HOME/lake] [--domain-corpus ROOT] [--work DIR]
                               [--profile cpu_small] [--domains biomedical legal ...]
                               [--strategies dapt lora ...] [--threads 2] [--set steps=100 ...]

Needs `pretrained_checkpoint`, `tokenizer`, `balanced_shards` and `deduped_corpus` in the lake (`make run`).
`--domain-corpus` (default `$FM_DOMAIN_CORPUS`, else the sample domain corpus) holds `<domain>/` folders or
`<domain>.jsonl` files. Each requested domain goes through the pipeline's domain corpus stage (ingest,
filter, dedup, train/val split by id hash, overlap with the general corpus) into `<work>/domain_corpus/
<domain>` (a temporary folder unless `--work`); adaptation trains on its `train/` and evaluates on its
`val/`. The probe separates the requested domains on all their documents (held out by document); it is
skipped with fewer than two domains.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from fm_pipeline.adaptation.adapt import adapt
from fm_pipeline.adaptation.config import STRATEGIES, AdaptConfig
from fm_pipeline.curation.domain_corpus import DomainCorpusConfig, build_domain_corpus, domain_input
from fm_pipeline.curation.filter_stage import FilterConfig
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.parquet_io import list_shards, read_docs
from fm_pipeline.lake.paths import DOMAINS, domain_corpus_root, lake_root

MAX_GENERAL_RISE = 0.10  # the target: general perplexity rises by less than 10%
CORPUS_STATS = ("documents_in", "quarantined", "filter_kept", "filter_rejected", "exact_duplicates",
                "near_duplicates", "kept", "train_documents", "val_documents", "in_general_corpus")


def run_strategy(lake: Path, domain_dir: Path, root: Path, config: AdaptConfig,
                 probe_docs: dict[str, list[str]] | None) -> tuple[dict[str, Any], bool]:
    """(table row with the target checks, whether all checks passed) for one strategy on one domain."""
    start = time.perf_counter()
    result = adapt(
        lake / "pretrained_checkpoint", lake / "tokenizer" / TOKENIZER_MODEL, domain_dir / "train", domain_dir / "val",
        lake / "balanced_shards" / "val", root / "out", config,
        general_train=lake / "balanced_shards" / "train", probe_docs=probe_docs, work_dir=root / "work",
        processes=1,
    )
    m = result.metrics()
    general_rise = m["eval/general_ppl_after"] / m["eval/general_ppl_before"] - 1
    checks = {
        "domain_ppl_down": m["eval/domain_ppl_after"] < m["eval/domain_ppl_before"],
        "domain_bpb_down": m["eval/domain_bpb_after"] < m["eval/domain_bpb_before"],
        "general_ppl_rise_under_10pct": general_rise < MAX_GENERAL_RISE,
    }
    row = {**result.row(), "general_ppl_rise": round(general_rise, 4), "checks": checks,
           "seconds": round(time.perf_counter() - start, 1)}
    if result.vocab is not None:
        row["vocab"] = {k: result.vocab[k] for k in ("new_tokens", "tokens_per_word_before", "tokens_per_word_after")}
        row["domain_ppl_own_tokens_after"] = round(m["eval/domain_ppl_after_own_tokens"], 2)
    return row, all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=None)
    parser.add_argument("--domain-corpus", type=Path, default=None, metavar="ROOT",
                        help="folder of <domain>/ sub-folders or <domain>.jsonl files")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep domain corpora and checkpoints here (default: a temporary folder)")
    parser.add_argument("--profile", default="cpu_small")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                        help="AdaptConfig overrides, e.g. steps=100 lr=3e-4")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lake = (args.lake or lake_root()).resolve()
    corpus = (args.domain_corpus or domain_corpus_root()).resolve()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    general_signatures = sorted((lake / "deduped_corpus" / "signatures").glob("*.parquet"))
    corpus_config = DomainCorpusConfig(filter=FilterConfig(processes=1))

    results: dict[str, Any] = {}
    passed = True
    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as tmp:
        root = (args.work or Path(tmp)).resolve()
        domain_dirs = {domain: root / "domain_corpus" / domain for domain in args.domains}
        corpus_stats = {}
        for domain, out in domain_dirs.items():
            stats = build_domain_corpus(domain, domain_input(corpus, domain), out, general_signatures, corpus_config)
            corpus_stats[domain] = {k: getattr(stats, k) for k in CORPUS_STATS}
            print(json.dumps({"domain": domain, "domain_corpus": corpus_stats[domain]}), flush=True)
        probe_docs = {domain: [text for split in ("train", "val") if list_shards(out / split)
                               for _, text in read_docs(out / split)] for domain, out in domain_dirs.items()}
        probe_docs = {domain: texts for domain, texts in probe_docs.items() if texts}
        for domain, out in domain_dirs.items():
            results[domain] = {"domain_corpus": corpus_stats[domain], "strategies": {}}
            if not (list_shards(out / "train") and list_shards(out / "val")):
                results[domain]["error"] = "domain corpus has no train or no val documents"
                passed = False
                continue
            for strategy in args.strategies:
                config = AdaptConfig.profile(args.profile, strategy, **overrides)
                row, ok = run_strategy(lake, out, root / "adapt" / domain / strategy, config,
                                       probe_docs if len(probe_docs) >= 2 else None)
                passed &= ok
                results[domain]["strategies"][strategy] = row
                print(json.dumps({"domain": domain, **row}, ensure_ascii=False), flush=True)
    print(json.dumps({"profile": args.profile, "overrides": overrides, "domain_corpus_root": str(corpus),
                      "all_targets_met": passed, "results": results}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
