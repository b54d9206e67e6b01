"""The documented UI command works: the webserver starts on 127.0.0.1 from workspace.yaml and serves the
pipeline's assets over GraphQL. Started in its own process group and stopped by group, since dagster's
processes ignore signals sent only to the parent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_webserver_serves_the_asset_graph(tmp_path: Path):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "FM_PIPELINE_HOME": str(tmp_path / "fm")}
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "the webserver exited"
                assert time.monotonic() < deadline, "the webserver did not answer in time"
                time.sleep(1)
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        keys: set[str] = set()
        while time.monotonic() < deadline and "balanced_shards" not in keys:
            headers = {"Content-Type": "application/json"}
            request = urllib.request.Request(f"{base}/graphql", data=query, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as resp:
                nodes = json.loads(resp.read())["data"]["assetNodes"]
            keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            time.sleep(1)
        assert {"raw_corpus", "filtered_corpus", "deduped_corpus", "balanced_shards"} <= keys
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
