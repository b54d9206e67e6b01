"""`benchmarks.train` at nanoGPT's CPU shape for a handful of steps: rows labelled by whose model ran, and
nanoGPT's own model (from a checkout named by FM_NANOGPT_DIR; skipped without one) at the same shape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from benchmarks import train

CPU = torch.device("cpu")


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


def test_nanogpt_runs_at_our_gpt2_style_shape(one_thread: None) -> None:
    checkout = os.environ.get("FM_NANOGPT_DIR")
    if not checkout:
        pytest.skip("set FM_NANOGPT_DIR to a nanoGPT checkout to time its model")
    rows = train.rows(["small"], ["decoder_only"], ["gpt2"], 65, CPU, steps=5, max_seconds=2,
                      nanogpt=Path(checkout))
    ours, nanogpt = rows
    assert nanogpt["model"] == "nanogpt"
    # the same architecture: learned positions, LayerNorm without bias, tied embeddings, 4 x 4 x 128
    assert nanogpt["parameters"] == ours["parameters"] == 804_096
    assert nanogpt["tokens_per_step"] == ours["tokens_per_step"]
    assert abs(nanogpt["final_loss"] - 4.17) < 0.3
