"""Operations: what every asset declares (group, owner, kinds, code version, automation, checks), retries and the
`gpu` pool, the nightly schedule and its time zone, the folder sensor, and the automation condition's rules on
a small graph."""

import importlib
import json
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from fm_pipeline.definitions import defs
from fm_pipeline.defs import automation, policies
from fm_pipeline.defs.assets.corpus_files import DOMAIN_FILES, RAW_FILES
from fm_pipeline.lake.fingerprint import input_version
from fm_pipeline.lake.paths import DOMAINS, SOURCES

CONTRACT_GROUPS = {
    "raw_corpus": "corpus", "filtered_corpus": "corpus", "deduped_corpus": "corpus", "balanced_shards": "corpus",
    "tokenizer": "tokenizer", "tokenized_corpus": "tokenizer", "pretrained_checkpoint": "pretraining",
    "domain_corpus": "adaptation", "domain_adapted_checkpoint": "adaptation", "compressed_model": "compression",
    "language_adapted_checkpoint": "adaptation",
}
BLOCKING = {
    ("raw_corpus", "accounting"), ("filtered_corpus", "accounting"), ("filtered_corpus", "no_pii_in_kept"),
    ("deduped_corpus", "accounting"), ("balanced_shards", "accounting"), ("balanced_shards", "train_val_disjoint"),
    ("tokenizer", "round_trip"), ("tokenized_corpus", "matches_tokenizer"), ("domain_corpus", "accounting"),
    ("domain_corpus", "train_val_disjoint"), ("pretrained_checkpoint", "checkpoint_sound"),
    ("language_adapted_checkpoint", "language_improved_others_kept"),
}
SAMPLE = Path(__file__).resolve().parents[2] / "fm_pipeline" / "sample_data"


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def _present(graph) -> list[str]:
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    return [k for k in CONTRACT_GROUPS if k in keys]


def test_every_contract_asset_declares_what_the_ui_shows(graph):
    present = _present(graph)
    assert present[:8] == list(CONTRACT_GROUPS)[:8], "the curation, tokenizer and pretraining assets are all here"
    for key in present:
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == CONTRACT_GROUPS[key], key
        assert node.description and len(node.description) > 40, key
        assert node.owners and all(o.startswith("team:") for o in node.owners), key
        assert node.kinds and node.kinds <= policies.KINDS, (key, node.kinds)
        assert node.code_version, f"{key} has no code_version"
        assert node.automation_condition is not None, f"{key} has no automation condition"
        assert node.check_keys, f"{key} has no asset check"
    assert {n for n in ("pretrained_checkpoint", "domain_adapted_checkpoint", "compressed_model",
                        "language_adapted_checkpoint") if n in present} \
        <= {k.to_user_string() for k in graph.materializable_asset_keys
            if graph.get(k).tags.get(policies.WORKLOAD_TAG) == "training"}


def test_blocking_checks_guard_what_must_not_flow_on(graph):
    checks = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k) for k in graph.asset_check_keys}
    assert {k for k, spec in checks.items() if spec.blocking} >= BLOCKING
    assert not checks[("balanced_shards", "language_mix")].blocking, "an off-target mix warns, it does not block"


def test_corpus_folders_are_observable_sources_upstream_of_the_corpus(graph):
    for source_key, asset, partitions in ((RAW_FILES, "raw_corpus", SOURCES), (DOMAIN_FILES, "domain_corpus", DOMAINS)):
        node = graph.get(source_key)
        assert node.is_observable and not node.is_materializable
        assert node.partitions_def.get_partition_keys() == list(partitions)
        assert source_key in graph.get(dg.AssetKey(asset)).parent_keys
        assert node.owners and node.group_name in policies.GROUPS


