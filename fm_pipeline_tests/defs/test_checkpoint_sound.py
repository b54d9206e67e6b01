"""`checkpoint_sound` on real checkpoints trained on the tiny corpus: it fails an untrained model (whose val loss
a uniform guess over the vocabulary would have let through), a model that learned only token frequencies, and
a diverged one, and passes one that uses context."""

import math
import shutil

import dagster as dg
import numpy as np
import pytest

from fm_pipeline.defs.assets.pretrained_checkpoint import LOSS_PLOT, checkpoint_sound
from fm_pipeline.defs.resources import LakeResource
from fm_pipeline.evaluation.baselines import token_counts
from fm_pipeline.lake.lineage import write_stage_record
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum
from fm_pipeline.training.loop import train
from fm_pipeline_tests.training.tiny_corpus import tiny_config


def _lake_with(tiny_corpus, tmp_path, steps: int, val_loss: float | None = None):
    """A lake holding the tiny corpus's token files and a checkpoint trained `steps` steps, recorded with its
    measured val loss (or `val_loss` when given)."""
    lake = tmp_path / "lake"
    shutil.copytree(tiny_corpus.tokens, lake / "tokenized_corpus")
    out = lake / "pretrained_checkpoint"
    result = train(tiny_config(tiny_corpus, out, steps=steps, eval_every=steps, eval_batches=8,
                               checkpoint_every=steps))
    (out / LOSS_PLOT).parent.mkdir(parents=True)
    (out / LOSS_PLOT).write_bytes(b"png")
    measured = result.eval_metrics["val_loss"]
    write_stage_record(out, asset="pretrained_checkpoint", lake_root=lake, inputs=[],
                       outputs=[out / WEIGHTS, out / CONFIG],
                       extra={"val_loss": measured if val_loss is None else val_loss,
                              "tokenizer_sha256": tokenizer_checksum(tiny_corpus.tokenizer)})
    return lake, measured


def _check(lake) -> dg.AssetCheckResult:
    return checkpoint_sound(lake=LakeResource(root=str(lake)))


def test_a_trained_model_passes_and_beats_the_unigram_entropy(tiny_corpus, tmp_path):
    lake, val_loss = _lake_with(tiny_corpus, tmp_path, steps=300)
    result = _check(lake)
    assert result.passed, result.metadata["problems"]
    assert val_loss < result.metadata["unigram_entropy"].value - 0.1


def test_an_untrained_model_fails_though_it_is_below_a_uniform_guess(tiny_corpus, tmp_path):
    lake, val_loss = _lake_with(tiny_corpus, tmp_path, steps=1)
    config = load_checkpoint(lake / "pretrained_checkpoint")[1]
    assert val_loss < 1.1 * math.log(config.vocab_size), "the old rule (1.1 x ln vocab) let this model through"
    result = _check(lake)
    assert not result.passed
    assert "unigram entropy" in result.metadata["problems"].value[0]


@pytest.mark.parametrize("val_loss", [float("nan"), float("inf")])
def test_a_diverged_model_fails(tiny_corpus, tmp_path, val_loss):
    lake, _ = _lake_with(tiny_corpus, tmp_path, steps=1, val_loss=val_loss)
    assert not _check(lake).passed


def test_the_loss_of_a_model_that_learned_only_token_frequencies_fails(tiny_corpus, tmp_path):
    """What a unigram model fitted on the train tokens scores on the val tokens: the check must not accept it."""
    counts = token_counts(PackedTokens.open(tiny_corpus.tokens, "train").tokens, 400) + 0.5
    val = np.asarray(PackedTokens.open(tiny_corpus.tokens, "val").tokens)
    unigram_model_loss = float(-np.log(counts[val] / counts.sum()).mean())
    lake, _ = _lake_with(tiny_corpus, tmp_path, steps=1, val_loss=unigram_model_loss)
    result = _check(lake)
    assert not result.passed
    assert unigram_model_loss > result.metadata["unigram_entropy"].value
