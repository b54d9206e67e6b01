"""Streaming readers for every input format in the contract.

Each reader yields, per record it meets, either a `Document` or a `QuarantineRecord` saying which file,
which line (or byte offset / row index) and what went wrong. Nothing raises for bad input: a damaged file
gives what could be read from it, then one record for the damage. So `records seen = documents +
quarantined` holds by construction, and the ingest stage can check it after writing.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq
import zstandard

from fm_pipeline.curation.derived import FILE_CONVERTERS, ConversionError, expand_row
from fm_pipeline.lake.documents import Document

FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".jsonl.zst": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".md": "text",
    ".warc": "warc",
    ".warc.gz": "warc",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tex": "latex",
    ".xml": "xml",
    ".pdf": "pdf",
}
DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_KNOWN_FIELDS = ("id", "text", "url", "meta")
_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class QuarantineRecord:
    """A record or file that could not become a document, and why."""

    file: str
    line: int | None
    offset: int | None
    kind: str
    error: str
    excerpt: str = ""

    def to_row(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "kind": self.kind,
            "error": self.error,
            "excerpt": self.excerpt,
        }


Record = Document | QuarantineRecord


@dataclass(frozen=True)
class ReadContext:
    """What a reader needs besides the path: the source, a display name and limits."""

    source: str
    rel_path: str
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    html_to_text: Callable[[str], str] | None = None


def format_of(path: Path) -> str | None:
    """The reader format for a file name, or None when the file is not an input format."""
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    return None


def read_file(path: Path, ctx: ReadContext) -> Iterator[Record]:
    """Yield the records of one input file; never raises for bad content."""
    fmt = format_of(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        yield _quarantine(ctx, None, None, "unreadable_file", exc)
        return
    if size == 0:
        yield QuarantineRecord(ctx.rel_path, None, 0, "empty_file", "file is empty")
        return
    readers = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "text": _read_text,
               "warc": _read_warc}
    if fmt is None:
        yield QuarantineRecord(ctx.rel_path, None, None, "unsupported_format", f"no reader for {path.name}")
        return
    try:
        yield from readers[fmt](path, ctx) if fmt in readers else _read_converted(path, ctx, fmt)
    except OSError as exc:
        yield _quarantine(ctx, None, None, "unreadable_file", exc)


def _quarantine(ctx: ReadContext, line: int | None, offset: int | None, kind: str, exc: BaseException | str,
                raw: bytes | str = b"") -> QuarantineRecord:
    excerpt = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    return QuarantineRecord(ctx.rel_path, line, offset, kind, str(exc)[:500], excerpt[:_EXCERPT_CHARS])


def _derived_id(ctx: ReadContext, position: int | None = None) -> str:
    """A stable id from source, file and position, for records that bring none."""
    base = f"{ctx.source}/{ctx.rel_path}"
    return base if position is None else f"{base}#{position}"


def _validate_text(ctx: ReadContext, text: Any, line: int | None, offset: int | None,
                   raw: bytes | str) -> QuarantineRecord | None:
    """Why a candidate text cannot be a document, or None when it can."""
    if text is None:
        return _quarantine(ctx, line, offset, "missing_text", "record has no 'text' field", raw)
    if not isinstance(text, str):
        return _quarantine(ctx, line, offset, "invalid_text", f"'text' is {type(text).__name__}, not a string",
                           raw)
    if not text.strip():
        return _quarantine(ctx, line, offset, "empty_text", "text is empty or whitespace", raw)
    if "\x00" in text:
        return _quarantine(ctx, line, offset, "nul_byte", f"NUL byte at character {text.index(chr(0))}",
                           text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > ctx.max_document_bytes:
        return _quarantine(ctx, line, offset, "document_too_large",
                           f"{size} bytes > limit {ctx.max_document_bytes}", text)
    return None


def _document_from_mapping(ctx: ReadContext, row: dict[str, Any], position: int) -> Document:
    """Contract fields become columns; every other field goes into `meta`."""
    meta = row.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else ({} if meta is None else {"meta": meta})
    meta.update({k: v for k, v in row.items() if k not in _KNOWN_FIELDS})
    given = row.get("id")
    url = row.get("url")
    return Document(
        id=str(given) if given not in (None, "") else _derived_id(ctx, position),
        text=row["text"],
        source=ctx.source,
        url=str(url) if url not in (None, "") else None,
        meta=meta,
    )


class _ZstdReader(io.RawIOBase):
    """Streams a (multi-frame) .zst file and raises EOFError at a cut frame, which zstandard's own
    stream reader would end quietly."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._pending = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._fh.read(1 << 20)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd frame is truncated")
                return 0
            while chunk:
                self._in_frame = True
                self._pending += self._dobj.decompress(chunk)
                if not self._dobj.eof:
                    break
                chunk, self._in_frame = self._dobj.unused_data, False
                self._dobj = self._dctx.decompressobj()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_binary(path: Path) -> IO[bytes]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst"):
        return io.BufferedReader(_ZstdReader(path), buffer_size=1 << 20)
    return path.open("rb")


