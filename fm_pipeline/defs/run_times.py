"""Where a materialization's time goes: each step's wall time read back from the Dagster event log (STEP_START
to STEP_SUCCESS or STEP_FAILURE, retries and their waits included), summed per step over partitions, with its
share of the whole. `make run` prints this table at the end; the same numbers are in each run's timeline in
the UI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from fm_pipeline.defs.tables import markdown_table

PARTITION_TAG = "dagster/partition"
OUTSIDE_STEPS = "(outside steps: run start-up, planning, event log)"
"""The row for the wall time no step accounts for."""
COLUMNS = ("step", "partitions", "wall_s", "share")
_ENDS = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)


@dataclass(frozen=True)
class StepTime:
    """One step of one run: its key (`asset` or `graph_asset.op`), the run's partition, and its wall time."""

    step: str
    partition: str | None
    seconds: float


def step_times(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> list[StepTime]:
    """Every finished step of `run_ids`, in run and event order, from the instance's event log."""
    times = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        partition = run.tags.get(PARTITION_TAG) if run else None
        started: dict[str, float] = {}
        for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, *_ENDS}):
            if entry.step_key is None:
                continue
            if entry.dagster_event_type == dg.DagsterEventType.STEP_START:
                started.setdefault(entry.step_key, entry.timestamp)  # a retry restarts; its wait counts
            elif entry.step_key in started:
                times.append(StepTime(entry.step_key, partition, entry.timestamp - started.pop(entry.step_key)))
    return times


def summarize(times: Sequence[StepTime], total_s: float | None = None) -> list[dict[str, object]]:
    """One row per step key (in the order first seen): how many partitions ran it, the summed wall time, and its
    share of `total_s` (default: the steps' sum). With `total_s`, a last row holds the time outside any step."""
    order: dict[str, list[StepTime]] = {}
    for t in times:
        order.setdefault(t.step, []).append(t)
    steps_s = sum(t.seconds for t in times)
    total = steps_s if total_s is None else max(total_s, steps_s)
    rows = [{"step": step, "partitions": len({t.partition for t in group if t.partition}) or "-",
             "seconds": sum(t.seconds for t in group)} for step, group in order.items()]
    if total_s is not None:
        rows.append({"step": OUTSIDE_STEPS, "partitions": "-", "seconds": total - steps_s})
    for row in rows:
        row["wall_s"] = f"{row['seconds']:.1f}"
        row["share"] = f"{row['seconds'] / total:.1%}" if total > 0 else "-"
    return rows


def render(rows: Sequence[dict[str, object]], total_s: float) -> str:
    """The rows as a Markdown table, with the total on the last line."""
    return markdown_table(list(rows), COLUMNS) + f"\n| **total** | | {total_s:.1f} | 100% |"
