"""Materialize every asset, every partition, in dependency order, into the persistent Dagster instance.

`make run` calls this so a fresh clone ends with a full lake and a run history the UI shows. Each asset
(and each partition of a partitioned asset) is one run, exactly as a backfill from the UI would launch it.
"""

from __future__ import annotations

import sys

import dagster as dg

from fm_pipeline.definitions import defs


def observe_sources(instance: dg.DagsterInstance) -> str:
    """Observe the raw and domain corpus folders (their data versions), as the nightly schedule does."""
    result = defs.resolve_job_def("observe_corpus_folders").execute_in_process(instance=instance)
    return result.run_id


def materialize_all(
    instance: dg.DagsterInstance, run_config: dict[str, dict] | None = None, upto: str | None = None,
) -> list[str]:
    """Observe the input folders, then run every asset in topological order; returns the run ids. Stops at the
    first failed run. `run_config` maps an asset key to the run config of its runs (the launchpad's YAML as a
    dict); `upto` limits the runs to that asset and what it depends on. Observing first records the folders'
    data versions as the inputs of raw_corpus and domain_corpus,
    so automation does not rebuild them on its first observation."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    wanted = None if upto is None else {dg.AssetKey(upto), *graph.upstream_key_iterator(dg.AssetKey(upto))}
    run_ids: list[str] = [observe_sources(instance)]
    for level in graph.toposorted_asset_keys_by_level:
        for key in sorted(level, key=lambda k: k.to_user_string()):
            node = graph.get(key)
            if not node.is_materializable or (wanted is not None and key not in wanted):
                continue
            partitions = node.partitions_def.get_partition_keys() if node.partitions_def else [None]
            for partition in partitions:
                label = key.to_user_string() + (f"[{partition}]" if partition else "")
                print(f"materializing {label}", flush=True)
                result = job.execute_in_process(
                    instance=instance, asset_selection=[key], partition_key=partition, raise_on_error=False,
                    run_config=(run_config or {}).get(key.to_user_string()),
                )
                run_ids.append(result.run_id)
                if not result.success:
                    raise SystemExit(f"{label} failed: see run {result.run_id} in the Dagster UI")
    return run_ids


def main() -> int:
    with dg.DagsterInstance.get() as instance:
        runs = materialize_all(instance)
    print(f"{len(runs)} runs succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
