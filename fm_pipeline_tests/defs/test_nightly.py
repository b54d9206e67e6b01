"""Nightly reruns, the way the daemon does them: the `nightly_rerun` schedule's run observes the corpus
folders, then automation ticks (`evaluate_automation_conditions`, what the automation sensors evaluate) launch
what has a reason to run, tick after tick, until nothing does.

With nothing new, the nightly run materializes nothing and takes seconds. A new file in one source reruns
that source's partitions and exactly what depends on them: the other sources' partitions stay as they are.

The pipeline here is the contract's data path through `pretrained_checkpoint` and `domain_corpus` (the
model-adaptation assets share the same automation condition; training them twice more would only add
minutes)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from fm_pipeline.definitions import defs
from fm_pipeline.defs.automation import nightly_rerun
from fm_pipeline.lake.lineage import trace
from fm_pipeline.lake.paths import DOMAINS, SOURCES
from fm_pipeline_tests.defs.tiny_runs import RUN_CONFIG

pytestmark = pytest.mark.slow

ASSETS = ("raw_files", "domain_files", "raw_corpus", "filtered_corpus", "deduped_corpus", "balanced_shards",
          "tokenizer", "tokenized_corpus", "pretrained_checkpoint", "domain_corpus")
NEW_BOOK = """El faro del puerto viejo

Durante muchos años, el faro del puerto viejo fue la única luz que veían los pescadores al volver de noche.
Lo cuidaba un hombre silencioso llamado Tomás, que subía cada tarde los ciento doce escalones de la torre con
una lata de aceite y un trapo limpio. Nadie en el pueblo recordaba haberlo visto enfermo ni de mal humor.

Una noche de invierno, la tormenta arrancó las tejas de media calle y apagó todas las farolas del muelle. Los
barcos seguían en el mar. Tomás encendió la lámpara a mano, porque el motor se había quedado sin corriente, y
pasó la noche entera dando vueltas a la manivela para que el haz de luz no dejara de girar.

Al amanecer, cuando el último barco entró en el puerto, los pescadores subieron a buscarlo. Lo encontraron
dormido junto a la lámpara, con las manos llenas de ampollas y una sonrisa tranquila. Desde entonces, cada
invierno, el pueblo entero sube a la torre la noche más larga del año y enciende la luz entre todos.
"""


def _subset() -> dg.Definitions:
    """The project's definitions narrowed to ASSETS and their checks, with the project's resources."""
    keys = {dg.AssetKey(k) for k in ASSETS}
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and set(a.keys) <= keys]
    assert {k for a in assets for k in a.keys} == keys
    checks = [c for c in defs.asset_checks or [] if all(ck.asset_key in keys for ck in c.check_keys)]
    return dg.Definitions(assets=assets, asset_checks=checks, resources=defs.resources,
                          jobs=[defs.resolve_job_def("observe_corpus_folders")])


def _run(definitions: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> None:
    result = definitions.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[key], partition_key=partition, raise_on_error=False,
        run_config=RUN_CONFIG.get(key.to_user_string()))
    assert result.success, f"{key.to_user_string()}[{partition}] failed"
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert failed == [], f"{key.to_user_string()}[{partition}]: checks failed: {failed}"


def _nightly(definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """The schedule's tick at 02:00 and the run it requests."""
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2030, 1, 1, 2, 0, tzinfo=ZoneInfo("UTC")))
    (request,) = nightly_rerun.evaluate_tick(context).run_requests
    job = definitions.resolve_job_def(request.job_name or nightly_rerun.job_name)
    assert job.execute_in_process(instance=instance, tags=request.tags).success


