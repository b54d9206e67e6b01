"""`benchmarks.train` at nanoGPT's CPU shape for a handful of steps: rows labelled by whose model ran, the
pieces that run nanoGPT's own train.py (its data files, its log lines), and nanoGPT itself (from a checkout
named by FM_NANOGPT_DIR; skipped without one) at the same shape, its model in our loop and its train.py."""

from __future__ import annotations

import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import train
from fm_pipeline_tests.conftest import SHARED_CORPORA

CPU = torch.device("cpu")

# nanoGPT's train.py at the small shape (max_iters=12, one thread), as it printed them
NANOGPT_LOG = """\
found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)
Initializing a new model from scratch
number of parameters: 0.80M
using fused AdamW: False
step 0: train loss 4.1676, val loss 4.1649
iter 0: loss 4.1828, time 1473.79ms, mfu -100.00%
iter 1: loss 4.1373, time 68.19ms, mfu -100.00%
iter 4: loss 4.0387, time 78.16ms, mfu -100.00%
iter 5: loss 3.9758, time 100.23ms, mfu 0.01%
iter 12: loss 3.7059, time 107.11ms, mfu 0.01%
"""


def test_our_two_styles_are_labelled_as_ours(one_thread: None) -> None:
    rows = train.rows(["small"], ["decoder_only"], ["gpt2", "llama"], 65, CPU, steps=5, max_seconds=2)
    assert [r["model"] for r in rows] == ["ours_gpt2_style", "ours_llama_style"]
    for row in rows:
        assert row["tokens_per_step"] == 12 * 64
        assert row["steps"] == 5
        assert row["tokens_per_s"] > 0
        assert abs(row["final_loss"] - 4.17) < 0.3  # ln(65): a fresh model on uniform random tokens


def test_a_folder_without_nanogpt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no nanoGPT model.py"):
        train.load_nanogpt(tmp_path)
    (tmp_path / "model.py").write_text("")
    with pytest.raises(FileNotFoundError, match="no nanoGPT train.py"):
        train.measure_nanogpt_train(tmp_path, train.SHAPES["small"], CPU, 5, 2, ("text", "test"))


def test_nanogpt_log_lines_give_iteration_loss_and_seconds() -> None:
    assert train.parse_iterations(NANOGPT_LOG) == [
        {"iter": 0, "loss": 4.1828, "seconds": 1.47379},
        {"iter": 1, "loss": 4.1373, "seconds": 0.06819},
        {"iter": 4, "loss": 4.0387, "seconds": 0.07816},
        {"iter": 5, "loss": 3.9758, "seconds": 0.10023},
        {"iter": 12, "loss": 3.7059, "seconds": 0.10711},
    ]


def test_windowed_rate_is_the_median_window_as_ours_are_timed() -> None:
    # 5 windows of 2 iterations; one slow burst in the 4th: rates 10, 10, 10, 2.5, 5 tokens/s
    seconds = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 4.0, 4.0, 2.0, 2.0]
    assert train.windowed_rate(seconds, 10) == 10
    assert train.windowed_rate([1.0, 1.0, 3.0], 6) == 6  # fewer iterations than windows: one each


def test_char_dataset_is_what_prepare_py_writes(tmp_path: Path) -> None:
    assert train.write_char_dataset("hello world", tmp_path) == 8
    chars = " dehlorw"
    assert np.fromfile(tmp_path / "train.bin", dtype=np.uint16).tolist() == [chars.index(c) for c in "hello wor"]
    assert np.fromfile(tmp_path / "val.bin", dtype=np.uint16).tolist() == [chars.index(c) for c in "ld"]
    with open(tmp_path / "meta.pkl", "rb") as f:  # written by the line above
        meta = pickle.load(f)
    assert meta == {"vocab_size": 8, "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}


def test_tinyshakespeare_splits_as_nanogpt_reports(tmp_path: Path, shared_corpora: Path) -> None:
    text, name = train.benchmark_text(shared_corpora)
    assert name == "tinyshakespeare.txt"
    assert train.write_char_dataset(text, tmp_path) == 65
    # prepare.py: "train has 1,003,854 tokens", "val has 111,540 tokens"
    assert (tmp_path / "train.bin").stat().st_size == 2 * 1_003_854
    assert (tmp_path / "val.bin").stat().st_size == 2 * 111_540


def test_a_failing_train_py_shows_its_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    for name in ("configurator.py", "config/train_shakespeare_char.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "train.py").write_text("print('iter 0: loss 4.1, time 9.00ms, mfu -100.00%')\nraise SystemExit(3)\n")
    with pytest.raises(RuntimeError, match="exited with 3 after 0 timed iterations"):
        train.measure_nanogpt_train(tmp_path, train.SHAPES["small"], CPU, 5, 2, ("some text", "test"))
    assert "iter 0: loss 4.1" in capsys.readouterr().err


def test_ratios_pair_ours_with_each_nanogpt_row() -> None:
    rates = {"ours_gpt2_style": 900, "ours_llama_style": 600, "nanogpt_model_in_our_loop": 1000,
             "nanogpt_train_py": 800}
    results = [{"shape": "small", "architecture": "decoder_only", "model": m, "tokens_per_s": r}
               for m, r in rates.items()]
    assert train.ratios(results) == {"small": {
        "ours_gpt2_style / nanogpt_model_in_our_loop": 0.9, "ours_gpt2_style / nanogpt_train_py": 1.125,
        "ours_llama_style / nanogpt_model_in_our_loop": 0.6, "ours_llama_style / nanogpt_train_py": 0.75,
        "nanogpt_model_in_our_loop / nanogpt_train_py": 1.25,
    }}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_nanogpt_runs_at_our_gpt2_style_shape(one_thread: None, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = os.environ.get("FM_NANOGPT_DIR")
    if not checkout:
        pytest.skip("set FM_NANOGPT_DIR to a nanoGPT checkout to time its model and its train.py")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the benchmark itself keeps the checkout clean
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    before = _files(Path(checkout))
    rows = train.rows(["small"], ["decoder_only"], ["gpt2"], 65, CPU, steps=5, max_seconds=30,
                      nanogpt=Path(checkout), corpora=SHARED_CORPORA)
    assert _files(Path(checkout)) == before
    ours, in_our_loop, train_py = rows
    assert in_our_loop["model"] == "nanogpt_model_in_our_loop"
    # the same architecture: learned positions, LayerNorm without bias, tied embeddings, 4 x 4 x 128
    assert in_our_loop["parameters"] == ours["parameters"] == 804_096
    assert in_our_loop["tokens_per_step"] == ours["tokens_per_step"]
    assert abs(in_our_loop["final_loss"] - 4.17) < 0.3

    assert train_py["model"] == "nanogpt_train_py"
    assert train_py["steps"] == 5  # its iterations 10 to 14, after the warmup
    assert train_py["tokens_per_step"] == ours["tokens_per_step"] == 12 * 64
    if SHARED_CORPORA.is_dir():
        assert (train_py["text"], train_py["vocab_size"]) == ("tinyshakespeare.txt", 65)
    else:
        assert train_py["text"] == "sample books (en)"
    # 15 iterations on real text take it below a uniform guess over the characters
    assert train_py["final_loss"] < math.log(train_py["vocab_size"]) - 0.2
    assert set(train.ratios(rows)["small"]) == {
        "ours_gpt2_style / nanogpt_model_in_our_loop", "ours_gpt2_style / nanogpt_train_py",
        "nanogpt_model_in_our_loop / nanogpt_train_py"}
