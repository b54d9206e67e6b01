"""Every input format, and every kind of bad input, read without raising and accounted for."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
import zstandard

from fm_pipeline.curation.html_text import get_html_extractor
from fm_pipeline.curation.readers import QuarantineRecord, ReadContext, format_of, read_file
from fm_pipeline.lake.documents import Document
from fm_pipeline_tests.conftest import SHARED_CORPORA
from tools.corpus_files import (
    html_page,
    jsonl_bytes,
    write_jsonl,
    write_parquet,
    write_warc,
)


@pytest.fixture(scope="module")
def real_rows() -> list[dict]:
    """Real Common Crawl text when ../shared/corpora is present, else the package's own sample books."""
    path = SHARED_CORPORA / "web" / "common_crawl_en.jsonl"
    if path.exists():
        return [json.loads(line) for line in path.read_text().splitlines()][:6]
    books = sorted((Path(__file__).parents[2] / "fm_pipeline" / "sample_data" / "raw" / "books").rglob("*.txt"))
    return [{"id": f"b{i}", "text": p.read_text()} for i, p in enumerate(books[:6])]


def read(path: Path, root: Path, extractor: str = "resiliparse") -> list[Document | QuarantineRecord]:
    ctx = ReadContext("common_crawl", path.relative_to(root).as_posix(), html_to_text=get_html_extractor(extractor))
    return list(read_file(path, ctx))


def docs(records: list) -> list[Document]:
    return [r for r in records if isinstance(r, Document)]


def bad(records: list) -> list[QuarantineRecord]:
    return [r for r in records if isinstance(r, QuarantineRecord)]


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst"])
def test_jsonl_formats_keep_ids_urls_and_extra_fields_in_meta(tmp_path: Path, real_rows: list[dict], name: str):
    rows = [{**r, "url": f"https://example.org/{i}", "crawl": "CC-2024"} for i, r in enumerate(real_rows)]
    records = read(write_jsonl(tmp_path / name, rows), tmp_path)
    assert not bad(records)
    got = docs(records)
    assert [d.id for d in got] == [r["id"] for r in rows]
    assert [d.text for d in got] == [r["text"] for r in rows]
    assert got[2].url == "https://example.org/2"
    assert got[0].meta["crawl"] == "CC-2024"
    assert all(d.source == "common_crawl" and d.lang == "und" for d in got)


def test_missing_ids_are_derived_from_file_and_line(tmp_path: Path, real_rows: list[dict]):
    rows = [{"text": r["text"]} for r in real_rows[:3]]
    got = docs(read(write_jsonl(tmp_path / "sub" / "x.jsonl", rows), tmp_path))
    assert [d.id for d in got] == [f"common_crawl/sub/x.jsonl#{line}" for line in (1, 2, 3)]


def test_json_list_parquet_and_text_files(tmp_path: Path, real_rows: list[dict]):
    (tmp_path / "list.json").write_text(json.dumps(real_rows[:3]))
    write_parquet(tmp_path / "t.parquet", [{"id": r["id"], "text": r["text"], "lang_hint": "en"} for r in real_rows])
    (tmp_path / "doc.md").write_text("# Title\n\n" + real_rows[0]["text"])
    (tmp_path / "doc.txt").write_bytes(b"\xef\xbb\xbf" + real_rows[1]["text"].encode())
    assert [d.id for d in docs(read(tmp_path / "list.json", tmp_path))] == [r["id"] for r in real_rows[:3]]
    pq_docs = docs(read(tmp_path / "t.parquet", tmp_path))
    assert [d.id for d in pq_docs] == [r["id"] for r in real_rows]
    assert pq_docs[0].meta == {"lang_hint": "en"}
    md = docs(read(tmp_path / "doc.md", tmp_path))
    assert md[0].id == "common_crawl/doc.md" and md[0].meta["format"] == "markdown"
    txt = docs(read(tmp_path / "doc.txt", tmp_path))
    assert txt[0].text == real_rows[1]["text"], "the UTF-8 byte order mark is dropped"


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
@pytest.mark.parametrize("name", ["c.warc", "c.warc.gz"])
def test_warc_responses_become_main_text_and_wet_records_stay(tmp_path: Path, real_rows: list[dict], name: str,
                                                              extractor: str):
    body = real_rows[0]["text"]
    path = write_warc(tmp_path / name, [("https://example.org/a", html_page("A page", body))],
                      wet=[("https://example.org/b", real_rows[1]["text"])])
    got = docs(read(path, tmp_path, extractor))
    assert [d.url for d in got] == ["https://example.org/a", "https://example.org/b"]
    assert got[0].id == "urn:uuid:00000000-0000-0000-0000-000000000000"
    first_sentence = body.split("\n")[0][:60]
    assert first_sentence in got[0].text
    assert "Accept all cookies" not in got[0].text and "Subscribe to our newsletter" not in got[0].text
    assert got[1].text == real_rows[1]["text"]
    assert got[1].meta["warc_type"] == "conversion"


