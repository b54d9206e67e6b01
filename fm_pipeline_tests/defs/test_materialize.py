"""`make run`'s plan and report: the graph becomes one run per partition key of each group of consecutive assets
that share a partitioning, profiles are run configs, and the step wall times come back from the event log."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from fm_pipeline.definitions import defs
from fm_pipeline.defs.run_profiles import PARTITIONS, PROFILES, merge_run_configs
from fm_pipeline.defs.run_times import OUTSIDE_STEPS, StepTime, render, step_times, summarize
from fm_pipeline.lake.paths import DOMAINS, SOURCES
from fm_pipeline.materialize import main, plan_runs, selected_keys


def _names(groups) -> list[tuple[list[str], tuple]]:
    return [([k.to_user_string() for k in g.assets], g.partitions) for g in groups]


def test_the_pipeline_runs_as_six_groups_in_dependency_order():
    groups = plan_runs()
    assert _names(groups) == [
        (["raw_corpus", "filtered_corpus"], tuple(SOURCES)),
        (["deduped_corpus", "balanced_shards"], (None,)),
        (["domain_corpus"], tuple(DOMAINS)),  # every domain's corpus before any adaptation reads them all
        (["tokenizer", "tokenized_corpus", "pretrained_checkpoint"], (None,)),
        (["domain_adapted_checkpoint", "compressed_model"], tuple(DOMAINS)),
        (["language_adapted_checkpoint"], ()),  # dynamic partitions last: their keys come from balanced_shards
    ]
    assert [g.dynamic for g in groups] == [None] * 5 + ["language"]


def test_dynamic_partition_keys_are_read_when_the_group_runs_and_selected_per_profile():
    (group,) = [g for g in plan_runs() if g.dynamic]
    with dg.instance_for_test() as instance:
        assert selected_keys(instance, group, PARTITIONS["thorough"]) == ()
        instance.add_dynamic_partitions("language", ["de", "en", "fr"])
        assert selected_keys(instance, group, PARTITIONS["default"]) == ()
        assert selected_keys(instance, group, PARTITIONS["thorough"]) == ("de", "en", "fr")
        assert selected_keys(instance, group, {"language_adapted_checkpoint": ["fr", "xx"]}) == ("fr",)
        assert selected_keys(instance, group, {}) == ()


def test_upto_keeps_only_an_asset_and_what_it_needs():
    full = defs.resolve_asset_graph()
    wanted = {dg.AssetKey("balanced_shards"), *full.upstream_key_iterator(dg.AssetKey("balanced_shards"))}
    assert _names(plan_runs(full, wanted)) == [
        (["raw_corpus", "filtered_corpus"], tuple(SOURCES)),
        (["deduped_corpus", "balanced_shards"], (None,)),
    ]


letters = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=letters)
def first() -> None: ...


@dg.asset(partitions_def=letters, deps=[first])
def same_key() -> None: ...


@dg.asset(partitions_def=letters, deps=[dg.AssetDep(first, partition_mapping=dg.AllPartitionMapping())])
def every_key() -> None: ...


@dg.asset(deps=[same_key])
def total() -> None: ...


def test_an_asset_that_reads_every_partition_of_its_input_waits_for_all_of_them():
    graph = dg.Definitions(assets=[first, same_key, every_key, total]).resolve_asset_graph()
    assert _names(plan_runs(graph)) == [
        (["first"], ("a", "b")),
        (["every_key", "same_key"], ("a", "b")),  # every_key reads all of first; same_key may run beside it
        (["total"], (None,)),
    ]


def test_profiles_are_run_configs_that_merge_per_run():
    assert PROFILES["default"] == {  # make run scores no downstream task: those fine-tunes only score
        "domain_adapted_checkpoint": {"ops": {"domain_adapted_checkpoint": {"config": {"downstream_strategies": []}}}}}
    thorough = PROFILES["thorough"]
    assert thorough["domain_adapted_checkpoint"] == {"ops": {"domain_adapted_checkpoint": {"config": {
        "compare": ["vocab_expansion", "lora", "gradual_unfreezing", "discriminative_lr"],
        "downstream_strategies": ["discriminative_lr", "full", "gradual_unfreezing", "knowledge_distillation",
                                  "multi_task_learning"]}}}}
    assert thorough["compressed_model"] == {"ops": {"compressed_model": {"config": {"profile": "thorough"}}}}
    assert thorough["language_adapted_checkpoint"] == {"ops": {"language_adapted_checkpoint": {"config": {
        "compare": ["adapter", "lora", "output_head", "alignment"]}}}}
    merged = merge_run_configs([thorough["domain_adapted_checkpoint"], None, thorough["compressed_model"],
                                {"ops": {"compressed_model": {"config": {"objective": "speed"}}}}])
    assert merged == {"ops": {
        "domain_adapted_checkpoint": {"config": {
            "compare": ["vocab_expansion", "lora", "gradual_unfreezing", "discriminative_lr"],
            "downstream_strategies": ["discriminative_lr", "full", "gradual_unfreezing", "knowledge_distillation",
                                      "multi_task_learning"]}},
        "compressed_model": {"config": {"profile": "thorough", "objective": "speed"}}}}


def test_thorough_compares_the_pretrained_model_with_its_sparse_counterpart_and_default_does_not():
    assert "pretrained_checkpoint" not in PROFILES["default"]  # make run trains one pretrained model
    config = PROFILES["thorough"]["pretrained_checkpoint"]
    assert config == {"ops": {"pretrained_checkpoint": {"ops": {"prepare_pretraining": {"config": {
        "compare": ["moe_4"]}}}}}}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("pretrained_checkpoint")})
    resolved = dg.validate_run_config(job, config)["ops"]  # the asset's job takes it, at the op that reads it
    assert resolved["pretrained_checkpoint.prepare_pretraining"]["config"]["compare"] == ["moe_4"]


def test_summary_sums_each_step_over_partitions_and_keeps_the_time_outside_steps():
    times = [StepTime("raw_corpus", "books", 2.0), StepTime("filtered_corpus", "books", 6.0),
             StepTime("raw_corpus", "code", 2.0), StepTime("pretrained_checkpoint.train_model", None, 30.0)]
    rows = summarize(times, total_s=50.0)
    assert [(r["step"], r["partitions"], r["wall_s"], r["share"]) for r in rows] == [
        ("raw_corpus", 2, "4.0", "8.0%"),
        ("filtered_corpus", 1, "6.0", "12.0%"),
        ("pretrained_checkpoint.train_model", "-", "30.0", "60.0%"),
        (OUTSIDE_STEPS, "-", "10.0", "20.0%"),
    ]
    assert [r["share"] for r in summarize(times)] == ["10.0%", "15.0%", "75.0%"]
    assert render(rows, 50.0).splitlines()[-1] == "| **total** | | 50.0 | 100% |"


def test_step_times_come_from_the_event_log_of_each_run():
    job = dg.Definitions(assets=[first, same_key, total]).resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        runs = [job.execute_in_process(instance=instance, asset_selection=[first.key, same_key.key],
                                       partition_key=p).run_id for p in ("a", "b")]
        runs.append(job.execute_in_process(instance=instance, asset_selection=[total.key]).run_id)
        times = step_times(instance, runs)
    assert [(t.step, t.partition) for t in times] == [
        ("first", "a"), ("same_key", "a"), ("first", "b"), ("same_key", "b"), ("total", None)]
    assert all(t.seconds >= 0 for t in times)


@pytest.mark.slow
def test_make_run_upto_raw_corpus_prints_the_step_table(fm_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]):
    dagster_home = fm_home / "dagster"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    assert main(["--upto", "raw_corpus"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("materializing")] == [
        f"raw_corpus[{s}]" for s in SOURCES]
    assert f"{1 + len(SOURCES)} runs succeeded" in out
    table = out[out.index("| step |"):].splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "observe_folders", "raw_corpus", OUTSIDE_STEPS, "**total**"]
    assert table[3].split("|")[2].strip() == str(len(SOURCES))
