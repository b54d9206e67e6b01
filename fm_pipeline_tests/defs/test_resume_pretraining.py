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

from fm_pipeline.tokenization.train import MODEL_FILE
from fm_pipeline.training import checkpoint as ckpt
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train
from fm_pipeline_tests.defs.materialize_pretraining import materialize

REPO = Path(__file__).resolve().parents[2]
RUN_CONFIG = {"ops": {"pretrained_checkpoint": {"ops": {"prepare_pretraining": {"config": {
    "steps": 120, "checkpoint_every": 30, "n_layer": 2, "n_head": 2, "d_model": 32, "block_size": 32,
    "batch_size": 8, "lr": 1e-2, "device": "cpu"}}}}}}
"""Long enough to beat the unigram entropy, as the blocking `checkpoint_sound` check demands."""


def build_lake(tiny_corpus, lake: Path) -> None:
    """What training reads: the tokenizer, the token files and balanced_shards/val."""
    (lake / "tokenizer").mkdir(parents=True)
    shutil.copyfile(tiny_corpus.tokenizer, lake / "tokenizer" / MODEL_FILE)
    shutil.copytree(tiny_corpus.tokens, lake / "tokenized_corpus")
    shutil.copytree(tiny_corpus.val_docs, lake / "balanced_shards" / "val")


@pytest.mark.slow
def test_a_killed_materialization_resumes_to_the_uninterrupted_result(tiny_corpus, fm_home, tmp_path):
    build_lake(tiny_corpus, fm_home / "lake")
    (tmp_path / "run_config.json").write_text(json.dumps(RUN_CONFIG))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-m", "fm_pipeline_tests.defs.materialize_pretraining",
                             str(tmp_path / "run_config.json"), "after_checkpoint", "60"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    out = fm_home / "lake" / "pretrained_checkpoint"
    assert [p.name for p in ckpt.list_checkpoints(ckpt.state_dir(out))] == ["step-0000030", "step-0000060"]
    assert not (out / ckpt.WEIGHTS).exists()

    instance = dg.DagsterInstance.ephemeral()
    result = materialize(instance, RUN_CONFIG)
    assert result.success
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("resuming from step-0000060" in line for line in logs), logs
    (mat,) = [m for m in result.asset_materializations_for_node("pretrained_checkpoint")]
    final_loss = mat.metadata["train/final_loss"].value
    assert mat.metadata["train/resumed_from_step"].value == 60

    # The uninterrupted run: the same config, trained in one go somewhere else.
    config = TrainConfig.from_json(out / "train_config.json")
    straight = train(replace(config, out_dir=str(tmp_path / "straight")))
    assert final_loss == straight.train_loss
    a, b = load_file(out / ckpt.WEIGHTS), load_file(straight.checkpoint / ckpt.WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
