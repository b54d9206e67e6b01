"""`raw/common_crawl/broken/`: malformed inputs the reader must survive (bad JSON lines, a truncated gzip
stream, an empty file)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from tools.sample_corpus.cases import CRAWL


def notice_row(prefix: str, number: int, text: str) -> bytes:
    row = {
        "id": f"{prefix}-{number:02d}",
        "text": text,
        "url": f"https://www.riversidenotices.example/{prefix}/{number}",
        "meta": {"crawl": CRAWL},
    }
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def write_broken(folder: Path, notices: list[str]) -> list[tuple[str, str, str]]:
    """Malformed inputs for the reader; returns (file, line or part, what it is) for PLANTED.md."""
    folder.mkdir(parents=True)
    url = "https://www.riversidenotices.example/bad-000"
    lines = [
        (notice_row("bad-000", 1, notices[0]), "good row `bad-000-01`"),
        (
            b'{"id": "bad-000-02", "text": "This row was cut off by a crashed writer", "url": "'
            + url.encode(),
            "malformed JSON: unterminated string, no closing brace",
        ),
        (notice_row("bad-000", 3, notices[1]), "good row `bad-000-03`"),
        (
            json.dumps(
                {"id": "bad-000-04", "url": f"{url}/4", "body": "The writer used body instead of text."}
            ).encode(),
            'valid JSON object without a "text" key',
        ),
        (notice_row("bad-000", 5, notices[2]), "good row `bad-000-05`"),
        (json.dumps({"id": "bad-000-06", "text": "", "url": f"{url}/6"}).encode(), 'empty "text"'),
        (
            b'{"id": "bad-000-07", "text": "Caf\xe9 opening hours have changed", "url": "'
            + url.encode()
            + b'/7"}',
            "invalid UTF-8: a lone Latin-1 byte 0xE9 inside the text",
        ),
        (notice_row("bad-000", 8, notices[3]), "good row `bad-000-08`"),
    ]
    (folder / "bad-000.jsonl").write_bytes(b"".join(line + b"\n" for line, _ in lines))
    report = [("bad-000.jsonl", f"line {n}", what) for n, (_, what) in enumerate(lines, start=1)]

    # One full flush per row, so every row before the cut decompresses on its own.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    flushed = [
        compressor.compress(notice_row("truncated-000", number, text) + b"\n")
        + compressor.flush(zlib.Z_FULL_FLUSH)
        for number, text in enumerate(notices[4:12], start=1)
    ]
    cut = b"".join(flushed[:6]) + flushed[6][: len(flushed[6]) // 2]
    (folder / "truncated-000.jsonl.gz").write_bytes(cut)
    report += [
        ("truncated-000.jsonl.gz", f"line {n}", f"good row `truncated-000-{n:02d}`") for n in range(1, 7)
    ]
    report += [
        ("truncated-000.jsonl.gz", "line 7", "cut: the compressed stream ends halfway through this row"),
        ("truncated-000.jsonl.gz", "end", "no end-of-stream marker and no gzip trailer; row 8 is lost"),
    ]

    (folder / "empty.txt").write_bytes(b"")
    report.append(("empty.txt", "whole file", "zero bytes"))
    return report
