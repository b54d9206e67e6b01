"""Materialize every asset, every partition, in dependency order, into the persistent Dagster instance, then
print where the time went.

`make run` calls this so a fresh clone ends with a full lake and a run history the UI shows. A Dagster run
targets one partition key, so the graph becomes a short list of runs: consecutive assets that share a
partitioning run together, one run per partition key (each source's raw and filtered corpus, the
deduplicated corpus with its balanced shards, each domain's corpus, the tokenizer through pretraining, each
domain's adaptation and compression). Every asset still waits for all partitions of what comes before it.

`--profile thorough` also runs the comparisons (the pretrained model's sparse counterpart, every adaptation
strategy, the thorough compression sweep); the default publishes the same kind of models, checked the same way,
without them.

Dynamically partitioned assets (`language_adapted_checkpoint`, one partition per language `balanced_shards`
found) run last, for the keys the profile selects: none by default, every language in `thorough`, or the ones
`--languages` names.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from fm_pipeline.definitions import defs
from fm_pipeline.defs.run_profiles import LANGUAGE_ASSET, PARTITIONS, PROFILES, merge_run_configs
from fm_pipeline.defs.run_times import render, step_times, summarize


@dataclass(frozen=True)
class RunGroup:
    """Assets that run together, one run per partition key (`[None]` when unpartitioned)."""

    assets: tuple[dg.AssetKey, ...]
    partitions: tuple[str | None, ...]
    dynamic: str | None = None
    """The name of the dynamic partitions the group runs over; its keys are read when the group runs."""

    def label(self, partition: str | None) -> str:
        names = "+".join(k.to_user_string() for k in self.assets)
        return names + (f"[{partition}]" if partition else "")


def plan_runs(graph: dg.AssetGraph | None = None, wanted: set[dg.AssetKey] | None = None) -> list[RunGroup]:
    """The runs that materialize `wanted` (default: every materializable asset), in dependency order: assets by
    topological level, then by name. An asset joins the previous group when it has the same partitions and reads
    that group's assets partition for partition; otherwise it starts a group that runs after every partition of
    the groups before it, so a step that reads sibling partitions of an earlier asset (as the domain probe reads
    every domain's corpus) finds them all. Dynamically partitioned assets, and what depends on them, come after
    every other group: their keys exist only once their upstream ran, and placed last they do not split the
    runs of the assets around them."""
    graph = graph or defs.resolve_asset_graph()
    dynamic = {k for k in graph.materializable_asset_keys
               if isinstance(graph.get(k).partitions_def, dg.DynamicPartitionsDefinition)}
    deferred = {k for k in graph.materializable_asset_keys
                if k in dynamic or any(u in dynamic for u in graph.upstream_key_iterator(k))}
    groups: list[tuple[list[dg.AssetKey], dg.PartitionsDefinition | None]] = []
    for last in (False, True):
        for level in graph.toposorted_asset_keys_by_level:
            for key in sorted(level, key=lambda k: k.to_user_string()):
                node = graph.get(key)
                if not node.is_materializable or (wanted is not None and key not in wanted) or \
                        (key in deferred) != last:
                    continue
                if groups and _joins(graph, key, *groups[-1]):
                    groups[-1][0].append(key)
                else:
                    groups.append(([key], node.partitions_def))
    return [RunGroup(tuple(keys), (), p.name) if isinstance(p, dg.DynamicPartitionsDefinition)
            else RunGroup(tuple(keys), tuple(p.get_partition_keys()) if p else (None,)) for keys, p in groups]


def _joins(graph: dg.AssetGraph, key: dg.AssetKey, keys: list[dg.AssetKey],
           partitions: dg.PartitionsDefinition | None) -> bool:
    node = graph.get(key)
    if node.partitions_def != partitions:
        return False
    same_run = [parent for parent in node.parent_keys if parent in keys]
    return partitions is None or all(
        isinstance(graph.get_partition_mapping(key, parent), dg.IdentityPartitionMapping) for parent in same_run)


def observe_sources(instance: dg.DagsterInstance) -> str:
    """Observe the raw and domain corpus folders (their data versions), as the nightly schedule does."""
    result = defs.resolve_job_def("observe_corpus_folders").execute_in_process(instance=instance)
    return result.run_id


def selected_keys(instance: dg.DagsterInstance, group: RunGroup,
                  partitions: Mapping[str, Sequence[str] | None]) -> tuple[str | None, ...]:
    """The partition keys a group runs for: its static keys, or for dynamic partitions the instance's keys that
    `partitions` selects for the group's first asset (None: every key; an asset it does not name: none)."""
    if group.dynamic is None:
        return group.partitions
    names = [k.to_user_string() for k in group.assets if k.to_user_string() in partitions]
    keys = instance.get_dynamic_partitions(group.dynamic)
    if not names:
        return ()
    chosen = partitions[names[0]]
    if chosen is None:
        return tuple(keys)
    picked = set(chosen)
    return tuple(k for k in keys if k in picked)


def materialize_all(
    instance: dg.DagsterInstance, run_config: Mapping[str, dict] | None = None, upto: str | None = None,
    partitions: Mapping[str, Sequence[str] | None] | None = None,
) -> list[str]:
    """Observe the input folders, then launch the runs of `plan_runs`; returns the run ids. Stops at the first
    failed run. `run_config` maps an asset key to the run config of its runs (the launchpad's YAML as a dict;
    the configs of assets that run together are merged); `upto` limits the runs to that asset and what it
    depends on; `partitions` picks the keys of dynamically partitioned assets (see `selected_keys`; none when
    not given). Observing first records the folders' data versions as the inputs of raw_corpus and
    domain_corpus, so automation does not rebuild them on its first observation."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    wanted = None if upto is None else {dg.AssetKey(upto), *graph.upstream_key_iterator(dg.AssetKey(upto))}
    run_ids: list[str] = [observe_sources(instance)]
    for group in plan_runs(graph, wanted):
        config = merge_run_configs((run_config or {}).get(k.to_user_string()) for k in group.assets)
        for partition in selected_keys(instance, group, partitions or {}):
            label = group.label(partition)
            print(f"materializing {label}", flush=True)
            result = job.execute_in_process(
                instance=instance, asset_selection=list(group.assets), partition_key=partition,
                raise_on_error=False, run_config=config or None,
            )
            run_ids.append(result.run_id)
            if not result.success:
                raise SystemExit(f"{label} failed: see run {result.run_id} in the Dagster UI")
    return run_ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fm_pipeline.materialize", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default",
                        help="default: fast, publishes checked models; thorough: also runs the comparisons")
    parser.add_argument("--upto", help="materialize only this asset and what it depends on")
    parser.add_argument("--languages", help="language_adapted_checkpoint's partitions: a comma-separated list, or "
                                            "'all' (default: none, or all with --profile thorough)")
    args = parser.parse_args(argv)
    partitions = dict(PARTITIONS[args.profile])
    if args.languages:
        partitions[LANGUAGE_ASSET] = None if args.languages == "all" else args.languages.split(",")
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        runs = materialize_all(instance, PROFILES[args.profile], upto=args.upto, partitions=partitions)
        total = time.perf_counter() - started
        rows = summarize(step_times(instance, runs), total)
    print(f"\n{len(runs)} runs succeeded in {total:.0f} s (profile {args.profile}). Wall time by step:\n")
    print(render(rows, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