_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)


def _read_jsonl(path: Path, ctx: ReadContext) -> Iterator[Record]:
    """One JSON object per line; a damaged compressed stream yields its good lines, then the damage."""
    offset = 0
    line_no = 0
    with _open_binary(path) as fh:
        while True:
            try:
                raw = fh.readline()
            except _DECOMPRESSION_ERRORS as exc:
                yield _quarantine(ctx, line_no + 1, offset, "truncated_file",
                                  f"{type(exc).__name__}: {exc} after {offset} decompressed bytes")
                return
            if not raw:
                return
            line_no += 1
            start = offset
            offset += len(raw)
            if not raw.strip():
                continue
            yield _parse_json_line(ctx, raw, line_no, start)


def _parse_json_line(ctx: ReadContext, raw: bytes, line_no: int, offset: int) -> Record:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _quarantine(ctx, line_no, offset + exc.start, "invalid_utf8", exc, raw)
    try:
        row = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return _quarantine(ctx, line_no, offset, "malformed_json", exc, decoded)
    if not isinstance(row, dict):
        return _quarantine(ctx, line_no, offset, "not_an_object", f"line holds a {type(row).__name__}", decoded)
    try:
        row = expand_row(row, ctx.source)
    except ConversionError as exc:
        return _quarantine(ctx, line_no, offset, exc.kind, exc, decoded)
    bad = _validate_text(ctx, row.get("text"), line_no, offset, decoded)
    return bad or _document_from_mapping(ctx, row, line_no)


def _read_json(path: Path, ctx: ReadContext) -> Iterator[Record]:
    """A JSON list of objects (or one object). Bounded by the document size limit, as one unit."""
    if path.stat().st_size > ctx.max_document_bytes * 4:
        yield _quarantine(ctx, None, 0, "file_too_large", "a .json file is parsed whole; convert it to JSONL")
        return
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield _quarantine(ctx, None, exc.start, "invalid_utf8", exc, raw[max(0, exc.start - 40):exc.start + 40])
        return
    except json.JSONDecodeError as exc:
        yield _quarantine(ctx, exc.lineno, exc.pos, "malformed_json", exc)
        return
    items = data if isinstance(data, list) else [data]
    for index, row in enumerate(items):
        if not isinstance(row, dict):
            yield _quarantine(ctx, None, index, "not_an_object", f"item {index} is a {type(row).__name__}")
            continue
        try:
            row = expand_row(row, ctx.source)
        except ConversionError as exc:
            yield _quarantine(ctx, None, index, exc.kind, exc, json.dumps(row, ensure_ascii=False)[:400])
            continue
        bad = _validate_text(ctx, row.get("text"), None, index, json.dumps(row, ensure_ascii=False)[:400])
        yield bad or _document_from_mapping(ctx, row, index)


def _read_parquet(path: Path, ctx: ReadContext) -> Iterator[Record]:
    """Row by row in batches; the row index is the position."""
    try:
        pf = pq.ParquetFile(path)
        if "text" not in pf.schema_arrow.names:
            yield _quarantine(ctx, None, None, "missing_text", f"no 'text' column in {pf.schema_arrow.names}")
            return
        index = 0
        for batch in pf.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                bad = _validate_text(ctx, row.get("text"), None, index, str(row.get("text"))[:400])
                yield bad or _document_from_mapping(ctx, row, index)
                index += 1
    except Exception as exc:  # noqa: BLE001 - any Arrow error means a damaged file; record it, keep going
        yield _quarantine(ctx, None, None, "corrupt_parquet", f"{type(exc).__name__}: {exc}")


