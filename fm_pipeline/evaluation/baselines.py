"""The baseline a trained language model must beat: the unigram entropy of the tokens it is scored on.

A model that learned token frequencies and nothing else scores, at best, the entropy of the token distribution
(in nats per token, the unit of `val_loss`). Anything that uses context does better, so a checkpoint whose
validation loss is not clearly below it has learned nothing worth publishing. A uniform guess, ln(vocab), is no
baseline: a model that only learned frequencies beats it by a wide margin.

The plug-in entropy of a sample is biased low when the vocabulary is large next to the sample (9k validation
tokens over an 8k vocabulary read 0.13 nats low), which would fail good models on small corpora; the
Miller-Madow correction, (K - 1) / 2N for K distinct tokens in N, removes the first-order bias.
"""

from __future__ import annotations

import numpy as np

CHUNK_TOKENS = 1 << 22
"""Tokens counted per step, so a memory-mapped split of any size is read in bounded memory."""


def token_counts(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each id in [0, vocab_size) occurs in `tokens` (a memory map is read chunk by chunk); an id
    outside the vocabulary raises, since the tokens then belong to another tokenizer."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(tokens), CHUNK_TOKENS):
        chunk = np.bincount(np.asarray(tokens[start:start + CHUNK_TOKENS]), minlength=vocab_size)
        if len(chunk) > vocab_size:
            raise ValueError(f"token id {len(chunk) - 1} is outside a vocabulary of {vocab_size}")
        counts += chunk
    return counts


def unigram_entropy(counts: np.ndarray) -> float:
    """Entropy in nats of the token distribution behind `counts`, Miller-Madow corrected."""
    seen = counts[counts > 0].astype(np.float64)
    total = seen.sum()
    if total == 0:
        raise ValueError("no tokens to measure")
    p = seen / total
    return float(-(p * np.log(p)).sum() + (len(seen) - 1) / (2 * total))
