"""raw_corpus ingestion: accounting, quarantine on disk, bounded shards, determinism and atomic swaps."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fm_pipeline.curation import ingest as ingest_mod
from fm_pipeline.curation.ingest import IngestConfig, audit_accounting, ingest_source
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fingerprint import iter_input_files
from fm_pipeline.lake.paths import raw_corpus_root
from fm_pipeline.lake.staging import leftovers
from tools.corpus_files import html_page, write_jsonl, write_parquet, write_warc


@pytest.fixture()
def source_dir(tmp_path: Path, shared_corpora: Path) -> Path:
    """A source folder with real Common Crawl text in every format, plus planted bad input."""
    rows = [json.loads(line) for line in (shared_corpora / "web" / "common_crawl_en.jsonl").read_text().splitlines()]
    root = tmp_path / "in" / "common_crawl"
    write_jsonl(root / "a" / "part-0.jsonl", rows[:5])
    write_jsonl(root / "a" / "part-1.jsonl.gz", rows[5:8])
    write_jsonl(root / "b" / "part-2.jsonl.zst", rows[8:10])
    write_parquet(root / "b" / "part-3.parquet", rows[10:12])
    (root / "c.json").write_text(json.dumps(rows[12:14]))
    (root / "d.txt").write_text(rows[14]["text"])
    page = (rows[15]["meta"].get("url", "https://x.org/15"), html_page("t", rows[15]["text"]))
    write_warc(root / "e.warc.gz", [page], wet=[("https://x.org/16", rows[16]["text"])])
    (root / "bad.jsonl").write_bytes(b'{"id": "ok-1", "text": "A short but valid line of text."}\n{not json}\n'
                                     b'{"id": "ok-1", "text": "same id again"}\n{"id": "u", "text": "\xff"}\n')
    (root / "cut.jsonl.gz").write_bytes(gzip.compress(json.dumps(rows[17]).encode() * 50, mtime=0)[:200])
    (root / "empty.md").write_bytes(b"")
    (root / ".hidden.jsonl").write_text('{"text": "never read"}\n')
    return root


def test_every_record_is_written_or_quarantined(source_dir: Path, tmp_path: Path):
    out = tmp_path / "lake" / "raw_corpus" / "common_crawl"
    stats = ingest_source("common_crawl", source_dir, out)
    assert stats.files == 10
    assert stats.kept == 18
    assert stats.quarantined_by_kind == {
        "duplicate_id": 1, "empty_file": 1, "invalid_utf8": 1, "malformed_json": 1, "truncated_file": 1,
    }
    assert stats.documents_in == stats.kept + stats.quarantined == 23
    assert audit_accounting(out) == {"documents_in": 23, "kept": 18, "quarantined": 5}
    table = pq.read_table(out / "part-00000.parquet")
    assert table.schema.equals(CORPUS_SCHEMA, check_metadata=False)
    assert len(set(table.column("id").to_pylist())) == 18
    quarantine = pq.read_table(out / "quarantine" / "quarantine.parquet").to_pylist()
    assert {(q["file"], q["line"], q["kind"]) for q in quarantine if q["file"] == "bad.jsonl"} == {
        ("bad.jsonl", 2, "malformed_json"), ("bad.jsonl", 4, "invalid_utf8"), ("bad.jsonl", None, "duplicate_id")}


def test_rerun_is_byte_identical_and_shards_are_bounded(source_dir: Path, tmp_path: Path):
    def digest(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    config = IngestConfig(shard_bytes=20_000)
    a, b = tmp_path / "a", tmp_path / "b"
    stats = ingest_source("common_crawl", source_dir, a, config)
    ingest_source("common_crawl", source_dir, b, config)
    assert digest(a) == digest(b)
    assert len(stats.shards) >= 3
    sizes = [pq.ParquetFile(a / s).metadata.num_rows for s in stats.shards]
    assert sum(sizes) == stats.kept
    ingest_source("common_crawl", source_dir, a, config)
    assert digest(a) == digest(b), "a rerun into the same folder replaces it whole"


def test_a_failed_run_leaves_the_previous_output_untouched(source_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "out"
    ingest_source("common_crawl", source_dir, out)
    before = sorted(p.name for p in out.iterdir())
    real_read_file = ingest_mod.read_file

    def dying_read_file(path, ctx):
        if path.name == "c.json":
            raise KeyboardInterrupt("killed mid-run")
        return real_read_file(path, ctx)

    monkeypatch.setattr(ingest_mod, "read_file", dying_read_file)
    with pytest.raises(KeyboardInterrupt):
        ingest_source("common_crawl", source_dir, out)
    assert sorted(p.name for p in out.iterdir()) == before
    assert leftovers(out) == [], "no staging folder is left"


def test_hidden_files_are_skipped_and_order_is_stable(source_dir: Path):
    files = [p.relative_to(source_dir).as_posix() for p in iter_input_files(source_dir)]
    assert files == sorted(files) and ".hidden.jsonl" not in files


def test_embedded_sample_corpus_ingests_cleanly_except_planted_damage(tmp_path: Path):
    root = raw_corpus_root()
    planted = {  # raw/PLANTED_SOURCES.md; without pypdf both sample PDFs are quarantined as pdf_reader_missing
        "academic_papers": {"pdf_no_text_layer", "pdf_reader_missing", "xml_entities_refused"},
        "reference_data": {"infobox_no_title", "table_ragged_row"},
        "conversations": {"conversation_bad_turn", "conversation_empty_turn", "conversation_no_messages",
                          "conversation_not_a_list", "conversation_unknown_role"},
    }
    for source in ("books", "academic_papers", "reference_data", "code_repositories", "conversations"):
        stats = ingest_source(source, root / source, tmp_path / source)
        assert stats.kept > 0, source
        assert set(stats.quarantined_by_kind) <= planted.get(source, set()), (source, stats.quarantined_by_kind)
