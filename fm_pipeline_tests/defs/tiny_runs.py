"""Launchpad configs that keep end-to-end tests short while every blocking check still has to pass: a
tokenizer as small as the sample corpus allows (a smaller vocabulary falls back to that, with a warning) and a
2-layer model trained long enough to beat the val tokens' unigram entropy, as `checkpoint_sound` demands."""

TINY_TOKENIZER = {"ops": {"tokenizer": {"config": {"vocab_size": 1024}}}}
TINY_PRETRAINING = {"ops": {"pretrained_checkpoint": {"ops": {"prepare_pretraining": {"config": {
    "steps": 120, "n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 64, "batch_size": 16, "lr": 1e-2}}}}}}
RUN_CONFIG = {"tokenizer": TINY_TOKENIZER, "pretrained_checkpoint": TINY_PRETRAINING}
"""Run config by asset key, for `materialize_all` and per-asset runs."""
