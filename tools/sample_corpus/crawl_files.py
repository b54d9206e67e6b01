"""The `raw/common_crawl/` files: WARC responses (full HTML), WET conversions, JSONL (gzip, zstd) and Parquet,
each with fixed dates and record ids so that a rebuild is byte-identical."""

from __future__ import annotations

import gzip
import io
import random
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tools.corpus_files import jsonl_bytes
from tools.sample_corpus.cases import CRAWL, OUTPUT_FILES, SEED
from tools.sample_corpus.documents import Doc, Page
from tools.sample_corpus.html_page import render_html

RECORD_NAMESPACE = uuid.UUID("6f1c1f4e-4a57-4c1e-9a51-2f1d8d0c7b10")

# ISO 639-1 -> ISO 639-3, as Common Crawl writes WARC-Identified-Content-Language.
ISO639_3: dict[str, str] = {
    "ar": "ara",
    "en": "eng",
    "es": "spa",
    "fr": "fra",
    "hi": "hin",
    "ja": "jpn",
    "ko": "kor",
    "zh": "zho",
}


def record_id(*parts: str) -> str:
    """A stable WARC-Record-ID derived from the file name and document id."""
    return f"<urn:uuid:{uuid.uuid5(RECORD_NAMESPACE, '/'.join(parts))}>"


def warc_date(index: int) -> str:
    """A fixed fetch time: 2024-03-04 12:00 UTC plus `index` minutes."""
    return f"2024-03-04T{12 + index // 60:02d}:{index % 60:02d}:00Z"


def write_warcinfo(writer: WARCWriter, filename: str, fields: dict[str, str]) -> None:
    payload = "".join(f"{key}: {value}\r\n" for key, value in fields.items()).encode("utf-8")
    record = writer.create_warc_record(
        "",
        "warcinfo",
        payload=io.BytesIO(payload),
        length=len(payload),
        warc_content_type="application/warc-fields",
        warc_headers_dict={
            "WARC-Date": warc_date(0),
            "WARC-Filename": filename,
            "WARC-Record-ID": record_id(filename, "warcinfo"),
        },
    )
    writer.write_record(record)


def write_warc(path: Path, docs: list[Doc], pages: dict[str, Page]) -> dict[str, str]:
    """A warcinfo record, then a request/response pair per document with the page as full HTML.

    Returns the response WARC-Record-ID per document id.
    """
    record_ids = {}
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        write_warcinfo(
            writer,
            path.name,
            {
                "software": "fm-pipeline build_sample_corpus",
                "isPartOf": f"{CRAWL} (synthetic sample)",
                "description": "Original pages written for the fm-pipeline sample corpus",
                "format": "WARC File Format 1.0",
            },
        )
        for index, doc in enumerate(docs, start=1):
            assert doc.page is not None
            lang = doc.page.lang.split("+")[0]
            others = [
                p
                for p in pages.values()
                if p.lang.split("+")[0] == lang and not p.planted and p.id != doc.page.id
            ]
            related = random.Random(f"{SEED}-related-{doc.page.id}").sample(others, min(3, len(others)))
            body = render_html(doc.page, related).encode("utf-8")
            url = urlsplit(doc.url)
            target = url.path + (f"?{url.query}" if url.query else "")
            response_id = record_id(path.name, doc.id, "response")
            record_ids[doc.id] = response_id
            response = writer.create_warc_record(
                doc.url,
                "response",
                payload=io.BytesIO(body),
                length=len(body),
                http_headers=StatusAndHeaders(
                    "200 OK",
                    [
                        ("Date", "Mon, 04 Mar 2024 12:00:00 GMT"),
                        ("Server", "nginx"),
                        ("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                    ],
                    protocol="HTTP/1.1",
                ),
                warc_headers_dict={"WARC-Date": warc_date(index), "WARC-Record-ID": response_id},
            )
            request = writer.create_warc_record(
                doc.url,
                "request",
                http_headers=StatusAndHeaders(
                    f"GET {target} HTTP/1.1",
                    [
                        ("Host", url.netloc),
                        ("User-Agent", "CCBot/2.0 (https://commoncrawl.org/faq/)"),
                        ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
                    ],
                    is_http_request=True,
                ),
                warc_headers_dict={
                    "WARC-Date": warc_date(index),
                    "WARC-Record-ID": record_id(path.name, doc.id, "request"),
                },
            )
            writer.write_request_response_pair(request, response)
    return record_ids


def write_wet(path: Path, docs: list[Doc]) -> dict[str, str]:
    """A warcinfo record, then one text/plain `conversion` record per document.

    Returns the conversion WARC-Record-ID per document id.
    """
    record_ids = {}
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        write_warcinfo(
            writer,
            path.name,
            {
                "Software-Info": "fm-pipeline build_sample_corpus",
                "Extracted-Date": "Mon, 04 Mar 2024 18:00:00 GMT",
                "isPartOf": f"{CRAWL} (synthetic sample)",
                "description": "Plain text extracted from original pages "
                "written for the fm-pipeline sample corpus",
            },
        )
        for index, doc in enumerate(docs, start=1):
            payload = doc.text.encode("utf-8")
            headers = {
                "WARC-Date": warc_date(index),
                "WARC-Record-ID": record_id(path.name, doc.id, "conversion"),
                "WARC-Refers-To": record_id("crawl-001.warc.gz", doc.id, "response"),
            }
            if doc.lang != "und":
                headers["WARC-Identified-Content-Language"] = ",".join(
                    ISO639_3[x] for x in doc.lang.split("+")
                )
            record_ids[doc.id] = headers["WARC-Record-ID"]
            record = writer.create_warc_record(
                doc.url,
                "conversion",
                payload=io.BytesIO(payload),
                length=len(payload),
                warc_content_type="text/plain",
                warc_headers_dict=headers,
            )
            writer.write_record(record)
    return record_ids


def page_rows(docs: list[Doc]) -> list[dict[str, Any]]:
    return [
        {
            "id": doc.id,
            "text": doc.text,
            "url": doc.url,
            "meta": {"crawl": CRAWL, "fetch_time": warc_date(index)},
        }
        for index, doc in enumerate(docs, start=1)
    ]


def write_common_crawl(folder: Path, docs: list[Doc], pages: dict[str, Page]) -> dict[str, str]:
    """Write each output file in a seeded shuffled order; returns the WARC/WET record id per document id."""
    record_ids: dict[str, str] = {}
    for out, filename in OUTPUT_FILES.items():
        selected = sorted((doc for doc in docs if doc.out == out), key=lambda doc: doc.id)
        random.Random(f"{SEED}-order-{out}").shuffle(selected)
        path = folder / filename
        if out == "warc":
            record_ids |= write_warc(path, selected, pages)
        elif out == "wet":
            record_ids |= write_wet(path, selected)
        elif out == "jsonl.gz":
            path.write_bytes(gzip.compress(jsonl_bytes(page_rows(selected)), compresslevel=9, mtime=0))
        elif out == "jsonl.zst":
            path.write_bytes(zstandard.ZstdCompressor(level=10).compress(jsonl_bytes(page_rows(selected))))
        else:
            table = pa.table(
                {
                    "id": pa.array([doc.id for doc in selected], pa.string()),
                    "text": pa.array([doc.text for doc in selected], pa.string()),
                    "url": pa.array([doc.url for doc in selected], pa.string()),
                }
            )
            pq.write_table(table, path, compression="zstd")
    return record_ids
