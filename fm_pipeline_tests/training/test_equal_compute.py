"""A dense model and its sparse counterpart trained through the loop at equal compute: the same steps and tokens,
active parameters and FLOPs per token apart by the routers only, and one comparison row each with exact keys."""

from __future__ import annotations

import statistics
from dataclasses import asdict, replace

import pytest

from fm_pipeline.modeling.checkpoint_files import load_config
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.training.equal_compute import (
    COLUMNS,
    candidates_dir,
    compared_variants,
    comparison_row,
    variant_config,
    variant_model,
    variant_name,
)
from fm_pipeline.training.loop import train
from fm_pipeline_tests.training.tiny_corpus import tiny_config


def test_variants_change_only_the_feed_forward():
    dense = ModelConfig(n_layer=2, n_head=2, d_model=32, moe_capacity_factor=2.0)
    sparse = variant_model(dense, "moe_4")
    assert sparse == replace(dense, moe_experts=4) and variant_name(sparse) == "moe_4"
    assert variant_model(sparse, "dense") == dense and variant_name(dense) == "dense"
    for bad in ("sparse", "moe_1", "moe_x", "moe_"):
        with pytest.raises(ValueError, match=f"unknown architecture variant '{bad}'"):
            variant_model(dense, bad)
    assert compared_variants(dense, ["moe_4", "dense", "moe_2", "moe_4"]) == ["moe_4", "moe_2"]
    assert compared_variants(sparse, ["dense", "moe_4"]) == ["dense"]
    with pytest.raises(ValueError, match="'moe_0'"):
        compared_variants(dense, ["moe_2", "moe_0"])


def test_the_sparse_counterpart_trains_at_equal_compute_and_both_report_a_row(tiny_corpus, tmp_path):
    out = tmp_path / "pretrained_checkpoint"
    config = tiny_config(tiny_corpus, out, steps=6, log_every=3, eval_every=0, checkpoint_every=6,
                         val_docs_dir=str(tiny_corpus.val_docs), eval_docs_per_lang=3)
    dense = train(config)
    trained = load_config(out)
    variant = variant_config(replace(config, resume="must"), trained, "moe_2")
    assert variant.resume == "auto", "a published run that must resume may have variants that never started"
    assert variant.out_dir == str(tmp_path / "pretrained_checkpoint.candidates" / "moe_2")
    assert candidates_dir(out) == tmp_path / "pretrained_checkpoint.candidates"
    sparse = train(variant)
    assert load_config(variant.out_dir) == replace(trained, moe_experts=2)

    rows = [comparison_row("dense", asdict(dense), published=True),
            comparison_row("moe_2", asdict(sparse), published=False)]
    assert all(list(row) == COLUMNS for row in rows)
    d, s = rows
    assert (d["model"], d["published"], d["moe_experts"]) == ("dense", True, 0)
    assert (s["model"], s["published"], s["moe_experts"]) == ("moe_2", False, 2)
    assert d["steps"] == s["steps"] == 6 and d["tokens_seen"] == s["tokens_seen"] == 6 * 8 * 32
    routers = trained.n_layer * trained.d_model * 2
    assert s["parameters_active"] == d["parameters_active"] + routers
    assert s["flops_per_token"] == d["flops_per_token"] + 6 * routers
    mlp = 2 * trained.d_model * trained.d_ff  # up and down, no biases
    assert s["parameters_total"] == d["parameters_total"] + routers + trained.n_layer * mlp
    assert d["parameters_total"] == dense.n_params and s["parameters_total"] == sparse.n_params
    assert d["val_loss"] == round(dense.eval_metrics["val_loss"], 4)
    assert s["val_bpb"] == round(sparse.eval_metrics["val_bpb"], 4)
    assert d["tokens_per_s"] == round(statistics.median(h["tokens_per_s"] for h in dense.history)) > 0
    assert s["tokens_per_s"] == round(statistics.median(h["tokens_per_s"] for h in sparse.history)) > 0
    assert d["moe_dropped"] is None and d["moe_max_load"] is None
    last = sparse.history[-1]
    assert s["moe_max_load"] == round(last["moe_max_load"], 4) and 0.5 <= s["moe_max_load"] <= 1.0
    assert s["moe_dropped"] == round(last["moe_dropped"], 4)
