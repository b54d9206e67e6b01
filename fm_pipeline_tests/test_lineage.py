"""Lineage records and the trace back from a checkpoint: exact to the document on a consistent lake, and
explicit about every hop that no longer matches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fm_pipeline.curation.ingest import ingest_source
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.fingerprint import data_files
from fm_pipeline.lake.layout import LINEAGE_RECORD, PROVENANCE_FILE
from fm_pipeline.lake.lineage import input_entries, main, read_stage_record, trace, write_stage_record
from fm_pipeline.lake.parquet_io import iter_rows, list_shards


def _jsonl(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "text": f"document {i} " * 5}) + "\n" for i in ids))


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA), path)
    return path


@pytest.fixture()
def chain(tmp_path: Path) -> dict[str, Path]:
    """raw files -> raw_corpus[books] (real ingestion) -> filtered -> balanced (train/val) -> tokenizer ->
    tokenized -> checkpoint, each with its lineage record."""
    lake = tmp_path / "lake"
    raw = tmp_path / "raw" / "books"
    _jsonl(raw / "a.jsonl", ["a1", "a2"])
    _jsonl(raw / "sub" / "b.jsonl", ["b1"])
    _jsonl(raw / "c.jsonl", ["c1"])

    raw_out = lake / "raw_corpus" / "books"
    ingest_source("books", raw, raw_out)
    write_stage_record(raw_out, asset="raw_corpus", partition="books", lake_root=lake,
                       inputs=sorted(p for p in raw.rglob("*.jsonl")), outputs=data_files(raw_out),
                       provenance=raw_out / PROVENANCE_FILE, extra={"input_root": str(raw)})

    rows = {r["id"]: r for r in iter_rows(list_shards(raw_out))}
    filtered = lake / "filtered_corpus" / "books"
    kept = _write_rows(filtered / "kept" / "part-00000.parquet", [rows["a1"], rows["a2"], rows["b1"]])
    write_stage_record(filtered, asset="filtered_corpus", partition="books", lake_root=lake,
                       inputs=list_shards(raw_out), outputs=data_files(filtered))

    balanced = lake / "balanced_shards"
    train = _write_rows(balanced / "train" / "part-00000.parquet",
                        [rows["a1"], {**rows["a1"], "id": "a1#rep1"}, rows["a2"]])
    val = _write_rows(balanced / "val" / "part-00000.parquet", [rows["b1"]])
    write_stage_record(balanced, asset="balanced_shards", lake_root=lake, inputs=[kept],
                       outputs=data_files(balanced), splits={"train": [train], "val": [val]})

    tok = lake / "tokenizer"
    tok.mkdir()
    (tok / "tokenizer.model").write_bytes(b"sentencepiece model bytes")
    write_stage_record(tok, asset="tokenizer", lake_root=lake, inputs=[train, val], outputs=data_files(tok))

    tokenized = lake / "tokenized_corpus"
    tokenized.mkdir()
    (tokenized / "train.bin").write_bytes(b"\x02\x00\x05\x00\x03\x00")
    write_stage_record(tokenized, asset="tokenized_corpus", lake_root=lake,
                       inputs=[train, val, tok / "tokenizer.model"], outputs=data_files(tokenized))

    ckpt = lake / "pretrained_checkpoint"
    ckpt.mkdir()
    inputs = input_entries([tokenized / "train.bin", tok / "tokenizer.model", val], lake)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    write_stage_record(ckpt, asset="pretrained_checkpoint", lake_root=lake, inputs=inputs,
                       outputs=[ckpt / "model.safetensors"], input_versions={"tokenizer": "v-tok"})
    return {"lake": lake, "raw": raw, "ckpt": ckpt, "train": train, "balanced": balanced}


def test_record_names_inputs_outputs_and_versions(chain):
    record = read_stage_record(chain["lake"] / "raw_corpus" / "books")
    assert record["asset"] == "raw_corpus" and record["partition"] == "books"
    assert [i["path"] for i in record["inputs"]] == sorted(str(p.resolve()) for p in chain["raw"].rglob("*.jsonl"))
    assert all(i["external"] for i in record["inputs"])
    assert "raw_corpus/books/part-00000.parquet" in [o["path"] for o in record["outputs"]]
    assert record["provenance"] == "raw_corpus/books/" + PROVENANCE_FILE
    assert len(record["data_version"]) == 16
    ckpt = read_stage_record(chain["ckpt"])
    assert ckpt["input_versions"] == {"tokenizer": "v-tok"}
    assert [i["path"] for i in ckpt["inputs"]] == ["balanced_shards/val/part-00000.parquet",
                                                   "tokenized_corpus/train.bin", "tokenizer/tokenizer.model"]


def test_trace_finds_the_raw_files_behind_every_training_document(chain):
    result = trace(chain["ckpt"])
    assert result.problems == [] and result.consistent
    raw = chain["raw"].resolve()
    by_path = {Path(f.path).relative_to(raw).as_posix(): f for f in result.source_files}
    assert sorted(by_path) == ["a.jsonl", "c.jsonl", "sub/b.jsonl"], "every file the chain read"
    assert by_path["a.jsonl"].documents == {"train": 3}, "a1, its repeat a1#rep1, and a2"
    assert by_path["sub/b.jsonl"].documents == {"val": 1}
    assert by_path["c.jsonl"].documents == {}, "read, but filtered out before training"
    assert [f.path for f in result.fed("train")] == [str(raw / "a.jsonl")]
    assert all(f.source == "books" for f in result.source_files)
    assert by_path["a.jsonl"].size == (chain["raw"] / "a.jsonl").stat().st_size
    assert result.tokenizer["path"].endswith("lake/tokenizer/tokenizer.model")
    assert result.splits == {"train": [str(chain["train"].resolve())],
                             "val": [str((chain["balanced"] / "val" / "part-00000.parquet").resolve())]}
    assert {(s["asset"], s["partition"]) for s in result.stages} == {
        ("pretrained_checkpoint", None), ("tokenized_corpus", None), ("tokenizer", None),
        ("balanced_shards", None), ("filtered_corpus", "books"), ("raw_corpus", "books")}


def test_trace_reports_a_rebuilt_stage_and_a_changed_raw_file(chain):
    lake = chain["lake"]
    rows = list(iter_rows([chain["train"]]))
    _write_rows(chain["train"], rows[:1])  # balanced_shards rebuilt after the model was trained
    write_stage_record(chain["balanced"], asset="balanced_shards", lake_root=lake,
                       inputs=list_shards(lake / "filtered_corpus" / "books" / "kept"),
                       outputs=data_files(chain["balanced"]),
                       splits={"train": [chain["train"]], "val": list_shards(chain["balanced"] / "val")})
    (chain["raw"] / "c.jsonl").write_text('{"id": "c1", "text": "edited"}\n')
    problems = trace(chain["ckpt"]).problems
    assert any("balanced_shards/train/part-00000.parquet changed after tokenized_corpus read it" in p
               for p in problems), problems
    assert any("c.jsonl differs from the file that was read" in p for p in problems), problems
    assert trace(chain["ckpt"], verify_files=False).problems == [p for p in problems if "changed after" in p]


def test_trace_follows_a_moved_lake(chain, tmp_path):
    moved = tmp_path / "moved_lake"
    shutil.move(chain["lake"], moved)
    assert trace(moved / "pretrained_checkpoint", lake_root=moved).problems == []


def test_cli_lists_fed_files_and_fails_on_problems(chain, capsys):
    assert main([str(chain["ckpt"])]) == 0
    out = capsys.readouterr().out
    assert str(chain["raw"].resolve() / "a.jsonl") in out and "c.jsonl" not in out
    assert main([str(chain["ckpt"]), "--all", "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["consistent"] is True and len(as_json["source_files"]) == 3
    (chain["lake"] / "tokenizer" / "tokenizer.model").write_bytes(b"another tokenizer")
    assert main([str(chain["ckpt"])]) == 1
    assert "PROBLEM: tokenizer/tokenizer.model differs" in capsys.readouterr().err
    assert (chain["ckpt"] / LINEAGE_RECORD).is_file()
