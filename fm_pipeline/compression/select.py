"""Which candidate to publish, among those whose perplexity stays within the quality budget.

Candidates are metric dicts with at least `name`, `size_bytes`, `latency_ms_per_token`, `speedup` (fp32
latency ÷ the candidate's, at batch 1) and the budget metric (`domain_ppl_ratio`: new ÷ uncompressed). The
uncompressed model (ratio 1) is always within budget, so there is always an answer.

Objectives:
- "size_at_speed" (the default): the smallest of the candidates at least `min_speedup` times faster than fp32;
  when none is, the fastest. A model that is smaller but no faster (weight-only int4 dequantized to fp32 for its
  matmuls) is not worth publishing over one that is both, as users wait on latency.
- "size": the smallest; "speed": the fastest.

A missing or NaN number never qualifies: NaN perplexity is over budget, NaN speedup is not fast enough, NaN
latency ranks slowest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

OBJECTIVES = ("size_at_speed", "size", "speed")


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing, NaN or infinite value."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def within_budget(candidate: dict[str, Any], max_ppl_ratio: float, metric: str = "domain_ppl_ratio") -> bool:
    value = _number(candidate.get(metric))
    return value is not None and value <= max_ppl_ratio


def fast_enough(candidate: dict[str, Any], min_speedup: float) -> bool:
    value = _number(candidate.get("speedup"))
    return value is not None and value >= min_speedup


@dataclass(frozen=True)
class Selection:
    """The chosen candidate, the rule that picked it ("size_at_speed", "size", "speed", or "fastest" when
    "size_at_speed" found no candidate fast enough) and why, in words."""

    candidate: dict[str, Any]
    rule: str
    reason: str

    @property
    def name(self) -> str:
        return self.candidate["name"]


def _by_size(metric: str):
    def key(c: dict[str, Any]) -> tuple:
        latency = _number(c.get("latency_ms_per_token"))
        return (c["size_bytes"], math.inf if latency is None else latency, c[metric], c["name"])
    return key


def _by_speed(metric: str):
    def key(c: dict[str, Any]) -> tuple:
        latency = _number(c.get("latency_ms_per_token"))
        return (math.inf if latency is None else latency, c["size_bytes"], c[metric], c["name"])
    return key


def select(
    candidates: Sequence[dict[str, Any]], objective: str = "size_at_speed", max_ppl_ratio: float = 1.02,
    metric: str = "domain_ppl_ratio", min_speedup: float = 1.3,
) -> Selection:
    """The candidate to publish. Ties on the first key go to the other axis (latency for size, size for
    latency), then the better perplexity, then the name."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    eligible = [c for c in candidates if within_budget(c, max_ppl_ratio, metric)]
    if not eligible:
        raise ValueError(f"no candidate has {metric} <= {max_ppl_ratio} (the uncompressed model should)")
    budget = f"{metric} <= {max_ppl_ratio:g}"
    names = ", ".join(c["name"] for c in eligible)
    if objective == "size":
        return Selection(min(eligible, key=_by_size(metric)), "size", f"the smallest with {budget} ({names})")
    if objective == "speed":
        return Selection(min(eligible, key=_by_speed(metric)), "speed", f"the fastest with {budget} ({names})")
    fast = [c for c in eligible if fast_enough(c, min_speedup)]
    if fast:
        return Selection(min(fast, key=_by_size(metric)), "size_at_speed",
                         f"the smallest with {budget} and speedup >= {min_speedup:g} "
                         f"({', '.join(c['name'] for c in fast)})")
    return Selection(min(eligible, key=_by_speed(metric)), "fastest",
                     f"none with {budget} ({names}) has speedup >= {min_speedup:g}: the fastest of them")