def test_retries_backoff_gpu_pool_and_training_limits():
    job = defs.resolve_implicit_global_asset_job_def()
    for name in ("raw_corpus", "balanced_shards", "tokenizer", "domain_corpus"):
        policy = job.graph.node_named(name).definition.retry_policy
        assert policy == policies.IO_RETRY, name
    for name, steps in (("filtered_corpus", 3), ("tokenized_corpus", 3), ("deduped_corpus", 9)):
        ops = job.graph.node_named(name).definition.node_defs  # fanned out by shard: every step retries
        assert len(ops) == steps and {op.retry_policy for op in ops} == {policies.IO_RETRY}, name
    assert policies.IO_RETRY.backoff == dg.Backoff.EXPONENTIAL and policies.IO_RETRY.max_retries == 3
    train = job.graph.node_named("pretrained_checkpoint").definition.node_named("train_model").definition
    assert train.pool == "gpu"
    assert train.retry_policy == policies.TRAINING_RETRY and train.retry_policy.backoff == dg.Backoff.EXPONENTIAL
    limits = json.loads(train.tags["dagster-k8s/config"])["container_config"]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    models = automation.rerun_models_on_change
    assert models.run_tags == {"dagster/max_runtime": str(policies.TRAINING_MAX_RUNTIME_S)}


