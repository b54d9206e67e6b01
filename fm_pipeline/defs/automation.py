"""Nightly reruns: what notices changes, and what reruns.

- `corpus_folders_sensor` (every minute) observes the raw and domain corpus folders and records a new data
  version for each source or domain whose files were added, removed or changed (content hashes cached by
  size and mtime, so an unchanged folder costs a `stat` per file).
- `nightly_rerun` (02:00, time zone from `FM_PIPELINE_TIMEZONE`, default UTC) runs the job
  `observe_corpus_folders`, which observes both folders hashing every byte again.
- Two automation sensors evaluate each asset's `RERUN_ON_CHANGE` condition and launch runs for the asset
  partitions that have a reason: an input with a new data version, a new code version, or newly missing. A
  rerun whose output is byte-identical reports the same data version, so nothing below it reruns.
  `rerun_models_on_change` covers the assets that train (tagged `workload: training`), and its runs carry
  `dagster/max_runtime`; `rerun_data_on_change` covers everything else.

All four start running when `FM_PIPELINE_AUTOMATION=on` (the compose deployment sets it); otherwise they
start stopped and can be turned on in the UI (Automation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import dagster as dg

from fm_pipeline.defs.assets.corpus_files import DATA_VERSION_TAG, FOLDERS, hash_cache, observe
from fm_pipeline.defs.policies import IO_RETRY, MAX_RUNTIME_TAG, TRAINING_MAX_RUNTIME_S, TRAINING_TAGS, WORKLOAD_TAG

NIGHTLY_CRON = "0 2 * * *"
AUTOMATION_ENV = "FM_PIPELINE_AUTOMATION"
TIMEZONE_ENV = "FM_PIPELINE_TIMEZONE"


def automation_status() -> dg.DefaultSensorStatus:
    """RUNNING when `FM_PIPELINE_AUTOMATION` is on/true/1, else STOPPED (turn on in the UI)."""
    on = os.environ.get(AUTOMATION_ENV, "").strip().lower() in ("1", "on", "true", "yes")
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def schedule_status() -> dg.DefaultScheduleStatus:
    running = automation_status() == dg.DefaultSensorStatus.RUNNING
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def nightly_timezone() -> str:
    """`FM_PIPELINE_TIMEZONE` (an IANA name such as Europe/Paris), else UTC; an unknown name is an error."""
    name = os.environ.get(TIMEZONE_ENV, "").strip() or "UTC"
    ZoneInfo(name)  # raises ZoneInfoNotFoundError for a name the tz database does not know
    return name


@dg.op(retry_policy=IO_RETRY, out={})
def observe_folders() -> Iterator[dg.AssetObservation]:
    """Observe both folders (raw_files and domain_files, every partition), hashing every byte."""
    for key in FOLDERS:
        yield from observe(key)


@dg.job(description="Observe the raw and domain corpus folders: one data version per source and domain, from "
                    "every file's name, size and content hash. Automation reruns what a changed version makes stale.")
def observe_corpus_folders() -> None:
    observe_folders()

nightly_rerun = dg.ScheduleDefinition(
    name="nightly_rerun",
    job=observe_corpus_folders,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=nightly_timezone(),
    default_status=schedule_status(),
    description="At 02:00 (FM_PIPELINE_TIMEZONE, default UTC): observe the corpus folders with full content "
                "hashing; the automation sensors then rerun exactly what changed and what depends on it.",
)


@dg.sensor(
    name="corpus_folders_sensor",
    minimum_interval_seconds=60,
    default_status=automation_status(),
    description="Notices new, removed or changed files in the raw and domain corpus folders and records the "
                "new data version of each source or domain that changed.",
)
def corpus_folders_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    cache = hash_cache()
    changed: list[dg.AssetObservation] = []
    versions: dict[str, str] = {}
    for key in FOLDERS:
        for observation in observe(key, cache):
            version = observation.tags[DATA_VERSION_TAG]
            versions[f"{key.to_user_string()}[{observation.partition}]"] = version
            if _latest_version(context.instance, key, observation.partition) != version:
                changed.append(observation)
    cache.save()
    cursor = json.dumps(versions, sort_keys=True)
    if not changed:
        return dg.SkipReason(f"no new or changed files ({cache.hits} unchanged, {cache.misses} hashed)")
    context.log.info("changed: " + ", ".join(f"{o.asset_key.to_user_string()}[{o.partition}]" for o in changed))
    return dg.SensorResult(asset_events=changed, cursor=cursor)


def _latest_version(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str | None:
    record = instance.get_latest_data_version_record(key, is_source=True, partition_key=partition)
    if record is None:
        return None
    event = record.event_log_entry.asset_observation or record.event_log_entry.asset_materialization
    return (event.tags or {}).get(DATA_VERSION_TAG) if event else None


TRAINING_SELECTION = dg.AssetSelection.tag(WORKLOAD_TAG, TRAINING_TAGS[WORKLOAD_TAG])

rerun_data_on_change = dg.AutomationConditionSensorDefinition(
    "rerun_data_on_change",
    target=dg.AssetSelection.all() - TRAINING_SELECTION,
    default_status=automation_status(),
    minimum_interval_seconds=30,
    description="Reruns corpus and tokenizer asset partitions whose inputs have a new data version or whose code "
                "version changed (each asset's automation condition says why).",
)

rerun_models_on_change = dg.AutomationConditionSensorDefinition(
    "rerun_models_on_change",
    target=TRAINING_SELECTION,
    default_status=automation_status(),
    minimum_interval_seconds=30,
    run_tags={MAX_RUNTIME_TAG: str(TRAINING_MAX_RUNTIME_S)},
    description="Retrains models whose inputs have a new data version or whose code version changed; its runs "
                f"are stopped by run monitoring after {TRAINING_MAX_RUNTIME_S // 3600} h.",
)
