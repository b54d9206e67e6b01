import math

import numpy as np
import pytest

from fm_pipeline.evaluation import baselines
from fm_pipeline.evaluation.baselines import token_counts, unigram_entropy


def test_unigram_entropy_is_the_plug_in_entropy_plus_the_miller_madow_term():
    # two tokens seen twice each: ln 2 nats, plus (K - 1) / 2N = 1/8
    assert unigram_entropy(np.array([2, 0, 2])) == pytest.approx(math.log(2) + 1 / 8)
    # one token only: no uncertainty, and no correction
    assert unigram_entropy(np.array([0, 5])) == 0.0
    with pytest.raises(ValueError, match="no tokens"):
        unigram_entropy(np.zeros(3, dtype=np.int64))


def test_token_counts_read_in_chunks_equal_one_bincount(monkeypatch):
    tokens = np.random.default_rng(0).integers(0, 50, size=10_001).astype(np.uint16)
    monkeypatch.setattr(baselines, "CHUNK_TOKENS", 1_000)
    assert token_counts(tokens, 64).tolist() == np.bincount(tokens, minlength=64).tolist()


def test_an_id_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="token id 9 is outside a vocabulary of 8"):
        token_counts(np.array([1, 9], dtype=np.uint16), 8)
