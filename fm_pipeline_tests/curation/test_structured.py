"""Structured data linearized into text: exact text per format, rejections by kind, the sample files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fm_pipeline.curation.conversion import ConversionError
from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.ingest import ingest_source
from fm_pipeline.curation.readers import ReadContext, read_file
from fm_pipeline.curation.structured import (
    infobox_text,
    linearize_record,
    linearize_table,
    table_from_delimited,
    table_from_rows,
)
from fm_pipeline.lake.documents import Document
from fm_pipeline.lake.parquet_io import iter_rows, list_shards
from fm_pipeline.lake.paths import raw_corpus_root

SAMPLE = raw_corpus_root() / "reference_data" / "structured"


def test_table_rows_repeat_their_column_names_and_skip_empty_cells():
    header, rows = table_from_delimited("line,opened,note\nHarbor,1931,\nHill Loop,2015,\"newest, shortest\"\n", ",")
    assert linearize_table(header, rows, "Metro lines") == (
        "Metro lines\nline: Harbor; opened: 1931.\nline: Hill Loop; opened: 2015; note: newest, shortest.")
    header, rows = table_from_rows([{"year": 2020, "kg": 905}, {"year": 2021, "note": "frost", "kg": None}])
    assert (header, rows) == (["year", "kg", "note"], [[2020, 905, None], [2021, None, "frost"]])
    assert linearize_table(header, rows) == "year: 2020; kg: 905.\nyear: 2021; note: frost."


def test_record_is_one_paragraph_of_key_value_sentences():
    record = {"name": "Col du Lautaret", "altitude": "2058 m", "automatic": True, "staffed": False,
              "measures": ["wind", "snow"], "size": {"h": "2 m", "w": None}, "closed": None, "note": "Busy!"}
    assert linearize_record(record, "Station") == (
        "Station\nname: Col du Lautaret. altitude: 2058 m. automatic: yes. staffed: no. measures: wind, snow. "
        "size: h: 2 m. note: Busy!")


def test_infobox_humanizes_names_and_cleans_wiki_markup():
    row = {"title": "Lake Baikal", "infobox": {"primary_outflows": "[[Angara]]", "location": "[[Siberia]], [[Russia]]",
                                               "inflows": "[[Selenga River|Selenga]]", "notes": "deep<br/>old{{sfn|X}}",
                                               "empty": ""}}
    assert infobox_text(row) == ("Lake Baikal\nPrimary outflows: Angara. Location: Siberia, Russia. "
                                 "Inflows: Selenga. Notes: deep; old.")


@pytest.mark.parametrize(("call", "kind", "error"), [
    (lambda: infobox_text({"title": "X", "infobox": ["a"]}), "infobox_not_an_object", "'infobox' is a list"),
    (lambda: infobox_text({"infobox": {"a": 1}}), "infobox_no_title", "an infobox row needs a non-empty 'title'"),
    (lambda: table_from_rows([{"a": 1}, 2]), "table_bad_row", "table row 1 is a int, not an object"),
    (lambda: table_from_delimited("a,b\n1,2,3\n", ","), "table_ragged_row", "line 2 has 3 cells, the header 2"),
    (lambda: table_from_delimited("a\tb\n", "\t"), "table_no_rows", "the table has a header and no rows"),
    (lambda: table_from_delimited("\n", ","), "table_no_header", "the table has no header row"),
])
def test_malformed_structures_raise_their_kind(call, kind, error):
    with pytest.raises(ConversionError) as caught:
        call()
    assert (caught.value.kind, str(caught.value)) == (kind, error)


def test_readers_derive_text_from_json_rows_and_tsv_files(tmp_path: Path):
    (tmp_path / "r.jsonl").write_text(json.dumps({"id": "r1", "title": "T", "record": {"a": 1}}) + "\n"
                                      + json.dumps({"id": "r2", "table": "not rows"}) + "\n")
    good, bad = read_file(tmp_path / "r.jsonl", ReadContext("reference_data", "r.jsonl"))
    assert isinstance(good, Document) and (good.text, good.meta) == ("T\na: 1.", {"title": "T", "format": "record"})
    assert (bad.line, bad.kind) == (2, "table_not_a_list")
    (tmp_path / "rain-by_month.tsv").write_text("month\tmm\nMay\t63\n")
    (doc,) = read_file(tmp_path / "rain-by_month.tsv", ReadContext("reference_data", "rain-by_month.tsv"))
    assert doc.id == "reference_data/rain-by_month.tsv" and doc.text == "Rain by month\nmonth: May; mm: 63."
    assert doc.meta == {"path": "rain-by_month.tsv", "format": "table", "columns": ["month", "mm"], "rows": 1}


def test_sample_structured_files_are_kept_and_the_planted_ones_quarantined(tmp_path: Path):
    raw = ingest_source("reference_data", SAMPLE, tmp_path / "raw")
    assert raw.quarantined_by_kind == {"infobox_no_title": 1, "table_ragged_row": 1} and raw.kept == 8
    stats = filter_source("reference_data", list_shards(tmp_path / "raw"), tmp_path / "f", FilterConfig(processes=1))
    assert stats.rejected_by_reason == {}
    kept = {r["id"]: r["lang"] for r in iter_rows(list_shards(tmp_path / "f" / "kept"))}
    assert kept == {"infobox-en-lake-baikal": "en", "infobox-es-rio-de-la-plata": "es", "infobox-de-zugspitze": "de",
                    "record-en-museum-loan": "en", "record-fr-station-meteo": "fr", "table-en-orchard-harvest": "en",
                    "reference_data/klima_beispielstadt.tsv": "de", "reference_data/metro_lines.csv": "en"}
