"""The shipped labelled task sets read back with their exact sizes and labels; span F1 and macro F1 on
constructed predictions."""

from __future__ import annotations

from collections import Counter

import pytest

from fm_pipeline.downstream.metrics import bio_spans, macro_f1, span_f1
from fm_pipeline.downstream.tasks import TASK_OF_DOMAIN, TASKS, read_task
from fm_pipeline.lake.paths import DOMAINS


def test_every_domain_has_one_task():
    assert sorted(TASK_OF_DOMAIN) == sorted(DOMAINS)


@pytest.mark.parametrize(("name", "train", "test", "labels"), [
    ("scicite", 88, 29, {"background": 74, "method": 22, "result": 21}),
    ("financial_sentiment", 108, 36, {"negative": 48, "neutral": 48, "positive": 48}),
    ("cuad_clauses", 136, 41, {"assignment": 15, "confidentiality": 20, "counterparts": 19, "dispute_resolution": 13,
                               "entire_agreement": 15, "force_majeure": 9, "governing_law": 19,
                               "indemnification": 10, "notices": 24, "severability": 21, "termination": 12}),
])
def test_classification_sets(name, train, test, labels):
    data = read_task(name)
    assert (len(data.train), len(data.test)) == (train, test)
    assert data.labels == tuple(sorted(labels))
    assert Counter(e.label for e in data.train + data.test) == labels
    assert all(e.text.strip() for e in data.train + data.test)
    assert len({e.id for e in data.train + data.test}) == train + test


def test_cuad_clauses_keep_no_heading_and_split_by_contract():
    data = read_task("cuad_clauses")
    governing = [e.text for e in data.train if e.label == "governing_law"]
    assert all(not t.lower().startswith("governing law") for t in governing)
    assert sum("laws of the state of" in t.lower() for t in governing) >= 8
    contracts = lambda rows: {e.id.split("-")[1] for e in rows}  # noqa: E731
    assert not contracts(data.train) & contracts(data.test)


def test_ncbi_disease_sentences_and_spans():
    data = read_task("ncbi_disease")
    assert (len(data.train), len(data.test)) == (95, 20)
    assert data.labels == ("O", "B-Disease", "I-Disease")
    tags = Counter(t for e in data.train + data.test for t in e.tags)
    assert tags == {"O": 2755, "B-Disease": 66, "I-Disease": 116}
    first = next(e for e in data.train if e.id == "ncbi-8589722-01")
    spans = [" ".join(first.tokens[s:e + 1]) for _, s, e in sorted(bio_spans(first.tags), key=lambda x: x[1])]
    assert spans == ["inherited breast and ovarian cancer"]
    assert {e.id.split("-")[1] for e in data.test} == {"8605116", "8700509", "8808605"}  # every 4th abstract


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task"):
        read_task("sentiment")
    assert set(TASKS) == {"ncbi_disease", "scicite", "cuad_clauses", "financial_sentiment"}


def test_bio_spans_follow_iob2_chunking():
    assert bio_spans(["B-D", "I-D", "O", "B-D", "B-D", "I-D"]) == {("D", 0, 1), ("D", 3, 3), ("D", 4, 5)}
    assert bio_spans(["O", "I-D", "I-D", "O"]) == {("D", 1, 2)}  # an I- without B- opens a chunk
    assert bio_spans(["B-D", "I-X", "O"]) == {("D", 0, 0), ("X", 1, 1)}
    assert bio_spans(["O", "O"]) == set()


def test_span_f1_needs_exact_boundaries():
    gold = [["B-D", "I-D", "O", "B-D"], ["O", "B-D", "I-D", "I-D"]]
    pred = [["B-D", "I-D", "O", "O"], ["O", "B-D", "I-D", "O"]]  # one exact, one cut short, one missed
    assert span_f1(gold, pred) == {"precision": 0.5, "recall": pytest.approx(1 / 3), "f1": pytest.approx(0.4)}
    assert span_f1(gold, gold)["f1"] == 1.0
    assert span_f1([["O"]], [["O"]])["f1"] == 0.0
    with pytest.raises(ValueError):
        span_f1(gold, pred[:1])


def test_macro_f1_weighs_classes_equally():
    gold = ["a", "a", "a", "a", "b", "c"]
    pred = ["a", "a", "a", "a", "a", "a"]
    # a: 2*4/(6+4)=0.8, b: 0, c: 0
    assert macro_f1(gold, pred) == pytest.approx(0.8 / 3)
    assert macro_f1(gold, gold) == 1.0
    assert macro_f1(["a", "b"], ["b", "c"]) == 0.0
