"""Downstream tasks before and after domain adaptation: each domain's labelled task fine-tuned by each strategy on
the lake's pretrained checkpoint (the baseline) and on that domain's adapted checkpoint, scored on the test split
(span F1 for NCBI disease, macro F1 for the others). Prints JSON: one row per task × strategy × checkpoint.
With `--crosslingual`, instead: a head trained on English passages of the pretrained checkpoint and scored
zero-shot per language, on the sample's translated reference articles and, when `FM_SHARED_CORPORA` is set, on
the UDHR in 41 languages (`multilingual/udhr.jsonl`).

    python -m benchmarks.downstream [--lake $FM_PIPELINE_HOME/lake] [--tasks scicite ...]
                                    [--strategies discriminative_lr full ...] [--epochs 8] [--threads 1]
                                    [--crosslingual]

Needs `pretrained_checkpoint`, `tokenizer` and `domain_adapted_checkpoint/<domain>` in the lake (`make run`).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from fm_pipeline.downstream.crosslingual import crosslingual_transfer, sample_parallel_set, udhr_parallel_set
from fm_pipeline.downstream.evaluate import AFTER, BEFORE, evaluate_downstream, scores_to_dicts
from fm_pipeline.downstream.task_config import STRATEGIES, TaskTrainConfig
from fm_pipeline.downstream.tasks import TASKS
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.paths import lake_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=None)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--strategies", nargs="+", default=["discriminative_lr"], choices=STRATEGIES)
    parser.add_argument("--epochs", type=int, default=TaskTrainConfig().epochs)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--crosslingual", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lake = (args.lake or lake_root()).resolve()
    config = TaskTrainConfig(epochs=args.epochs)
    if args.crosslingual:
        sets = {"sample": sample_parallel_set()}
        if os.environ.get("FM_SHARED_CORPORA"):
            sets["udhr"] = udhr_parallel_set(Path(os.environ["FM_SHARED_CORPORA"]) / "multilingual" / "udhr.jsonl")
        checkpoint, tokenizer = lake / "pretrained_checkpoint", lake / "tokenizer" / TOKENIZER_MODEL
        out = {name: [asdict(s) for s in crosslingual_transfer(checkpoint, tokenizer, passages, config)]
               for name, passages in sets.items()}
        print(json.dumps({"lake": str(lake), "epochs": args.epochs, "crosslingual": out}, indent=2))
        return
    rows = []
    for name in args.tasks:
        adapted = lake / "domain_adapted_checkpoint" / TASKS[name].domain
        adapted_tokenizer = adapted / TOKENIZER_MODEL
        tokenizer = lake / "tokenizer" / TOKENIZER_MODEL
        checkpoints = {BEFORE: (lake / "pretrained_checkpoint", tokenizer),
                       AFTER: (adapted, adapted_tokenizer if adapted_tokenizer.is_file() else tokenizer)}
        rows += scores_to_dicts(evaluate_downstream(checkpoints, [name], args.strategies, config))
    print(json.dumps({"lake": str(lake), "epochs": args.epochs, "threads": args.threads, "scores": rows}, indent=2))


if __name__ == "__main__":
    main()
