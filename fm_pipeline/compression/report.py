"""The comparison of candidates as a Markdown table."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    ("build s", "build_seconds", "{:.1f}"),
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
