"""Builders for input files of every format: the reader and ingest tests, the ingest benchmark and the sample
corpus generator write their inputs with these."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    data = jsonl_bytes(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_warc(path: Path, pages: list[tuple[str, str]], wet: list[tuple[str, str]] = ()) -> Path:
    """`pages`: (url, html) as HTTP responses; `wet`: (url, text) as conversion records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=path.name.endswith(".gz"))
    for i, (url, html) in enumerate(pages):
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        rec = writer.create_warc_record(
            url, "response", payload=io.BytesIO(html.encode()), http_headers=http,
            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>",
                               "WARC-Date": "2024-01-01T00:00:00Z"},
        )
        writer.write_record(rec)
    for i, (url, text) in enumerate(wet):
        rec = writer.create_warc_record(
            url, "conversion", payload=io.BytesIO(text.encode()),
            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:11111111-0000-0000-0000-{i:012d}>",
                               "WARC-Date": "2024-01-01T00:00:00Z", "Content-Type": "text/plain"},
        )
        writer.write_record(rec)
    path.write_bytes(buf.getvalue())
    return path


def html_page(title: str, body: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n") if p.strip())
    return (
        f"<html><head><title>{title}</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/about'>About</a> | <a href='/contact'>Contact</a></nav>"
        "<div class='cookie'>We use cookies to improve your experience. Accept all cookies?</div>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        "<footer>Subscribe to our newsletter. © 2024 Example Media. All rights reserved.</footer>"
        "</body></html>"
    )
