"""A run killed with SIGKILL at any point of a stage leaves that stage's previous output whole, and the next
run publishes exactly what an uninterrupted run does.

Each case publishes output A in place, starts a run on input B in a child process (kill_stage.py), lets it
reach one point of its swap (`staging.test_hook`), kills it there, and compares every file of the output
folder, byte for byte, with A or B: the folder of a multi-folder stage (kept/removed, train/val/dropped)
must match one run as a whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.lake.paths import raw_corpus_root
from fm_pipeline.lake.staging import leftovers, recover
from fm_pipeline_tests.curation.kill_stage import STAGES

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 120
"""How long the child may take to reach its pause point before the test gives up (a hang, not a timing)."""


def _files(folder: Path) -> dict[str, str]:
    """Every file under `folder` that readers see (hidden names are temporary), by relative path, with its
    sha256."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[Path]]]:
    """Inputs A and B of each stage, from the sample corpus: B is A and more, so their outputs differ."""
    root = tmp_path_factory.mktemp("kill_inputs")
    kept = {}
    for source in ("books", "common_crawl"):
        ingest_source(source, raw_corpus_root() / source, root / "raw" / source, IngestConfig(shard_bytes=20_000))
        filter_source(source, list_shards(root / "raw" / source), root / "filtered" / source, FilterConfig(processes=1))
        kept[source] = list_shards(root / "filtered" / source / "kept")
    raw_books = list_shards(root / "raw" / "books")
    assert len(raw_books) > 1 and kept["books"] and kept["common_crawl"]
    mixed = [*kept["books"], *kept["common_crawl"]]
    return {"filter": {"A": raw_books[:-1], "B": raw_books},
            "dedup": {"A": kept["books"], "B": mixed},
            "balance": {"A": kept["books"], "B": mixed}}


@pytest.fixture(scope="module")
def expected(inputs: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, str]]]:
    """The files of each stage's uninterrupted run on A and on B."""
    root = tmp_path_factory.mktemp("kill_expected")
    files = {}
    for stage, runs in inputs.items():
        files[stage] = {}
        for name, shards in runs.items():
            STAGES[stage](shards, root / stage / name)
            files[stage][name] = _files(root / stage / name)
        assert files[stage]["A"] != files[stage]["B"]
    return files


def _kill_at(stage: str, shards: list[Path], out: Path, mode: str, point: str, tmp_path: Path) -> None:
    """Run `stage` on `shards` into `out` in a child process and SIGKILL it when it reaches `point`."""
    listing, marker = tmp_path / "inputs.json", tmp_path / "reached"
    listing.write_text(json.dumps([str(p) for p in shards]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-m", "fm_pipeline_tests.curation.kill_stage", stage, str(listing), str(out), mode, point,
         str(marker)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"{stage} ended (rc {child.returncode}) before {point}: {child.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{stage} did not reach {point} within {WAIT_S} s")
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


CASES = [("exchange", "staged", "A"), ("exchange", "before-swap", "A"), ("exchange", "after-swap", "B"),
         ("fallback", "between-renames", "A"), ("fallback", "after-swap", "B")]
"""(mode, where the run is killed, which run's output the folder holds afterwards)."""


@pytest.mark.slow
@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize(("mode", "point", "holds"), CASES)
def test_a_killed_run_leaves_one_whole_output(stage: str, mode: str, point: str, holds: str, inputs: dict,
                                              expected: dict, tmp_path: Path) -> None:
    out = tmp_path / "lake" / stage
    STAGES[stage](inputs[stage]["A"], out)
    assert _files(out) == expected[stage]["A"]

    _kill_at(stage, inputs[stage]["B"], out, mode, point, tmp_path)
    if point == "between-renames":
        # The fallback's one visible moment: the folder is absent (never mixed) until the next run puts the
        # previous output back, which is the first thing `staged_dir` does.
        assert not out.exists()
        recover(out)
    assert _files(out) == expected[stage][holds]
    assert all(p.name.startswith(".") for p in out.parent.iterdir() if p != out)  # what was left is hidden

    STAGES[stage](inputs[stage]["B"], out)  # the next run, uninterrupted
    assert _files(out) == expected[stage]["B"]
    assert leftovers(out) == []
