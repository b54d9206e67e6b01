"""Plots people would rather look at than read, as small PNG files (matplotlib, Agg backend, no display).

Each function takes plain numbers and a path, writes the PNG and returns the path; `markdown_image` turns a
PNG into Markdown with the image inline (a base64 data URI), which the Dagster UI renders in metadata.
PNGs are written without a creation time or software version, so the same numbers give the same bytes.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_PNG_METADATA = {"Software": None}
_DPI = 80


def _pyplot() -> Any:
    """pyplot on the Agg backend, imported at the first plot rather than with this module: the code location
    imports this module, and pyplot would cost every load of it a quarter second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI, metadata=_PNG_METADATA)
    _pyplot().close(fig)
    return path


def language_mix(before: Mapping[str, float], after: Mapping[str, float], path: Path,
                 target: Mapping[str, float] | None = None, title: str = "Language mix") -> Path:
    """Grouped bars: each language's share of bytes before and after balancing (and the target, if given).
    `before` and `after` are amounts per language (bytes, documents...); they are normalised to shares."""
    langs = sorted(set(before) | set(after) | set(target or {}), key=lambda lang: (-before.get(lang, 0), lang))
    series = [("before", before), ("after", after)] + ([("target", target)] if target else [])
    width = 0.8 / len(series)
    fig, ax = _pyplot().subplots(figsize=(max(5.0, 0.45 * len(langs) + 2), 3.2))
    for i, (label, amounts) in enumerate(series):
        total = sum(amounts.values()) or 1.0
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(langs))]
        ax.bar(xs, [amounts.get(lang, 0) / total for lang in langs], width, label=label)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_ylabel("share of bytes")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def loss_curve(train: Sequence[tuple[float, float]], path: Path, val: Sequence[tuple[float, float]] = (),
               title: str = "Loss") -> Path:
    """Training loss (and validation loss, if given) by step; each series is (step, loss) pairs."""
    fig, ax = _pyplot().subplots(figsize=(5.5, 3.2))
    if train:
        ax.plot(*zip(*train, strict=True), label="train", marker="." if len(train) < 30 else None)
    if val:
        ax.plot(*zip(*val, strict=True), label="val", marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def size_vs_perplexity(points: Sequence[Mapping[str, Any]], path: Path, title: str = "Size vs perplexity",
                       chosen: str | None = None, budget_ppl: float | None = None) -> Path:
    """One labelled point per model: `size_mb` on x, `ppl` on y (log scale when the range is wide); the `chosen`
    label stands out, and `budget_ppl` is drawn as the quality budget's line."""
    fig, ax = _pyplot().subplots(figsize=(5.5, 3.5))
    for point in points:
        picked = point["label"] == chosen
        ax.scatter(point["size_mb"], point["ppl"], s=60 if picked else 40, color="C3" if picked else "C0")
        ax.annotate(str(point["label"]), (point["size_mb"], point["ppl"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ppls = [p["ppl"] for p in points if p["ppl"] > 0]
    if ppls and max(ppls) / min(ppls) > 20 and all(math.isfinite(p) for p in ppls):
        ax.set_yscale("log")
    if budget_ppl is not None:
        ax.axhline(budget_ppl, color="C2", linestyle="--", linewidth=1, label="quality budget")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("size (MB)")
    ax.set_ylabel("perplexity")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def markdown_image(path: Path, alt: str) -> str:
    """Markdown showing the PNG inline (base64 data URI), then the file's path for those who want the file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})\n\n`{path}`"