def _read_text(path: Path, ctx: ReadContext) -> Iterator[Record]:
    """One document per file; the id is the file's path under its source."""
    size = path.stat().st_size
    if size > ctx.max_document_bytes:
        yield _quarantine(ctx, None, 0, "document_too_large", f"{size} bytes > limit {ctx.max_document_bytes}")
        return
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield _quarantine(ctx, None, exc.start, "invalid_utf8", exc, raw[max(0, exc.start - 40):exc.start + 40])
        return
    if text.startswith("\ufeff"):
        text = text[1:]
    bad = _validate_text(ctx, text, None, None, text)
    meta = {"path": ctx.rel_path}
    if path.suffix.lower() == ".md":
        meta["format"] = "markdown"
    yield bad or Document(id=_derived_id(ctx), text=text, source=ctx.source, meta=meta)


def _read_converted(path: Path, ctx: ReadContext, fmt: str) -> Iterator[Record]:
    """A whole file whose documents are derived by a converter (`derived.FILE_CONVERTERS`: tables, LaTeX,
    JATS/PubMed XML, PDF); the id is the file's path, with `#<position>` when a file holds several."""
    size = path.stat().st_size
    if size > ctx.max_document_bytes:
        yield _quarantine(ctx, None, 0, "document_too_large", f"{size} bytes > limit {ctx.max_document_bytes}")
        return
    try:
        converted = FILE_CONVERTERS[fmt](path.read_bytes(), path)
    except ConversionError as exc:
        yield _quarantine(ctx, None, None, exc.kind, exc)
        return
    for position, text, meta in converted:
        bad = _validate_text(ctx, text, None, position, text)
        yield bad or Document(id=_derived_id(ctx, position), text=text, source=ctx.source,
                              meta={"path": ctx.rel_path, **meta})


def _read_warc(path: Path, ctx: ReadContext) -> Iterator[Record]:
    """WARC `response` records (HTML turned into text) and WET `conversion` records (text as is)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    if ctx.html_to_text is None:
        raise ValueError("reading WARC needs an HTML extractor in ReadContext.html_to_text")
    index = 0
    offset: int | None = 0
    with path.open("rb") as fh:
        records = ArchiveIterator(fh)
        try:
            for record in records:
                if record.rec_type not in ("response", "conversion"):
                    continue
                payload = record.content_stream().read()  # before get_record_offset(), which skips the body
                offset = records.get_record_offset()
                missing = getattr(record.raw_stream, "limit", 0)
                if missing:  # warcio stops quietly at a cut; the record's unread length tells
                    yield _quarantine(ctx, None, offset, "truncated_file",
                                      f"record {index} ends {missing} bytes short of its Content-Length")
                    return
                yield _warc_document(ctx, record, payload, index, offset)
                index += 1
        except (ArchiveLoadFailed, *_DECOMPRESSION_ERRORS, ValueError) as exc:
            yield _quarantine(ctx, None, offset, "truncated_file", f"{type(exc).__name__}: {exc}")


def _warc_document(ctx: ReadContext, record: Any, payload: bytes, index: int, offset: int) -> Record:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    rid = headers.get_header("WARC-Record-ID") or _derived_id(ctx, index)
    meta: dict[str, Any] = {"warc_type": record.rec_type, "warc_date": headers.get_header("WARC-Date")}
    if record.rec_type == "response":
        ctype = (record.http_headers.get_header("Content-Type") if record.http_headers else "") or ""
        meta["content_type"] = ctype
        if "html" not in ctype.lower():
            return _quarantine(ctx, None, offset, "unsupported_content_type", f"response of type {ctype!r}",
                               url or "")
        html = payload.decode(_charset(ctype), "replace")
        text = ctx.html_to_text(html) if ctx.html_to_text else ""
    else:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _quarantine(ctx, None, offset + exc.start, "invalid_utf8", exc, payload[:200])
    bad = _validate_text(ctx, text, None, offset, url or "")
    return bad or Document(id=rid.strip("<>"), text=text, source=ctx.source, url=url, meta=meta)


def _charset(content_type: str) -> str:
    """The HTTP charset when Python knows it, else UTF-8."""
    for part in content_type.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            try:
                return codecs.lookup(value.strip('"')).name
            except LookupError:
                return "utf-8"
    return "utf-8"
