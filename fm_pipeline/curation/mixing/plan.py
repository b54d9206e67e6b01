"""The mix plan: how much of each language the training set sees, as per-language sampling rates.

Two ways to set the mix, both over **bytes** of UTF-8 text per language (bytes, not documents, because
documents vary in length by orders of magnitude across sources, and bytes are what the model trains on;
tokens would need the tokenizer, which is trained after this stage):

- target weights (`DEFAULT_WEIGHTS`): named languages get their share; `"*"` is split among every other
  language in proportion to its bytes, so the long tail keeps its relative sizes instead of being
  upsampled equally. Languages named but absent from the data are dropped and the targets renormalized
  over the languages present.
- temperature sampling (XLM-R, mT5): p_l proportional to n_l^alpha, alpha = 0.3.

A plan turns targets into per-language sampling rates. The largest language (with a positive target)
keeps its data exactly (rate 1); every other rate follows from the targets, capped at `max_repeats`
copies of a document. A capped language cannot reach its target, so the plan reports the achievable share
beside the target; `balance` then reports the share it achieved.

The tokenizer's training sample uses the same targets (`tokenization.train`), so this module is kept free of
the balance stage's I/O: it needs only byte counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DEFAULT_WEIGHTS: dict[str, float] = {
    "en": 0.30,
    "zh": 0.15,
    "es": 0.10,
    "ar": 0.08,
    "hi": 0.07,
    "ko": 0.05,
    "*": 0.25,
}
DEFAULT_ALPHA = 0.3


@dataclass(frozen=True)
class MixConfig:
    """How to mix: target `weights`, or temperature `alpha`; weights are the default when neither is set."""

    weights: Mapping[str, float] | None = None
    alpha: float | None = None
    max_repeats: float = 4.0


@dataclass
class MixPlan:
    """Per-language sampling rates (expected training copies per document) and the shares they give."""

    rates: dict[str, float]
    bytes_in: dict[str, int]
    target: dict[str, float]
    achievable: dict[str, float]
    max_repeats: float
    method: str
    alpha: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "alpha": self.alpha,
            "max_repeats": self.max_repeats,
            "languages": {
                lang: {
                    "bytes_in": self.bytes_in[lang],
                    "rate": self.rates[lang],
                    "target": self.target[lang],
                    "achievable": self.achievable[lang],
                }
                for lang in sorted(self.rates)
            },
        }


def target_shares(
    counts_by_lang_bytes: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    alpha: float | None = None,
) -> dict[str, float]:
    """Target share of training bytes per language with data (the shares sum to 1)."""
    present = {lang: n for lang, n in counts_by_lang_bytes.items() if n > 0}
    if alpha is not None:
        if weights is not None:
            raise ValueError("give target weights or a temperature alpha, not both")
        raw = {lang: n**alpha for lang, n in present.items()}
    else:
        weights = DEFAULT_WEIGHTS if weights is None else weights
        named = {lang: float(w) for lang, w in weights.items() if lang != "*" and lang in present}
        others = {lang: n for lang, n in present.items() if lang not in named}
        rest = float(weights.get("*", 0.0))
        others_total = sum(others.values())
        raw = {**named, **{lang: rest * n / others_total for lang, n in others.items()}}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("the targets give no language with data a positive share")
    return {lang: raw[lang] / total for lang in sorted(raw)}


def plan_mix(
    counts_by_lang_bytes: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    alpha: float | None = None,
    max_repeats: float = 4.0,
) -> MixPlan:
    """Sampling rates that reach the target shares as closely as `max_repeats` allows, keeping the
    largest language's data as it is (rate 1). A language listed with 0 bytes gets rate 1 and share 0."""
    if max_repeats < 1:
        raise ValueError("max_repeats must be at least 1")
    shares = target_shares(counts_by_lang_bytes, weights, alpha)
    bytes_in = {lang: int(n) for lang, n in sorted(counts_by_lang_bytes.items())}
    target = {lang: shares.get(lang, 0.0) for lang in bytes_in}
    anchor = min((lang for lang in shares if shares[lang] > 0), key=lambda lang: (-bytes_in[lang], lang))
    total_out = bytes_in[anchor] / target[anchor]
    rates = {lang: min(max_repeats, target[lang] * total_out / n) if n else 1.0 for lang, n in bytes_in.items()}
    rates[anchor] = 1.0
    out = {lang: rates[lang] * bytes_in[lang] for lang in bytes_in}
    achievable = {lang: out[lang] / sum(out.values()) for lang in bytes_in}
    return MixPlan(
        rates=rates,
        bytes_in=bytes_in,
        target=target,
        achievable=achievable,
        max_repeats=max_repeats,
        method="temperature" if alpha is not None else "weights",
        alpha=alpha,
    )


def add_lang_bytes(totals: dict[str, int], table: pa.Table) -> None:
    """Add the UTF-8 bytes of `table`'s text per language to `totals` (columnar)."""
    table = pa.table({"lang": table.column("lang"), "n": pc.binary_length(table.column("text"))})
    for row in table.group_by("lang").aggregate([("n", "sum")]).to_pylist():
        totals[row["lang"]] = totals.get(row["lang"], 0) + row["n_sum"]


def lang_bytes(shards: Sequence[Path]) -> dict[str, int]:
    """UTF-8 bytes of text per language over the shards (columnar: no Python object per document)."""
    totals: dict[str, int] = {}
    for shard in shards:
        add_lang_bytes(totals, pq.read_table(shard, columns=["lang", "text"]))
    return dict(sorted(totals.items()))
