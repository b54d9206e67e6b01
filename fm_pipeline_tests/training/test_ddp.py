import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fm_pipeline.training import checkpoint as ckpt
from fm_pipeline_tests.training.tiny_corpus import tiny_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_torchrun_with_two_cpu_ranks_trains_and_rank_zero_checkpoints(tiny_corpus, tmp_path):
    """The CLI under torch.distributed.run (gloo, world size 2): ranks draw different windows, rank 0 alone
    writes, and the checkpoint holds both ranks' data positions so the run can resume exactly."""
    config = tiny_config(tiny_corpus, tmp_path / "out", steps=6, log_every=3, eval_every=3, checkpoint_every=3)
    config.to_json(tmp_path / "train.json")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "fm_pipeline.training.run", "--config", str(tmp_path / "train.json")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    assert result["step"] == 6 and result["tokens_seen"] == 6 * 2 * 8 * 32
    assert "step 6:" in done.stderr and "eval at step 3:" in done.stderr
    assert done.stderr.count("step 3: loss") == 1  # only rank 0 reports
    assert [p.name for p in ckpt.list_checkpoints(ckpt.state_dir(tmp_path / "out"))] == ["step-0000003", "step-0000006"]
    state = ckpt.load_training_state(ckpt.step_folder(ckpt.state_dir(tmp_path / "out"), 6))
    rank0, rank1 = (r["data"]["generator"] for r in state["ranks"])
    assert not torch.equal(rank0, rank1)
    model, _ = ckpt.load_checkpoint(tmp_path / "out")
    assert model.num_parameters() > 0
