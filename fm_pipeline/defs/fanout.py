"""Fan-out by shard as Dagster steps: a graph-backed asset whose plan op yields one `DynamicOutput` per group
of input shards (`lake.fanout`), a group op mapped over them (one step each: a process under the multiprocess
executor, a pod under `k8s_job_executor`), and a publish op that collects them and materializes the asset.

    plan ──▶ group[group_00000] ─┐
         ──▶ group[group_00001] ─┼─▶ publish (the asset's MaterializeResult, its checks, lineage, MLflow run)
         ──▶ group[group_00002] ─┘
         └─────── plan ──────────▶

What steps hand each other is small JSON (the plan, a group's summary), written by `LakeJsonIOManager` under
`$FM_PIPELINE_HOME/dagster/io/`: on the lake's shared volume, so a pod reads what another pod wrote, and never
unpickled. The data itself stays in the lake. A stage wires itself with `plan_outs` and `emit_plan` (plan op),
`group_out` and `unreadable_shards_fail_at_once` (group op), `check_outs` and `graph_outputs` (publish op) and
`one_config` (the graph's config); the group op's library function skips a group whose completion marker
exists, so a retry, a re-execution from failure or a new run redoes only the groups that did not finish.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from fm_pipeline.defs.configs import MB
from fm_pipeline.lake import paths
from fm_pipeline.lake.atomic import atomic_write_text
from fm_pipeline.lake.fanout import WorkPlan

FANOUT_IO = "fanout_io_manager"
"""The resource key of the IO manager for the values fanned-out steps pass each other."""


class FanOutConfig(dg.Config):
    """How a fanned-out stage cuts its input: groups of about `shard_group_mb`, at most `max_steps` of them."""

    max_steps: int = 32
    """At most this many group steps (pods on Kubernetes); groups grow past `shard_group_mb` to stay under it."""
    shard_group_mb: float = 256.0
    """Input per group step: large enough that the work outweighs a step's start-up (well under a second forked
    from the multiprocess executor's forkserver, a pod's scheduling and image pull on a cluster). A corpus
    smaller than this is one group."""

    def group_bytes(self) -> int:
        return max(1, round(self.shard_group_mb * MB))


class LakeJsonIOManager(dg.ConfigurableIOManager):
    """Op outputs as JSON files `<root>/<run id>/<step key>/<output>[/<mapping key>].json`, `root` defaulting to
    `$FM_PIPELINE_HOME/dagster/io` (the shared volume on Kubernetes). Only for JSON values: plans and summaries."""

    root: str | None = None

    def _path(self, identifier: Sequence[str]) -> Path:
        base = Path(self.root) if self.root else paths.pipeline_home() / "dagster" / "io"
        return base.joinpath(*identifier).with_suffix(".json")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        atomic_write_text(self._path(context.get_identifier()), json.dumps(obj, ensure_ascii=False))

    def load_input(self, context: dg.InputContext) -> Any:
        return json.loads(self._path(context.upstream_output.get_identifier()).read_text(encoding="utf-8"))


def plan_outs() -> dict[str, dg.Out]:
    """The plan op's outputs: `items`, one per group (mapped over), and `plan`, the whole plan (for publish)."""
    return {"items": dg.DynamicOut(dict, io_manager_key=FANOUT_IO), "plan": dg.Out(dict, io_manager_key=FANOUT_IO)}


def emit_plan(plan: WorkPlan) -> Iterator[dg.DynamicOutput | dg.Output]:
    """One dynamic output per group, keyed by the group (`group_00003`), then the plan itself."""
    for item in plan.items():
        yield dg.DynamicOutput(item.to_dict(), mapping_key=item.group.key, output_name="items",
                               metadata={"shards": len(item.group.shards), "bytes": item.group.bytes})
    yield dg.Output(plan.to_dict(), output_name="plan", metadata={
        "groups": len(plan.groups), "shards": sum(len(g.shards) for g in plan.groups),
        "bytes": sum(g.bytes for g in plan.groups), "work_area": dg.MetadataValue.path(str(plan.area))})


def group_out() -> dg.Out:
    """A group op's output: its summary (counts, and whether a finished group was reused)."""
    return dg.Out(dict, io_manager_key=FANOUT_IO)


@contextmanager
def unreadable_shards_fail_at_once(group: str) -> Iterator[None]:
    """A group whose input is not readable Parquet fails without retries (a retry reads the same bytes), so
    the run stops at once; the other groups finish, and re-executing from failure redoes this group alone."""
    try:
        yield
    except pa.ArrowInvalid as exc:
        raise dg.Failure(f"{group}: an input shard is not readable Parquet: {exc}", allow_retries=False) from exc


def check_outs(specs: Sequence[dg.AssetCheckSpec]) -> dict[str, dg.Out]:
    """The publish op's outputs: `result` (the asset) and one per asset check, under the names graph_asset
    gives them, so the op's `MaterializeResult` carries the check results as a plain asset's does."""
    return {"result": dg.Out(dg.Nothing), **{spec.get_python_identifier(): dg.Out(dg.Nothing) for spec in specs}}


def graph_outputs(published: Any, specs: Sequence[dg.AssetCheckSpec]) -> dict[str, Any]:
    """What a graph_asset returns from its publish op's outputs (see `check_outs`)."""
    names = ["result", *(spec.get_python_identifier() for spec in specs)]
    return {name: getattr(published, name) for name in names}


def one_config(config: type[dg.Config], *ops: str) -> dg.ConfigMapping:
    """The graph's config, as the launchpad shows it for a plain asset (`ops: {<asset>: {config: ...}}`), given
    whole to each of `ops`."""
    return dg.ConfigMapping(config_fn=lambda values: {op: {"config": dict(values)} for op in ops},
                            config_schema=config.to_config_schema())