def _automate(definitions: dg.Definitions, instance: dg.DagsterInstance,
              cursor: object) -> tuple[object, list[tuple[str, str | None]]]:
    """Automation ticks until nothing is requested, running each tick's requests in dependency order."""
    graph = definitions.resolve_asset_graph()
    order = {key: i for i, key in enumerate(graph.toposorted_asset_keys)}
    ran: list[tuple[str, str | None]] = []
    for _ in range(20):
        result = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=cursor)
        cursor = result.cursor
        requested = sorted(((key, partition) for key in graph.materializable_asset_keys
                            for partition in result.get_requested_partitions(key)),
                           key=lambda kp: (order[kp[0]], kp[1] or ""))
        if not requested:
            return cursor, ran
        for key, partition in requested:
            _run(definitions, instance, key, partition)
            ran.append((key.to_user_string(), partition))
    raise AssertionError(f"automation did not settle: {ran}")


def _materializations_after(instance: dg.DagsterInstance, storage_id: int) -> list[str]:
    return [key for key in ASSETS for _ in instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), after_storage_id=storage_id), limit=100).records]


def _last_materialization(instance: dg.DagsterInstance) -> int:
    return max(record.storage_id for key in ASSETS
               for record in instance.fetch_materializations(dg.AssetKey(key), limit=1).records)


@pytest.fixture()
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dg.Definitions, dg.DagsterInstance, Path]]:
    """The pipeline built once, from a copy of the sample corpus the test may add files to."""
    raw = tmp_path / "raw"
    shutil.copytree(Path(__file__).resolve().parents[2] / "fm_pipeline" / "sample_data" / "raw", raw)
    monkeypatch.setenv("FM_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FM_RAW_CORPUS", str(raw))
    for var in ("MLFLOW_TRACKING_URI", "FM_DOMAIN_CORPUS", "FM_PIPELINE_TIMEZONE"):
        monkeypatch.delenv(var, raising=False)
    definitions = _subset()
    with dg.instance_for_test() as instance:
        assert definitions.resolve_job_def("observe_corpus_folders").execute_in_process(instance=instance).success
        graph = definitions.resolve_asset_graph()
        for key in graph.toposorted_asset_keys:
            node = graph.get(key)
            if node.is_materializable:
                for partition in node.partitions_def.get_partition_keys() if node.partitions_def else [None]:
                    _run(definitions, instance, key, partition)
        yield definitions, instance, raw


def test_nightly_reruns_nothing_without_a_reason_and_exactly_what_a_new_file_changes(built, tmp_path):
    definitions, instance, raw = built
    cursor, ran = _automate(definitions, instance, None)  # the automation sensor's first tick
    assert ran == []

    # Night 1: nothing new, no code change.
    before = _last_materialization(instance)
    started = time.monotonic()
    _nightly(definitions, instance)
    cursor, ran = _automate(definitions, instance, cursor)
    seconds = time.monotonic() - started
    (tmp_path / "nightly_noop.json").write_text(json.dumps({"seconds": round(seconds, 2)}))
    print(f"nightly run with nothing new: {seconds:.1f} s, materialized {ran}")
    assert ran == [] and _materializations_after(instance, before) == []
    assert seconds < 60, f"the nightly run with nothing new took {seconds:.0f} s"

    # Night 2: one new file in one source.
    new_file = raw / "books" / "es" / "el_faro_del_puerto_viejo.txt"
    new_file.write_text(NEW_BOOK, encoding="utf-8")
    _nightly(definitions, instance)
    cursor, ran = _automate(definitions, instance, cursor)
    assert sorted(ran, key=str) == sorted([
        ("raw_corpus", "books"), ("filtered_corpus", "books"), ("deduped_corpus", None),
        ("balanced_shards", None), ("tokenizer", None), ("tokenized_corpus", None),
        ("pretrained_checkpoint", None), *(("domain_corpus", d) for d in DOMAINS)], key=str)
    assert not [s for s in SOURCES if s != "books" and ("raw_corpus", s) in ran]

    # The new model traces back to the new file, and nothing is left to do.
    lineage = trace(Path(instance.get_latest_materialization_event(
        dg.AssetKey("pretrained_checkpoint")).asset_materialization.metadata["path"].value))
    assert lineage.problems == []
    (fed,) = [f for f in lineage.source_files if f.path == str(new_file.resolve())]
    assert fed.source == "books" and sum(fed.documents.values()) == 1
    _nightly(definitions, instance)
    assert _automate(definitions, instance, cursor)[1] == []
