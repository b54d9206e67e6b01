import pytest

from fm_pipeline.compression.select import select


def _c(name, size, latency, ppl_ratio):
    return {"name": name, "size_bytes": size, "latency_ms_per_token": latency, "domain_ppl_ratio": ppl_ratio}


CANDIDATES = [
    _c("fp32", 100, 10.0, 1.0),
    _c("int8", 26, 6.0, 1.005),
    _c("int4", 15, 11.0, 1.06),     # smallest, over budget
    _c("pruned", 60, 5.0, 1.019),   # fastest within budget
    _c("distill", 50, 4.0, 1.30),   # fastest, over budget
    _c("broken", 10, 1.0, float("nan")),
]


def test_smallest_within_budget():
    assert select(CANDIDATES)["name"] == "int8"


def test_fastest_within_budget():
    assert select(CANDIDATES, objective="speed")["name"] == "pruned"


def test_budget_moves_the_choice():
    assert select(CANDIDATES, max_ppl_ratio=1.10)["name"] == "int4"
    assert select(CANDIDATES, objective="speed", max_ppl_ratio=1.5)["name"] == "distill"
    assert select(CANDIDATES, max_ppl_ratio=1.001)["name"] == "fp32"


def test_ties_break_on_the_other_axis():
    tied = [_c("a", 20, 9.0, 1.0), _c("b", 20, 7.0, 1.01)]
    assert select(tied)["name"] == "b"


def test_nothing_within_budget_is_an_error():
    with pytest.raises(ValueError):
        select([_c("x", 1, 1.0, 2.0)])
    with pytest.raises(ValueError):
        select(CANDIDATES, objective="cheapest")
