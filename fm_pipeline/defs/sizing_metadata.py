"""pretrained_checkpoint's sizing metadata: the model against Chinchilla, the memory it takes to train and
serve at 32/16/8/4 bits, how `architecture: auto` decided, and, for a sparse model, its expert routing."""

from __future__ import annotations

from typing import Any

import dagster as dg

from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.sizing import chinchilla_report, memory_table

MEMORY_COLUMNS = ["bits", "weights", "gradients", "master_weights", "optimizer", "activations",
                  "activations_checkpointed", "training", "kv_cache", "inference"]


def sizing_metadata(config: ModelConfig, batch_size: int, tokens_seen: int, history: list[dict[str, float]],
                    decision: dict[str, Any] | None) -> dict[str, Any]:
    """`sizing/chinchilla` and `sizing/memory` (MiB, one micro-batch of `batch_size` × block_size for
    activations and KV cache), `architecture/decision` when it was `auto`, and `moe/*` from the last logged
    step of a sparse model."""
    report = chinchilla_report(config, tokens_seen)
    chinchilla = [{"quantity": k, "value": f"{v:,.0f}" if k != "tokens_per_parameter" else f"{v:.2f}"}
                  for k, v in report.items()]
    out: dict[str, Any] = {
        "parameters/active": int(report["active_parameters"]),
        "sizing/chinchilla": dg.MetadataValue.md(markdown_table(chinchilla, ["quantity", "value"])),
        "sizing/memory": dg.MetadataValue.md(
            f"MiB; activations and KV cache for a batch of {batch_size} x {config.block_size} tokens\n\n"
            + markdown_table(memory_table(config, batch_size), MEMORY_COLUMNS)),
    }
    if decision:
        rows = [{"reason": r} for r in decision["reasons"]]
        out["architecture/decision"] = dg.MetadataValue.md(
            f"**{decision['architecture']}** (votes: {decision['votes']})\n\n" + markdown_table(rows, ["reason"], 240))
    last = next((h for h in reversed(history) if "moe_aux_loss" in h), None)
    if last:
        out.update({f"moe/{k.removeprefix('moe_')}": float(v) for k, v in last.items() if k.startswith("moe_")})
    return out
