"""Pretraining quality in a fixed time: the default CPU profile (`cpu_small`) on tinyshakespeare, with a
tokenizer trained on it, the first 90% of the text for training and the last 10% for validation (as
nanoGPT's shakespeare_char splits it), trained for `--minutes` of training steps. Prints JSON with the
validation bits per UTF-8 byte over time. Aim: below 2.5 bits per byte in 3 minutes (nanoGPT's character
model gets about 2.7 bits per character, its characters being ASCII bytes, in its 3-minute CPU example).

    python -m benchmarks.shakespeare [--corpora ../shared/corpora] [--minutes 3] [--vocab-size 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from fm_pipeline.lake.parquet_io import ShardWriter
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline.tokenization.train import TokenizerConfig, train_tokenizer
from fm_pipeline.training.callbacks import TrainingCallback
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train
from tools.corpora import SHARED_CORPORA
from tools.text_chunks import chunk_text

TARGET_BPB = 2.5


class EvalRecorder(TrainingCallback):
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.evals: list[dict[str, float]] = []

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.evals.append({"step": step, "wall_s": round(time.perf_counter() - self.started, 1),
                           "val_bpb": round(metrics.get("val_bpb", float("nan")), 4)})


def _write(texts: list[str], folder: Path, prefix: str) -> Path:
    with ShardWriter(folder, CORPUS_SCHEMA) as writer:
        for i, text in enumerate(texts):
            writer.write(Document(id=f"{prefix}-{i}", text=text, source="books", lang="en").to_row())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=1000, help="length of the learning-rate schedule")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = (args.corpora / "books" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Documents of ~2 KB of whole lines: the packed stream is the text in order, framed by BOS/EOS.
        train_dir = _write(chunk_text(text[:cut], 2000, unit="line", keep_tail=True), root / "train", "train")
        val_dir = _write(chunk_text(text[cut:], 2000, unit="line", keep_tail=True), root / "val", "val")
        train_shards, val_shards = sorted(train_dir.glob("*.parquet")), sorted(val_dir.glob("*.parquet"))
        tok = train_tokenizer(train_shards, root / "tokenizer", TokenizerConfig(vocab_size=args.vocab_size))
        encode_corpus(tok.model_path, {"train": train_shards, "val": val_shards}, root / "tokens", processes=1)
        config = TrainConfig.profile(
            "cpu_small", token_dir=str(root / "tokens"), tokenizer_path=str(tok.model_path),
            val_docs_dir=str(val_dir), out_dir=str(root / "out"), steps=args.steps,
            max_seconds=args.minutes * 60, eval_every=100, eval_batches=20, checkpoint_every=10**9,
            eval_docs_per_lang=10**6,
        )
        recorder = EvalRecorder()
        result = train(config, [recorder])

    final = result.eval_metrics
    print(json.dumps({
        "corpus": {"train_chars": cut, "val_chars": len(text) - cut, "split": "first 90% / last 10%"},
        "tokenizer": {"vocab_size": tok.vocab_size, "model_type": "bpe"},
        "profile": "cpu_small",
        "model": config.model.to_dict() | {"vocab_size": tok.vocab_size, "n_params": result.n_params},
        "minutes_of_training": args.minutes,
        "steps_done": result.step,
        "tokens_seen": result.tokens_seen,
        "train_tokens_per_s": round(result.tokens_per_s),
        "val_bpb_over_time": recorder.evals,
        "final_val_bpb": round(final["val_bpb"], 4),
        "final_val_loss": round(final["val_loss"], 4),
        "target_val_bpb": TARGET_BPB,
        "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
