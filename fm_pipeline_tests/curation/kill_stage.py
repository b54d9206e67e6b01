"""Run one curation stage in this process and stop, asleep, at a point of its swap, for a test to SIGKILL.

    python -m fm_pipeline_tests.curation.kill_stage <stage> <inputs.json> <out> <mode> <point> <marker>

`mode` is "exchange" (the default publishing) or "fallback" (RENAME_EXCHANGE made unavailable, so the
two-rename path runs); `point` is one of `staging.test_hook`'s points. On reaching it the process writes
`marker` and sleeps until it is killed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.mixing.balance import balance
from fm_pipeline.lake import staging

STAGES: dict[str, Callable[[list[Path], Path], Any]] = {
    "filter": lambda shards, out: filter_source("books", shards, out, FilterConfig(processes=1)),
    "dedup": lambda shards, out: dedup_corpus(shards, out, processes=1),
    "balance": lambda shards, out: balance(shards, out, seed=0, shard_bytes=20_000),
}


def _no_exchange(a: Path, b: Path) -> bool:
    return False


def main(stage: str, inputs: str, out: str, mode: str, point: str, marker: str) -> None:
    def pause(reached: str) -> None:
        if reached == point:
            Path(marker).write_text(reached)
            time.sleep(600)

    if mode == "fallback":
        staging.exchange = _no_exchange
    staging.test_hook = pause
    STAGES[stage]([Path(p) for p in json.loads(Path(inputs).read_text())], Path(out))
    sys.exit(f"the run finished without reaching {point!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
