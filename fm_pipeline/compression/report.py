"""The comparison of candidates as a Markdown table and a size-versus-perplexity plot (PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = (
    ("method", "name", "{}"),
    ("size (MB)", "size_bytes", "{:.2f}"),
    ("size ×", "size_ratio", "{:.3f}"),
    ("weights", "params", "{:,}"),
    ("domain ppl", "domain_ppl", "{:.2f}"),
    ("ppl ×", "domain_ppl_ratio", "{:.4f}"),
    ("domain bpb", "domain_bpb", "{:.3f}"),
    ("general ppl", "general_ppl", "{:.2f}"),
    ("general ppl ×", "general_ppl_ratio", "{:.4f}"),
    ("general bpb", "general_bpb", "{:.3f}"),
    ("ms/token (b=1)", "latency_ms_per_token", "{:.2f}"),
    ("speedup", "speedup", "{:.2f}"),
    ("tokens/s (b=8)", "throughput_tokens_per_s", "{:.0f}"),
    ("throughput ×", "throughput_ratio", "{:.2f}"),
)


def _cell(value: Any, fmt: str, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key == "size_bytes":
        value = value / 1e6
    return fmt.format(value)


def markdown_table(rows: Sequence[dict[str, Any]], chosen: str | None = None) -> str:
    """One row per candidate; the published one in bold."""
    header = "| " + " | ".join(title for title, _, _ in COLUMNS) + " |"
    rule = "|" + "|".join(" --- " for _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        cells = [_cell(row.get(key), fmt, key) for _, key, fmt in COLUMNS]
        if row.get("name") == chosen:
            cells[0] = f"**{cells[0]}** (published)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def size_ppl_plot(rows: Sequence[dict[str, Any]], path: Path, chosen: str | None = None,
                  max_ppl_ratio: float | None = None) -> Path:
    """Size on disk against domain perplexity, one labelled point per candidate, the budget as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    baseline = next((r for r in rows if r.get("size_ratio") == 1.0 and r.get("domain_ppl_ratio") == 1.0), None)
    for row in rows:
        x, y = row["size_bytes"] / 1e6, row["domain_ppl"]
        ax.scatter([x], [y], s=60 if row["name"] == chosen else 30, color="C3" if row["name"] == chosen else "C0")
        ax.annotate(row["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if baseline is not None and max_ppl_ratio is not None:
        ax.axhline(baseline["domain_ppl"] * max_ppl_ratio, color="C2", linestyle="--", linewidth=1,
                   label=f"quality budget (ppl × {max_ppl_ratio:g})")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("size on disk (MB)")
    ax.set_ylabel("domain perplexity")
    ax.set_title("compression candidates: size vs perplexity")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
