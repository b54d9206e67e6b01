"""Scores of the downstream tasks: exact-match entity spans from BIO tags (as seqeval's default IOB2 chunking)
and macro-averaged F1 over classes."""

from __future__ import annotations

from collections.abc import Sequence


def bio_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, first, last token) of every chunk: a chunk begins at B-X, or at I-X not continuing a chunk of type
    X, and runs over the I-X tags that follow."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and start is not None and label == kind
        if start is not None and not continues:
            spans.add((kind, start, i - 1))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and not continues):
            start, kind = i, label
    return spans


def span_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over exact spans (type, start and end must all match)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sequences but {len(pred)} predicted")
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred, strict=True):
        if len(g) != len(p):
            raise ValueError(f"sequence of {len(g)} gold tags but {len(p)} predicted")
        gs, ps = bio_spans(g), bio_spans(p)
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over the classes in gold or predictions (a class predicted but never
    true scores 0), so a rare class counts as much as a common one."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predicted")
    classes = sorted(set(gold) | set(pred))
    if not classes:
        return 0.0
    scores = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = sum(p == c for p in pred), sum(g == c for g in gold)
        scores.append(2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0)
    return sum(scores) / len(scores)
