"""A pretrained_checkpoint materialization whose step process is SIGKILLed after a step checkpoint continues,
when materialized again with the default `resume: auto`, from that checkpoint and ends with the same loss and
weights as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import torch
from safetensors.torch import load_file

from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.training import step_checkpoints as steps
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train
from fm_pipeline_tests.defs.materialize_pretraining import materialize

REPO = Path(__file__).resolve().parents[2]
RUN_CONFIG = {"ops": {"pretrained_checkpoint": {"ops": {"prepare_pretraining": {"config": {
    "steps": 120, "checkpoint_every": 30, "n_layer": 2, "n_head": 2, "d_model": 32, "block_size": 32,
    "batch_size": 8, "lr": 1e-2, "device": "cpu"}}}}}}
"""Long enough to beat the unigram entropy, as the blocking `checkpoint_sound` check demands."""
MASKED_LM = {"steps": 200, "checkpoint_every": 50, "d_model": 64, "block_size": 64, "lr": 3e-3}
"""A masked LM scores only the hidden tokens; at 32 wide it learns little beyond their frequencies."""


def build_lake(tiny_corpus, lake: Path) -> None:
    """What training reads: the tokenizer, the token files and balanced_shards/val."""
    (lake / "tokenizer").mkdir(parents=True)
    shutil.copyfile(tiny_corpus.tokenizer, lake / "tokenizer" / TOKENIZER_MODEL)
    shutil.copytree(tiny_corpus.tokens, lake / "tokenized_corpus")
    shutil.copytree(tiny_corpus.val_docs, lake / "balanced_shards" / "val")


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["decoder_only", "encoder_only", "encoder_decoder"])
def test_a_killed_materialization_resumes_to_the_uninterrupted_result(tiny_corpus, fm_home, tmp_path, architecture):
    build_lake(tiny_corpus, fm_home / "lake")
    run_config = json.loads(json.dumps(RUN_CONFIG))
    settings = run_config["ops"]["pretrained_checkpoint"]["ops"]["prepare_pretraining"]["config"]
    settings.update(architecture=architecture, **(MASKED_LM if architecture == "encoder_only" else {}))
    every, kill_at = settings["checkpoint_every"], settings["steps"] // 2
    (tmp_path / "run_config.json").write_text(json.dumps(run_config))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-m", "fm_pipeline_tests.defs.materialize_pretraining",
                             str(tmp_path / "run_config.json"), "after_checkpoint", str(kill_at)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    out = fm_home / "lake" / "pretrained_checkpoint"
    assert [p.name for p in steps.list_checkpoints(steps.state_dir(out))] == [
        f"step-{kill_at - every:07d}", f"step-{kill_at:07d}"]
    assert not (out / ckpt.WEIGHTS).exists()

    instance = dg.DagsterInstance.ephemeral()
    result = materialize(instance, run_config)
    assert result.success
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(f"resuming from step-{kill_at:07d}" in line for line in logs), logs
    (mat,) = [m for m in result.asset_materializations_for_node("pretrained_checkpoint")]
    final_loss = mat.metadata["train/final_loss"].value
    assert mat.metadata["train/resumed_from_step"].value == kill_at

    # The uninterrupted run: the same config, trained in one go somewhere else.
    config = TrainConfig.from_json(out / "train_config.json")
    assert config.model.architecture == architecture
    straight = train(replace(config, out_dir=str(tmp_path / "straight")))
    assert final_loss == straight.train_loss
    a, b = load_file(out / ckpt.WEIGHTS), load_file(straight.checkpoint / ckpt.WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
