"""The tiny corpus fixtures, shared by the training and evaluation tests."""

from fm_pipeline_tests.training.tiny_corpus import one_thread, tiny_corpus

__all__ = ["one_thread", "tiny_corpus"]
