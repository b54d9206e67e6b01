"""Evaluation: perplexity and bits per UTF-8 byte, overall and per language, and sampled outputs."""

from fm_pipeline.evaluation.perplexity import evaluate_packed, evaluate_texts, read_docs
from fm_pipeline.evaluation.sampling import sample

__all__ = ["evaluate_packed", "evaluate_texts", "read_docs", "sample"]
