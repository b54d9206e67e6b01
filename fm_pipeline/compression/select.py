"""Which candidate to publish: the smallest (or fastest) whose perplexity stays within the quality budget.

Candidates are metric dicts with at least `name`, `size_bytes`, `latency_ms_per_token` and the budget metric
(`domain_ppl_ratio`: new ÷ uncompressed). The uncompressed model (ratio 1) is always within budget, so there
is always an answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OBJECTIVES = ("size", "speed")


def within_budget(candidate: dict[str, Any], max_ppl_ratio: float, metric: str = "domain_ppl_ratio") -> bool:
    value = candidate.get(metric)
    return value is not None and value == value and value <= max_ppl_ratio  # NaN fails


def select(
    candidates: Sequence[dict[str, Any]], objective: str = "size", max_ppl_ratio: float = 1.02,
    metric: str = "domain_ppl_ratio",
) -> dict[str, Any]:
    """The best candidate within budget: by size on disk then latency ("size"), or by latency then size
    ("speed"); remaining ties go to the better perplexity, then the name."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    eligible = [c for c in candidates if within_budget(c, max_ppl_ratio, metric)]
    if not eligible:
        raise ValueError(f"no candidate has {metric} <= {max_ppl_ratio} (the uncompressed model should)")
    if objective == "size":
        def key(c: dict[str, Any]) -> tuple:
            return (c["size_bytes"], c["latency_ms_per_token"], c[metric], c["name"])
    else:
        def key(c: dict[str, Any]) -> tuple:
            return (c["latency_ms_per_token"], c["size_bytes"], c[metric], c["name"])
    return min(eligible, key=key)
