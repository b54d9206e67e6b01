"""The filter stage end to end, as a user runs it: `dagster asset materialize` of `filtered_corpus[common_crawl]`
through the project's default executor (steps in their own processes, the group step's pool on every core),
on the same raw shards as datatrove's cascade with the same number of workers. Prints one JSON object.

    python -m benchmarks.filter_asset [--mb 18] [--web-only] [--processes 2] [--start-method forkserver|spawn]

The documents are those of `benchmarks.curation` (or, with `--web-only`, the Common Crawl pages alone),
replicated to `--mb` MB and ingested into `raw_corpus/common_crawl` of a fresh lake whose MLflow store exists
(creating its schema costs about 1.5 s, once per lake). "run_seconds" is the run's duration as the Dagster UI
shows it, run start to run success: step processes, the filter, the PII audit, the checks, lineage and the MLflow
run. "command_seconds" adds the command's own start-up (loading the code location). datatrove's figure is its
`LocalPipelineExecutor` run (`benchmarks.datatrove_peer.filter_cascade`); ours_over_datatrove is datatrove's
seconds over ours. `--start-method spawn` measures Dagster's own default start method for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow

from benchmarks import datatrove_peer
from benchmarks.curation import SOURCE, _jsonl, _nbytes, load_rows, replicate
from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.defs.run_times import step_times
from fm_pipeline.lake.parquet_io import list_shards
from tools.corpora import SHARED_CORPORA

REPO = Path(__file__).resolve().parents[1]


def _rows(corpora: Path, web_only: bool, mb: float) -> list[dict[str, str]]:
    base = ([{"id": r["id"], "text": r["text"]} for r in _jsonl(corpora / "web" / "common_crawl_en.jsonl")]
            if web_only else load_rows(corpora))
    return replicate(base, int(mb * 1e6))


def _materialize(home: Path, processes: int, start_method: str) -> dict[str, Any]:
    """One `dagster asset materialize` of filtered_corpus[common_crawl] into `home`; its run and step times."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**os.environ, "FM_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.MlflowClient(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}").search_experiments()
    start = {"forkserver": {"forkserver": {"preload_modules": ["fm_pipeline.definitions"]}},
             "spawn": {"spawn": {}}}[start_method]
    config = {"ops": {"filtered_corpus": {"config": {"processes": processes}}},
              "execution": {"config": {"max_concurrent": processes, "start_method": start}}}
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "fm_pipeline.definitions",
               "--select", "filtered_corpus", "--partition", SOURCE, "--config-json", json.dumps(config)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    command_seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dagster asset materialize failed:\n{done.stderr[-3000:]}")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_run_records()
        steps = {t.step: round(t.seconds, 2) for t in step_times(instance, [run.dagster_run.run_id])}
        run_seconds = run.end_time - run.start_time
    return {"run_seconds": round(run_seconds, 2), "command_seconds": round(command_seconds, 2), "steps": steps,
            "outside_steps_seconds": round(run_seconds - sum(steps.values()), 2)}


def benchmark(corpora: Path, mb: float, shard_mb: float, web_only: bool, processes: int, start_method: str,
              peer: bool) -> dict[str, Any]:
    rows = _rows(corpora, web_only, mb)
    text_mb = sum(_nbytes(r["text"]) for r in rows) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "input").mkdir()
        with (root / "input" / "docs.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        raw = root / "home" / "lake" / "raw_corpus" / SOURCE
        ingest_source(SOURCE, root / "input", raw, IngestConfig(shard_bytes=int(shard_mb * 1e6)))
        ours = _materialize(root / "home", processes, start_method)
        started = time.perf_counter()
        filter_source(SOURCE, list_shards(raw), root / "library", FilterConfig(processes=processes))
        library_seconds = time.perf_counter() - started
        result: dict[str, Any] = {
            "corpus": {"docs": len(rows), "mb": round(text_mb, 3), "web_only": web_only,
                       "raw_shards": len(list_shards(raw))},
            "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
            "processes": processes, "start_method": start_method,
            "asset": ours,
            "library_filter_source_seconds": round(library_seconds, 2),
        }
        if peer:
            if missing := datatrove_peer.missing():
                result["datatrove"] = {"skipped": f"{', '.join(missing)} not installed (pip install -e '.[peers]')"}
            else:
                theirs = datatrove_peer.filter_cascade(raw, root / "datatrove", processes)
                result["datatrove"] = {"version": datatrove_peer.version(), "seconds": round(theirs["seconds"], 2),
                                       "kept": theirs["kept"]}
                result["ours_over_datatrove"] = {
                    "asset_run": round(theirs["seconds"] / ours["run_seconds"], 2),
                    "asset_command": round(theirs["seconds"] / ours["command_seconds"], 2),
                    "library_stage": round(theirs["seconds"] / library_seconds, 2),
                }
        result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--mb", type=float, default=18.0)
    parser.add_argument("--shard-mb", type=float, default=1.5)
    parser.add_argument("--web-only", action="store_true", help="Common Crawl pages only")
    parser.add_argument("--processes", type=int, default=2, help="workers, ours and datatrove's")
    parser.add_argument("--start-method", choices=["forkserver", "spawn"], default="forkserver")
    parser.add_argument("--no-peer", action="store_true", help="skip datatrove")
    args = parser.parse_args()
    print(json.dumps(benchmark(args.corpora, args.mb, args.shard_mb, args.web_only, args.processes,
                               args.start_method, not args.no_peer), indent=2))


if __name__ == "__main__":
    main()
