import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.training import step_checkpoints as steps
from fm_pipeline_tests.training.tiny_corpus import tiny_config

REPO = Path(__file__).resolve().parents[2]


def torchrun(folder: Path, *module_and_args: str) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` under torch.distributed.run with two gloo ranks on the CPU."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", *module_and_args]
    return subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=180)


def write_config(tiny_corpus, folder: Path) -> Path:
    config = tiny_config(tiny_corpus, folder / "out", steps=6, log_every=3, eval_every=3, checkpoint_every=3)
    config.to_json(folder / "train.json")
    return folder / "train.json"


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("ddp")
    config = write_config(tiny_corpus, folder)
    return folder / "out", torchrun(folder, "fm_pipeline.training.run", "--config", str(config))


@pytest.mark.slow
def test_torchrun_with_two_cpu_ranks_trains_and_rank_zero_checkpoints(uninterrupted):
    """The CLI under torch.distributed.run (gloo, world size 2): ranks draw different windows, rank 0 alone
    writes, and the checkpoint holds both ranks' data positions so the run can resume exactly."""
    out, done = uninterrupted
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "train_result.json").read_text())
    assert result["step"] == 6 and result["tokens_seen"] == 6 * 2 * 8 * 32
    assert "step 6:" in done.stderr and "eval at step 3:" in done.stderr
    assert done.stderr.count("step 3: loss") == 1  # only rank 0 reports
    assert [p.name for p in steps.list_checkpoints(steps.state_dir(out))] == ["step-0000003", "step-0000006"]
    state = ckpt.load_training_state(steps.step_folder(steps.state_dir(out), 6))
    rank0, rank1 = (r["data"]["generator"] for r in state["ranks"])
    assert not torch.equal(rank0, rank1)
    model, _ = ckpt.load_checkpoint(out)
    assert model.num_parameters() > 0


@pytest.mark.slow
def test_torchrun_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path, uninterrupted):
    """Rank 0 is SIGKILLed right after the step-3 checkpoint (torchrun then stops rank 1); the same command
    run again continues both ranks from step 3, each with its own RNG and data position, and ends with the
    weights and losses of the uninterrupted run."""
    straight, _ = uninterrupted
    config = write_config(tiny_corpus, tmp_path)
    killed = torchrun(tmp_path, "fm_pipeline_tests.training.killed_run", str(config), "after_checkpoint", "3")
    assert killed.returncode != 0 and "Signal 9 (SIGKILL)" in killed.stderr, killed.stderr[-3000:]
    assert not (tmp_path / "out" / ckpt.WEIGHTS).exists()

    resumed = torchrun(tmp_path, "fm_pipeline.training.run", "--config", str(config))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step-0000003" in resumed.stderr and "step 3: loss" not in resumed.stderr
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    expected = json.loads((straight / "train_result.json").read_text())
    assert result["resumed_from_step"] == 3 and result["train_loss"] == expected["train_loss"]
    assert [{k: v for k, v in h.items() if k != "tokens_per_s"} for h in result["history"]] == \
        [{k: v for k, v in h.items() if k != "tokens_per_s"} for h in expected["history"]]
    a, b = load_file(straight / ckpt.WEIGHTS), load_file(tmp_path / "out" / ckpt.WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