def test_bad_jsonl_lines_are_quarantined_with_line_and_kind(tmp_path: Path, real_rows: list[dict]):
    good = jsonl_bytes(real_rows[:2])
    lines = [
        good.splitlines(keepends=True)[0],
        b'{"id": "broken", "text": "unterminated\n',
        b'{"id": "no-text", "title": "x"}\n',
        b'{"id": "empty", "text": "   "}\n',
        b'{"id": "utf", "text": "caf\xe9 au lait"}\n',
        b'{"id": "nul", "text": "a\\u0000b"}\n',
        b'["a list"]\n',
        b"\n",
        good.splitlines(keepends=True)[1],
    ]
    (tmp_path / "bad.jsonl").write_bytes(b"".join(lines))
    records = read(tmp_path / "bad.jsonl", tmp_path)
    assert [d.id for d in docs(records)] == [real_rows[0]["id"], real_rows[1]["id"]]
    assert [(q.line, q.kind) for q in bad(records)] == [
        (2, "malformed_json"), (3, "missing_text"), (4, "empty_text"), (5, "invalid_utf8"), (6, "nul_byte"),
        (7, "not_an_object"),
    ]
    utf = bad(records)[3]
    assert utf.file == "bad.jsonl" and utf.offset == sum(len(x) for x in lines[:4]) + len(b'{"id": "utf", "text": "caf')


@pytest.mark.parametrize("name", ["t.jsonl.gz", "t.jsonl.zst"])
def test_truncated_compressed_file_keeps_what_is_readable(tmp_path: Path, real_rows: list[dict], name: str):
    # Shuffled words, so the stream spans many compressed blocks (a cut block leaves nothing readable).
    rng = random.Random(7)
    words = " ".join(r["text"] for r in real_rows).split()
    rows = [{"id": f"r{i}", "text": " ".join(rng.sample(words, 300))} for i in range(400)]
    data = jsonl_bytes(rows)
    packed = gzip.compress(data, mtime=0) if name.endswith(".gz") else zstandard.ZstdCompressor().compress(data)
    (tmp_path / name).write_bytes(packed[: len(packed) * 2 // 3])
    records = read(tmp_path / name, tmp_path)
    got, quarantined = docs(records), bad(records)
    assert 0 < len(got) < 400
    assert [d.id for d in got] == [f"r{i}" for i in range(len(got))], "good rows before the damage are kept in order"
    assert len(quarantined) == 1 and quarantined[0].kind == "truncated_file"
    assert quarantined[0].line is not None and quarantined[0].line >= len(got)


def test_truncated_warc_keeps_earlier_records(tmp_path: Path, real_rows: list[dict]):
    pages = [(f"https://example.org/{i}", html_page(f"P{i}", r["text"])) for i, r in enumerate(real_rows)]
    path = write_warc(tmp_path / "w.warc.gz", pages)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4 - 100])
    records = read(path, tmp_path)
    assert 0 < len(docs(records)) < len(pages)
    assert [q.kind for q in bad(records)] == ["truncated_file"]


def test_empty_unreadable_and_binary_files(tmp_path: Path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("Déjà vu, naïve café".encode("latin-1"))
    (tmp_path / "nul.txt").write_bytes(b"text with a \x00 inside it")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not really parquet")
    (tmp_path / "bad.json").write_text('[{"text": "a"}, ')
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    kinds = {p: [q.kind for q in bad(read(tmp_path / p, tmp_path))]
             for p in ["empty.txt", "latin1.txt", "nul.txt", "corrupt.parquet", "bad.json", "image.png"]}
    assert kinds == {
        "empty.txt": ["empty_file"], "latin1.txt": ["invalid_utf8"], "nul.txt": ["nul_byte"],
        "corrupt.parquet": ["corrupt_parquet"], "bad.json": ["malformed_json"], "image.png": ["unsupported_format"],
    }
    unreadable = tmp_path / "gone.jsonl"
    unreadable.symlink_to(tmp_path / "missing-target.jsonl")
    assert [q.kind for q in bad(read(unreadable, tmp_path))] == ["unreadable_file"]


def test_oversized_document_is_quarantined_not_loaded_whole(tmp_path: Path):
    big = tmp_path / "big.txt"
    with big.open("w") as fh:
        for _ in range(50 * 1024):
            fh.write("All work and no play makes Jack a dull boy. " * 23 + "\n")
    assert big.stat().st_size > 50_000_000
    (tmp_path / "big.jsonl").write_text(json.dumps({"id": "huge", "text": "x" * (2**20 + 10)}) + "\n")
    ctx = ReadContext("books", "big.txt", max_document_bytes=16 * 2**20)
    assert [q.kind for q in read_file(big, ctx)] == ["document_too_large"]
    small_limit = ReadContext("books", "big.jsonl", max_document_bytes=2**20)
    assert [q.kind for q in read_file(tmp_path / "big.jsonl", small_limit)] == ["document_too_large"]


def test_format_detection():
    assert [format_of(Path(n)) for n in ["a.JSONL", "b.jsonl.gz", "c.jsonl.zst", "d.json", "e.parquet", "f.md",
                                          "g.warc.gz", "h.warc", "i.txt", "j.csv"]] == [
        "jsonl", "jsonl", "jsonl", "json", "parquet", "text", "warc", "warc", "text", "csv"]
