import math

import numpy as np
import pytest
import torch

from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.tokenization.packed import PackedTokens, TokenizerMismatchError
from fm_pipeline.training import step_checkpoints as steps
from fm_pipeline.training.callbacks import TrainingCallback
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.loop import train
from fm_pipeline_tests.training.tiny_corpus import tiny_config, train_tokenizer


class Recorder(TrainingCallback):
    def __init__(self) -> None:
        self.steps, self.evals, self.checkpoints = [], [], []

    def on_step(self, step, metrics):
        self.steps.append((step, metrics))

    def on_eval(self, step, metrics):
        self.evals.append((step, metrics))

    def on_checkpoint(self, path):
        self.checkpoints.append(path)


def test_loss_goes_down_and_the_run_reports_everything(tiny_corpus, tmp_path):
    recorder = Recorder()
    model = ModelConfig(n_layer=2, n_head=2, d_model=64, block_size=32)
    config = tiny_config(tiny_corpus, tmp_path, model=model, steps=100, log_every=10, eval_every=50,
                         checkpoint_every=50, val_docs_dir=str(tiny_corpus.val_docs), eval_docs_per_lang=5)
    result = train(config, [recorder])

    losses = [m["loss"] for _, m in recorder.steps]
    assert losses[-1] < losses[0] - 0.5
    assert [s for s, _ in recorder.steps] == list(range(10, 101, 10))
    assert set(recorder.steps[0][1]) == {"loss", "lr", "grad_norm", "tokens_per_s"}  # mfu on CUDA only
    assert recorder.evals[0][0] == 50 and {"val_loss", "val_ppl", "val_bpb"} <= set(recorder.evals[0][1])
    final = result.eval_metrics
    vocab = ckpt.load_checkpoint(tmp_path)[1].vocab_size
    assert final["val_loss"] < math.log(vocab) - 0.8  # an untrained model scores about ln(vocab)
    assert set(final["by_lang"]) == {"en", "de", "fr", "es"}
    assert recorder.evals[-1][1]["val_bpb/en"] == final["by_lang"]["en"]["val_bpb"]
    assert [p.name for p in recorder.checkpoints] == ["step-0000050", "step-0000100"]
    assert result.step == 100 and result.tokens_seen == 100 * 8 * 32 and result.tokens_per_s > 0
    # The final checkpoint is published at the top of out_dir, as the lake's checkpoint folder.
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    assert (tmp_path / "train_config.json").is_file()


@pytest.mark.parametrize("architecture", ["decoder_only", "encoder_only", "encoder_decoder"])
def test_every_architecture_trains_through_the_same_loop(tiny_corpus, tmp_path, architecture):
    result = train(tiny_config(tiny_corpus, tmp_path, architecture, steps=6, log_every=3, eval_every=0,
                               checkpoint_every=6, eval_batches=1))
    assert [h["step"] for h in result.history] == [3, 6]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert torch.isfinite(torch.tensor(result.eval_metrics["val_loss"]))
    assert ckpt.load_checkpoint(tmp_path)[1].architecture == architecture


def test_token_files_from_another_tokenizer_are_refused(tiny_corpus, tmp_path):
    other = train_tokenizer(["une autre phrase, un autre vocabulaire"] * 50, tmp_path / "other", vocab_size=60)
    with pytest.raises(TokenizerMismatchError, match="re-tokenize"):
        train(tiny_config(tiny_corpus, tmp_path / "run", tokenizer_path=str(other)))


def _positions(n_tokens: int, doc_starts: list[int]) -> PackedTokens:
    """A split whose token ids are their positions, so a window shows where it was cut from."""
    offsets = np.array([*doc_starts, n_tokens], dtype=np.uint64)
    return PackedTokens(np.arange(n_tokens, dtype=np.uint32), offsets, {})


def test_ranks_draw_windows_from_disjoint_halves_of_the_tokens():
    packed = _positions(1000, [0])
    for rank, (lo, hi) in enumerate([(0, 500), (500, 1000)]):
        windows = WindowSampler(packed, 33, 64, seed=0, rank=rank, world_size=2).next_batch()
        assert ((windows >= lo) & (windows < hi)).all()
        assert (windows.diff(dim=1) == 1).all()  # contiguous runs of the stream


def test_document_packing_starts_windows_at_document_starts_of_this_rank():
    packed = _positions(1000, [0, 100, 250, 400, 700, 900])
    windows = WindowSampler(packed, 33, 64, seed=0, rank=1, world_size=2, packing="documents").next_batch()
    assert set(windows[:, 0].tolist()) == {100, 400, 900}  # documents 1, 3, 5


def test_a_time_budget_stops_early_and_still_checkpoints_and_evaluates(tiny_corpus, tmp_path):
    config = tiny_config(tiny_corpus, tmp_path, steps=100_000, log_every=5, checkpoint_every=100_000,
                         max_seconds=0.0)
    result = train(config)
    assert result.step == 1  # the first step already spends the budget
    assert [p.name for p in steps.list_checkpoints(steps.state_dir(tmp_path))] == ["step-0000001"]
    assert result.eval_metrics["val_loss"] > 0 and (tmp_path / "model.safetensors").exists()


def test_a_sparse_model_trains_through_the_loop_and_logs_its_routing(tiny_corpus, tmp_path):
    model = ModelConfig(n_layer=2, n_head=2, d_model=64, block_size=32, moe_experts=4)
    result = train(tiny_config(tiny_corpus, tmp_path, model=model, steps=100, log_every=10, eval_every=0,
                               checkpoint_every=100, eval_batches=2))
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < first["loss"] - 0.5
    assert {"moe_aux_loss", "moe_z_loss", "moe_dropped", "moe_max_load"} <= set(last)
    assert 1.0 <= last["moe_aux_loss"] <= 4.0 and 0.25 <= last["moe_max_load"] <= 1.0
    loaded, config = ckpt.load_checkpoint(tmp_path)
    assert config.moe_experts == 4 and len(loaded.moe_layers()) == 2
    assert math.isfinite(result.eval_metrics["val_loss"])
