"""One way to fan work out over shards on every core, shared by the curation stages."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_shards(fn: Callable[[T], R], jobs: Sequence[T], processes: int | None = None) -> list[R]:
    """`[fn(job) for job in jobs]`, in order, over a pool of up to `processes` workers (default: one per core).

    Workers are spawned, not forked: a Dagster step process has threads, and forking a threaded process can
    deadlock. A worker that dies raises BrokenProcessPool here instead of hanging the stage. With one job
    or one process the work runs inline, which saves the pool's start-up (about a second per worker).
    """
    workers = min(processes or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, jobs))
