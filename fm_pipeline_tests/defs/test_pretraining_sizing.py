"""pretrained_checkpoint with `architecture: auto` and a sparse feed-forward: the decision, the Chinchilla and
memory tables and the expert routing are in the materialization's metadata, and the blocking check passes."""

from __future__ import annotations

import json

import dagster as dg

from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.modeling.sizing import count_parameters
from fm_pipeline_tests.defs.materialize_pretraining import materialize
from fm_pipeline_tests.defs.test_resume_pretraining import RUN_CONFIG, build_lake


def test_auto_architecture_and_experts_are_trained_and_reported(tiny_corpus, fm_home):
    build_lake(tiny_corpus, fm_home / "lake")
    run_config = json.loads(json.dumps(RUN_CONFIG))
    run_config["ops"]["pretrained_checkpoint"]["ops"]["prepare_pretraining"]["config"].update(
        architecture="auto", task="text_generation", moe_experts=4)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(instance, run_config)
    assert result.success
    (mat,) = result.asset_materializations_for_node("pretrained_checkpoint")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["architecture"] == "decoder_only"
    assert meta["architecture/decision"].startswith("**decoder_only** (votes: {'decoder_only': 5,")
    assert "task: +3 decoder_only: 'text_generation' is a task for decoder_only" in meta["architecture/decision"]
    config = json.loads((fm_home / "lake" / "pretrained_checkpoint" / ckpt.CONFIG).read_text())
    assert config["moe_experts"] == 4 and config["architecture"] == "decoder_only"
    model_config = ckpt.load_checkpoint(fm_home / "lake" / "pretrained_checkpoint")[1]
    assert meta["parameters"] == count_parameters(model_config)
    assert meta["parameters/active"] == count_parameters(model_config, active=True) < meta["parameters"]
    assert meta["sizing/memory"].splitlines()[2].startswith("| bits | weights | gradients | master_weights |")
    assert [line.split(" | ")[0] for line in meta["sizing/memory"].splitlines()[4:]] == ["| 32", "| 16", "| 8", "| 4"]
    assert "| tokens_per_parameter |" in meta["sizing/chinchilla"]
    assert 1.0 <= meta["moe/aux_loss"] <= 4.0 and 0.25 <= meta["moe/max_load"] <= 1.0
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