def test_nightly_schedule_runs_at_two_in_the_configured_time_zone(monkeypatch: pytest.MonkeyPatch):
    assert automation.nightly_rerun.cron_schedule == "0 2 * * *"
    assert automation.nightly_rerun.execution_timezone == "UTC"
    monkeypatch.setenv("FM_PIPELINE_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("FM_PIPELINE_AUTOMATION", "on")
    try:
        reloaded = importlib.reload(automation)
        schedule = reloaded.nightly_rerun
        assert schedule.execution_timezone == "Europe/Paris"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        assert reloaded.corpus_folders_sensor.default_status == dg.DefaultSensorStatus.RUNNING
        first = next(cron_string_iterator(datetime(2030, 6, 1, 12, tzinfo=ZoneInfo("UTC")).timestamp(),
                                          schedule.cron_schedule, schedule.execution_timezone))
        assert (first.hour, first.minute, str(first.tzinfo)) == (2, 0, "Europe/Paris")
        assert first.astimezone(ZoneInfo("UTC")).hour == 0, "02:00 in Paris in June is 00:00 UTC"
        context = dg.build_schedule_context(scheduled_execution_time=first)
        (request,) = schedule.evaluate_tick(context).run_requests
        assert (request.job_name or schedule.job_name) == "observe_corpus_folders"
        monkeypatch.setenv("FM_PIPELINE_TIMEZONE", "Mars/Olympus_Mons")
        with pytest.raises(ZoneInfoNotFoundError):
            reloaded.nightly_timezone()
    finally:
        monkeypatch.delenv("FM_PIPELINE_TIMEZONE")
        monkeypatch.delenv("FM_PIPELINE_AUTOMATION")
        importlib.reload(automation)
    assert automation.corpus_folders_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_observe_job_records_each_folder_version(fm_home: Path):
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("observe_corpus_folders").execute_in_process(instance=instance).success
        for key, root, partitions in ((RAW_FILES, SAMPLE / "raw", SOURCES), (DOMAIN_FILES, SAMPLE / "domain", DOMAINS)):
            for partition in partitions:
                record = instance.get_latest_data_version_record(key, is_source=True, partition_key=partition)
                expected = input_version(root / partition)[0]
                assert record.event_log_entry.asset_observation.tags["dagster/data_version"] == expected


def test_folder_sensor_notices_new_and_changed_files_only(fm_home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    raw = tmp_path / "raw"
    shutil.copytree(SAMPLE / "raw", raw)
    monkeypatch.setenv("FM_RAW_CORPUS", str(raw))
    with dg.instance_for_test() as instance:
        def tick() -> dg.SensorResult | dg.SkipReason:
            result = automation.corpus_folders_sensor(dg.build_sensor_context(instance=instance))
            for event in getattr(result, "asset_events", []):
                instance.report_runless_asset_event(event)  # what the daemon does with a sensor's events
            return result

        first = tick()
        assert sorted((e.asset_key.to_user_string(), e.partition) for e in first.asset_events) == sorted(
            [("raw_files", s) for s in SOURCES] + [("domain_files", d) for d in DOMAINS])
        assert len(json.loads(first.cursor)) == len(SOURCES) + len(DOMAINS)
        assert isinstance(tick(), dg.SkipReason)
        assert (fm_home / "cache" / "input_hashes.json").is_file()

        (raw / "books" / "en" / "new_chapter.txt").write_text("A new chapter arrived overnight.")
        (changed,) = tick().asset_events
        assert (changed.asset_key, changed.partition) == (RAW_FILES, "books")
        assert changed.tags["dagster/data_version"] == input_version(raw / "books")[0]
        shutil.rmtree(raw / "reference_data")
        (removed,) = tick().asset_events
        assert (removed.partition, removed.metadata["files"].value) == ("reference_data", 0)
        assert isinstance(tick(), dg.SkipReason)


def test_rerun_on_change_needs_a_reason():
    """On a small graph: source -> raw (partitioned) -> clean (partitioned) -> merged -> model. A changed source
    partition reruns its raw and clean partitions; `merged` reruns only if clean's data version changed; a new
    code version reruns that asset and, through its new data version, what depends on it."""
    parts = dg.StaticPartitionsDefinition(["a", "b"])
    state = {"source": {"a": "1", "b": "1"}, "clean_version": {"a": "x", "b": "y"}, "code": "1"}

    @dg.multi_observable_source_asset(specs=[dg.AssetSpec("source", partitions_def=parts, skippable=True)])
    def source():
        for p in parts.get_partition_keys():
            yield dg.AssetObservation(asset_key="source", partition=p,
                                      tags={"dagster/data_version": state["source"][p]})

    @dg.asset(partitions_def=parts, deps=["source"], automation_condition=policies.RERUN_ON_CHANGE, code_version="1")
    def raw(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version=dg.DataVersion(state["source"][context.partition_key]))

    @dg.asset(partitions_def=parts, deps=[raw], automation_condition=policies.RERUN_ON_CHANGE, code_version="1")
    def clean(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version=dg.DataVersion(state["clean_version"][context.partition_key]))

    def build(code: str) -> dg.Definitions:
        @dg.asset(deps=[clean], automation_condition=policies.RERUN_ON_CHANGE, code_version=code)
        def merged() -> dg.MaterializeResult:
            return dg.MaterializeResult(data_version=dg.DataVersion(f"{state['clean_version']}-{code}"))

        @dg.asset(deps=[merged], automation_condition=policies.RERUN_ON_CHANGE, code_version="1")
        def model() -> None:
            return None

        observe = dg.define_asset_job("observe", selection=[source.key])
        return dg.Definitions(assets=[source, raw, clean, merged, model], jobs=[observe])

    def settle(definitions: dg.Definitions, instance: dg.DagsterInstance, cursor):
        job = definitions.resolve_implicit_global_asset_job_def()
        order = {k: i for i, k in enumerate(definitions.resolve_asset_graph().toposorted_asset_keys)}
        ran = []
        while True:
            result = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=cursor)
            cursor = result.cursor
            requested = sorted(((k, p) for k in order for p in result.get_requested_partitions(k)),
                               key=lambda kp: (order[kp[0]], kp[1] or ""))
            if not requested:
                return cursor, ran
            for key, partition in requested:
                assert job.execute_in_process(instance=instance, asset_selection=[key], partition_key=partition).success
                ran.append((key.to_user_string(), partition))

    definitions = build("1")
    with dg.instance_for_test() as instance:
        definitions.resolve_job_def("observe").execute_in_process(instance=instance)
        cursor, ran = settle(definitions, instance, None)
        assert ran == [], "the first tick only records where things stand"
        job = definitions.resolve_implicit_global_asset_job_def()
        for p in ("a", "b"):
            job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("raw"), dg.AssetKey("clean")],
                                   partition_key=p)
        job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("merged"), dg.AssetKey("model")])
        cursor, ran = settle(definitions, instance, cursor)
        assert ran == []

        definitions.resolve_job_def("observe").execute_in_process(instance=instance)
        assert settle(definitions, instance, cursor)[1] == [], "observed again, unchanged: nothing to do"

        state["source"]["a"] = "2"  # a new file in source a; clean's output for a is byte-identical
        definitions.resolve_job_def("observe").execute_in_process(instance=instance)
        cursor, ran = settle(definitions, instance, cursor)
        assert ran == [("raw", "a"), ("clean", "a")], "clean[a] has the same data version: merged stays"

        state["source"]["b"], state["clean_version"]["b"] = "2", "y2"
        definitions.resolve_job_def("observe").execute_in_process(instance=instance)
        cursor, ran = settle(definitions, instance, cursor)
        assert ran == [("raw", "b"), ("clean", "b"), ("merged", None), ("model", None)]

        definitions = build("2")  # merged's code changed
        cursor, ran = settle(definitions, instance, cursor)
        assert ran == [("merged", None), ("model", None)]
