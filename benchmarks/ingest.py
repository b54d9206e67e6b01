"""Ingestion throughput per input format, and peak memory at two input sizes (flat = streaming works).

Builds inputs from ../shared/corpora (real public text), ingests each format in a fresh process on one core,
and prints JSON: MB/s and documents/s per format (MB = input text bytes), peak RSS in MiB.

    python -m benchmarks.ingest [--corpora ../shared/corpora] [--mb 40]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from fm_pipeline.curation.html_text import get_html_extractor
from fm_pipeline.curation.ingest import IngestConfig, ingest_source
from tools.corpora import SHARED_CORPORA
from tools.corpus_files import html_page, write_warc


def load_rows(corpora: Path) -> list[dict]:
    rows = []
    for name in ["web/common_crawl_en.jsonl", "multilingual/udhr.jsonl", "domain/biomedical.jsonl",
                 "domain/legal.jsonl", "domain/scientific.jsonl"]:
        rows += [json.loads(line) for line in (corpora / name).read_text().splitlines()]
    for book in sorted((corpora / "books").glob("*.txt")):
        text = book.read_text()
        rows += [{"id": f"{book.stem}-{i}", "text": text[i:i + 8000]} for i in range(0, len(text), 8000)]
    return rows


def repeat_rows(rows: list[dict], target_bytes: int) -> list[dict]:
    out, size, copy = [], 0, 0
    while size < target_bytes:
        for r in rows:
            out.append({"id": f"{r['id']}#{copy}", "text": r["text"]})
            size += len(r["text"].encode())
        copy += 1
    return out


def build_inputs(rows: list[dict], root: Path, mb: int) -> dict[str, tuple[Path, int]]:
    """Returns format -> (source folder, text bytes)."""
    big = repeat_rows(rows, mb * 2**20)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in big).encode()
    text_bytes = sum(len(r["text"].encode()) for r in big)
    inputs: dict[str, tuple[Path, int]] = {}

    def place(fmt: str, name: str, payload: bytes, nbytes: int = text_bytes) -> None:
        folder = root / fmt / "src"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(payload)
        inputs[fmt] = (folder, nbytes)

    place("jsonl", "a.jsonl", data)
    place("jsonl.gz", "a.jsonl.gz", gzip.compress(data, compresslevel=6, mtime=0))
    place("jsonl.zst", "a.jsonl.zst", zstandard.ZstdCompressor().compress(data))
    quarter = repeat_rows(rows, mb * 2**18)
    place("jsonl_quarter_size", "a.jsonl", "".join(json.dumps(r) + "\n" for r in quarter).encode(),
          sum(len(r["text"].encode()) for r in quarter))
    folder = root / "parquet" / "src"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(big), folder / "a.parquet", row_group_size=2048)
    inputs["parquet"] = (folder, text_bytes)
    folder = root / "txt" / "src"
    folder.mkdir(parents=True)
    small = repeat_rows(rows, 8 * 2**20)
    for i, r in enumerate(small):
        (folder / f"{i:06d}.txt").write_text(r["text"])
    inputs["txt"] = (folder, sum(len(r["text"].encode()) for r in small))
    web = repeat_rows(rows[:200], 4 * 2**20)
    pages = [(f"https://example.org/{i}", html_page(f"Page {i}", r["text"])) for i, r in enumerate(web)]
    for fmt in ("warc_html", "warc_html_trafilatura"):
        folder = root / fmt / "src"
        write_warc(folder / "a.warc.gz", pages)
        inputs[fmt] = (folder, sum(len(h.encode()) for _, h in pages))
    folder = root / "wet" / "src"
    wet = [(f"https://example.org/{i}", r["text"]) for i, r in enumerate(big[:20000])]
    write_warc(folder / "a.warc.gz", [], wet=wet)
    inputs["wet"] = (folder, sum(len(r["text"].encode()) for r in big[:20000]))
    return inputs


class PeakRss:
    """Samples this process's resident memory (ru_maxrss would carry the forking parent's peak over)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self.baseline = self.peak
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()


def run_one(fmt: str, folder: str, nbytes: int, out: str, queue: mp.Queue) -> None:
    extractor = "trafilatura" if fmt.endswith("trafilatura") else "resiliparse"
    get_html_extractor(extractor)("<html><body><p>warm up the extractor import</p></body></html>")
    with PeakRss() as rss:
        start = time.perf_counter()
        stats = ingest_source("bench", Path(folder), Path(out), IngestConfig(html_extractor=extractor))
        seconds = time.perf_counter() - start
    queue.put({
        "format": fmt, "documents": stats.kept, "quarantined": stats.quarantined,
        "text_mb": round(nbytes / 2**20, 2), "seconds": round(seconds, 3),
        "mb_per_s": round(nbytes / 2**20 / seconds, 2), "docs_per_s": round(stats.kept / seconds, 1),
        "peak_rss_mib": round(rss.peak / 2**20, 1),
        "rss_growth_mib": round((rss.peak - rss.baseline) / 2**20, 1),
    })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpora", type=Path, default=SHARED_CORPORA)
    parser.add_argument("--mb", type=int, default=40, help="text megabytes for the streaming formats")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = build_inputs(load_rows(args.corpora), Path(tmp), args.mb)
        for fmt, (folder, nbytes) in inputs.items():
            queue = ctx.Queue()
            proc = ctx.Process(target=run_one, args=(fmt, str(folder), nbytes, f"{tmp}/out-{fmt}", queue))
            proc.start()
            results.append(queue.get())
            proc.join()
    print(json.dumps({"benchmark": "ingest", "cores": 1, "results": results}, indent=2))


if __name__ == "__main__":
    main()
