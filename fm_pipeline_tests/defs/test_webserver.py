"""The pipeline the way users work with it: `dagster dev` (webserver and daemon) on 127.0.0.1 from
workspace.yaml, a materialization launched through the GraphQL API and run by the daemon's queue, its lineage
read back; and the same from a browser (Playwright driving Debian's chromium). dagster dev is started in its
own process group and stopped by group, since its processes ignore signals sent only to the parent."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fm_pipeline.definitions import defs
from fm_pipeline.lake.fingerprint import iter_input_files
from fm_pipeline.lake.layout import LINEAGE_RECORD

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SAMPLE_RAW = REPO / "fm_pipeline" / "sample_data" / "raw"
CONTRACT = ("raw_corpus", "filtered_corpus", "deduped_corpus", "balanced_shards", "tokenizer", "tokenized_corpus",
            "pretrained_checkpoint", "domain_corpus", "domain_adapted_checkpoint", "compressed_model",
            "language_adapted_checkpoint")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
LAUNCH = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dagster:
    """A running `dagster dev`: its base URL and a GraphQL client."""

    def __init__(self, base: str, home: Path, log: Path) -> None:
        self.base, self.home, self.log = base, home, log

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.base}/graphql", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode())
        with urllib.request.urlopen(request, timeout=60) as resp:
            body = json.loads(resp.read())
        assert "errors" not in body, body["errors"]
        return body["data"]

    def launch(self, job: str, assets: list[str] | None = None, checks: list[tuple[str, str]] = (),
               tags: dict[str, str] | None = None) -> str:
        selector: dict[str, Any] = {"repositoryLocationName": "fm_pipeline", "repositoryName": "__repository__",
                                    "pipelineName": job}
        if assets is not None:
            selector["assetSelection"] = [{"path": [a]} for a in assets]
            selector["assetCheckSelection"] = [{"assetKey": {"path": [a]}, "name": n} for a, n in checks]
        params = {"selector": selector, "mode": "default", "runConfigData": "{}",
                  "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
        result = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def wait(self, run_id: str, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            run = self.graphql("""query($id: ID!) { runOrError(runId: $id) { ... on Run {
                status tags { key value } } } }""", {"id": run_id})["runOrError"]
            if not seen or seen[-1] != run["status"]:
                seen.append(run["status"])
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                run["statuses"] = seen
                return run
            time.sleep(1)
        raise AssertionError(f"run {run_id} did not finish in {timeout} s: {seen}; see {self.log}")


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    root = tmp_path_factory.mktemp("dagster_dev")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "FM_RAW_CORPUS", "FM_DOMAIN_CORPUS", "FM_PIPELINE_AUTOMATION")}
    env.update(DAGSTER_HOME=str(home), FM_PIPELINE_HOME=str(root / "fm"))
    log = root / "dagster_dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        server = Dagster(f"http://127.0.0.1:{port}", root, log)
        deadline = time.monotonic() + 240
        keys: set[str] = set()
        while "raw_corpus" not in keys:
            assert proc.poll() is None, f"dagster dev exited; see {log}"
            assert time.monotonic() < deadline, f"dagster dev did not serve the code location; see {log}"
            try:
                nodes = server.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
                keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            except (OSError, AssertionError):
                pass
            time.sleep(1)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _contract_keys() -> list[str]:
    defined = {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys}
    return [k for k in CONTRACT if k in defined]


def test_webserver_serves_the_asset_graph_and_the_daemon_runs(dagster: Dagster):
    nodes = dagster.graphql("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    assert set(_contract_keys()) <= set(groups)
    assert {groups["raw_corpus"], groups["tokenizer"], groups["pretrained_checkpoint"]} == {
        "corpus", "tokenizer", "pretraining"}
    deadline = time.monotonic() + 120
    while True:
        statuses = dagster.graphql("""{ instance { daemonHealth { allDaemonStatuses {
            daemonType healthy required } } } }""")["instance"]["daemonHealth"]["allDaemonStatuses"]
        healthy = {s["daemonType"] for s in statuses if s["healthy"]}
        if {"QUEUED_RUN_COORDINATOR", "SCHEDULER", "SENSOR", "ASSET"} <= healthy:
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(2)
    schedules = dagster.graphql("""{ repositoryOrError(repositorySelector: {repositoryLocationName: "fm_pipeline",
        repositoryName: "__repository__"}) { ... on Repository { schedules { name cronSchedule executionTimezone }
        sensors { name } } } }""")["repositoryOrError"]
    assert {"name": "nightly_rerun", "cronSchedule": "0 2 * * *", "executionTimezone": "UTC"} in schedules["schedules"]
    assert {"corpus_folders_sensor", "rerun_data_on_change", "rerun_models_on_change"} <= {
        s["name"] for s in schedules["sensors"]}


def test_materialization_launched_through_graphql_reports_its_lineage(dagster: Dagster):
    observed = dagster.wait(dagster.launch("observe_corpus_folders"))
    assert observed["status"] == "SUCCESS", observed
    run_id = dagster.launch("__ASSET_JOB", ["raw_corpus"], [("raw_corpus", "accounting")],
                            tags={"dagster/partition": "books"})
    run = dagster.wait(run_id)
    assert run["status"] == "SUCCESS", run
    assert run["statuses"][0] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED"), "the daemon's queue ran it"

    lineage = dagster.graphql("""{
      raw: assetNodeOrError(assetKey: {path: ["raw_corpus"]}) { ... on AssetNode {
        dependencyKeys { path } dependedByKeys { path } dataVersionByPartition(partitions: ["books"])
        staleStatusByPartition(partitions: ["books"]) } }
      files: assetNodeOrError(assetKey: {path: ["raw_files"]}) { ... on AssetNode {
        dataVersionByPartition(partitions: ["books"]) } }
      events: assetOrError(assetKey: {path: ["raw_corpus"]}) { ... on Asset {
        assetMaterializations(partitions: ["books"], limit: 1) { runId tags { key value }
          metadataEntries { label ... on PathMetadataEntry { path } ... on IntMetadataEntry { intValue }
                            ... on TextMetadataEntry { text } } } } } }""")
    raw = lineage["raw"]
    assert [k["path"] for k in raw["dependencyKeys"]] == [["raw_files"]]
    assert ["filtered_corpus"] in [k["path"] for k in raw["dependedByKeys"]]
    assert raw["staleStatusByPartition"] == ["FRESH"]
    (materialization,) = lineage["events"]["assetMaterializations"]
    assert materialization["runId"] == run_id
    tags = {t["key"]: t["value"] for t in materialization["tags"]}
    (files_version,) = lineage["files"]["dataVersionByPartition"]
    assert tags["dagster/data_version"] == raw["dataVersionByPartition"][0]
    assert "dagster/input_event_pointer/raw_files" in tags, "Dagster's provenance names the observation it read"
    assert tags["dagster/code_version"] == "1"
    meta = {m["label"]: m for m in materialization["metadataEntries"]}
    books = sorted(str(p.resolve()) for p in iter_input_files(SAMPLE_RAW / "books"))
    assert meta["dagster/row_count"]["intValue"] == meta["kept"]["intValue"] > 0
    assert meta["data_version"]["text"] == tags["dagster/data_version"]
    # Built from exactly the observed folder. (raw_corpus reports the version itself: Dagster 1.13 records
    # a hash of materialization tags only as the input version of a partitioned, observed dependency.)
    assert meta["input_version"]["text"] == files_version
    record = json.loads((Path(meta["path"]["path"]) / LINEAGE_RECORD).read_text())
    assert record["extra"]["input_version"] == files_version
    assert [i["path"] for i in record["inputs"]] == books, "the lineage record names every input file"
    assert record["data_version"] == tags["dagster/data_version"]
    assert meta["mlflow_run_id"]["text"]


def _launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def test_browser_sees_the_graph_and_materializes_a_partition(dagster: Dagster, tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (`make test-deps` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = _launch_browser(playwright)
        page = browser.new_page(viewport={"width": 3200, "height": 1400})  # wide: the graph shows whole names
        try:
            page.goto(f"{dagster.base}/asset-groups", wait_until="networkidle", timeout=120_000)
            page.get_by_text("Materialize all").wait_for(timeout=120_000)
            expand = page.locator("text=Expand all groups").locator("visible=true").first
            for _ in range(20):  # the graph's context menu opens once the graph has rendered
                page.mouse.click(3100, 1300, button="right")
                try:
                    expand.wait_for(timeout=2_000)
                    break
                except sync_api.TimeoutError:
                    page.keyboard.press("Escape")
            expand.click()
            names = page.locator("[class*=assetName]")
            for key in _contract_keys():
                names.filter(has_text=key).first.wait_for(timeout=30_000)
            shown = {t.strip() for t in names.all_inner_texts()}
            assert set(_contract_keys()) <= shown, shown
            page.screenshot(path=str(tmp_path / "asset_graph.png"))

            page.goto(f"{dagster.base}/assets/raw_corpus", wait_until="networkidle", timeout=120_000)
            page.get_by_role("button", name="Materialize").first.click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Select a partition or create one").click()
            page.get_by_role("menuitem", name="reference_data").first.click()
            page.keyboard.press("Escape")
            dialog.get_by_role("button", name="Launch 1 run").click()
            page.get_by_text("Launched run").wait_for(timeout=60_000)
            page.get_by_text("View", exact=True).click()
            page.wait_for_url("**/runs/**", timeout=30_000)
            run_id = page.url.split("/runs/")[1].split("?")[0]
            page.get_by_text("Success", exact=True).first.wait_for(timeout=240_000)
            page.screenshot(path=str(tmp_path / "run_succeeded.png"))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(f"the page when the test failed: {tmp_path / 'failure.png'}")
            raise
        finally:
            browser.close()
    run = dagster.wait(run_id)
    assert run["status"] == "SUCCESS"
    assert {t["key"]: t["value"] for t in run["tags"]}["dagster/partition"] == "reference_data"
    assert (tmp_path / "asset_graph.png").stat().st_size > 10_000
    assert (tmp_path / "run_succeeded.png").stat().st_size > 10_000
    print(f"screenshots in {tmp_path}")
