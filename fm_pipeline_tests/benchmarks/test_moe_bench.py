"""`benchmarks.moe` for a few steps on the packaged sample books: the dense and sparse rows at equal active
parameters, the same tokens, and the sparse model's routing."""

from __future__ import annotations

import torch

from benchmarks import moe
from benchmarks.train import benchmark_text


def test_dense_and_sparse_rows_compare_at_equal_compute(tmp_path):
    torch.set_num_threads(1)
    text, source = benchmark_text(tmp_path)  # no corpora here: the sample books
    assert source == "sample books (en)"
    result = moe.run(experts=2, steps=5, device=torch.device("cpu"), val_batches=1, text=text)
    dense, sparse = result["rows"]
    assert (dense["model"], sparse["model"]) == ("dense", "moe_2")
    routers = moe.SHAPE["n_layer"] * moe.SHAPE["d_model"] * 2
    assert sparse["parameters_active"] == dense["parameters_active"] + routers
    mlp = 2 * moe.SHAPE["d_model"] * 4 * moe.SHAPE["d_model"]  # GELU MLP, no biases: up and down
    assert sparse["parameters_total"] == dense["parameters_total"] + routers + moe.SHAPE["n_layer"] * mlp
    assert dense["tokens_seen"] == sparse["tokens_seen"] == 5 * moe.BATCH_SIZE * moe.SHAPE["block_size"]
    assert len(sparse["expert_load"]) == moe.SHAPE["n_layer"]
    assert all(abs(sum(layer) - 1) < 1e-2 for layer in sparse["expert_load"])
    assert "expert_load" not in dense and dense["tokens_per_s"] > 0
    assert result["val_loss_sparse_minus_dense"] == round(sparse["val_loss"] - dense["val_loss"], 4)
