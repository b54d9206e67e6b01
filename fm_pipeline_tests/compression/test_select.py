import pytest

from fm_pipeline.compression.select import select

NAN = float("nan")


def _c(name, size, latency, ppl_ratio, base_latency=10.0):
    return {"name": name, "size_bytes": size, "latency_ms_per_token": latency, "domain_ppl_ratio": ppl_ratio,
            "speedup": base_latency / latency if latency == latency else NAN}


CANDIDATES = [
    _c("fp32", 100, 10.0, 1.0),
    _c("int8", 26, 6.0, 1.005),     # 1.67x
    _c("int4", 15, 11.0, 1.06),     # smallest, over budget
    _c("pruned", 60, 5.0, 1.019),   # fastest within budget (2x)
    _c("distill", 50, 4.0, 1.30),   # fastest, over budget
    _c("broken", 10, 1.0, NAN),
]


def test_smallest_within_budget():
    assert select(CANDIDATES, objective="size").name == "int8"


def test_fastest_within_budget():
    chosen = select(CANDIDATES, objective="speed")
    assert (chosen.name, chosen.rule) == ("pruned", "speed")


def test_budget_moves_the_choice():
    assert select(CANDIDATES, objective="size", max_ppl_ratio=1.10).name == "int4"
    assert select(CANDIDATES, objective="speed", max_ppl_ratio=1.5).name == "distill"
    assert select(CANDIDATES, objective="size", max_ppl_ratio=1.001).name == "fp32"


def test_ties_break_on_the_other_axis():
    tied = [_c("a", 20, 9.0, 1.0), _c("b", 20, 7.0, 1.01)]
    assert select(tied, objective="size").name == "b"
    assert select([_c("a", 30, 7.0, 1.0), _c("b", 20, 7.0, 1.01)], objective="speed").name == "b"
    # equal size and latency: the better perplexity, then the name
    assert select([_c("b", 20, 7.0, 1.01), _c("a", 20, 7.0, 1.01), _c("c", 20, 7.0, 1.0)],
                  objective="size").name == "c"
    assert select([_c("b", 20, 7.0, 1.01), _c("a", 20, 7.0, 1.01)], objective="size").name == "a"


def test_default_rule_is_the_smallest_of_those_fast_enough():
    chosen = select(CANDIDATES)  # int8 (1.67x, 26) and pruned (2x, 60) are fast enough: int8 is smaller
    assert (chosen.name, chosen.rule) == ("int8", "size_at_speed")
    assert chosen.reason == ("the smallest with domain_ppl_ratio <= 1.02 and speedup >= 1.3 (int8, pruned)")
    assert select(CANDIDATES, min_speedup=1.8).name == "pruned"


def test_smaller_but_slower_loses_to_faster():
    """The case that motivated the rule: int4 is the smallest within budget but no faster than fp32."""
    rows = [_c("fp32", 100, 10.0, 1.0), _c("weight_int4", 16, 10.3, 1.01), _c("weight_int8", 27, 10.1, 1.0),
            _c("dynamic_int8", 27, 7.5, 1.001)]
    assert select(rows, objective="size").name == "weight_int4"
    chosen = select(rows)
    assert (chosen.name, chosen.rule) == ("dynamic_int8", "size_at_speed")
    assert chosen.candidate["speedup"] == pytest.approx(10 / 7.5)


def test_speedup_exactly_at_the_threshold_counts():
    rows = [_c("fp32", 100, 10.0, 1.0), _c("a", 40, 8.0, 1.0), _c("b", 30, 10.0 / 1.25, 1.0)]
    rows[2]["speedup"] = 1.25
    chosen = select(rows, min_speedup=1.25)
    assert (chosen.name, chosen.rule) == ("b", "size_at_speed")


def test_none_fast_enough_falls_back_to_the_fastest():
    rows = [_c("fp32", 100, 10.0, 1.0), _c("w4", 16, 10.5, 1.01), _c("w8", 27, 9.0, 1.0),
            _c("prune", 60, 8.5, 1.05)]  # prune: fastest overall, over budget
    chosen = select(rows)
    assert (chosen.name, chosen.rule) == ("w8", "fastest")
    assert chosen.reason == ("none with domain_ppl_ratio <= 1.02 (fp32, w4, w8) has speedup >= 1.3: "
                             "the fastest of them")
    # a tie on latency in the fallback goes to the smaller
    tied = [_c("fp32", 100, 10.0, 1.0), _c("x", 50, 9.0, 1.0), _c("y", 40, 9.0, 1.01)]
    assert select(tied).name == "y"
    # nothing faster than fp32 at all: fp32 is published
    assert select([_c("fp32", 100, 10.0, 1.0), _c("w4", 16, 12.0, 1.0)]).name == "fp32"


def test_nan_never_qualifies():
    rows = [_c("fp32", 100, 10.0, 1.0),
            _c("nan_latency", 10, NAN, 1.0),           # within budget, speedup unknown: not fast, ranks slowest
            _c("nan_ppl", 5, 2.0, NAN),                # fastest and smallest, perplexity unknown: over budget
            _c("slow", 50, 9.0, 1.0)]
    assert select(rows).name == "slow"
    assert select(rows, objective="speed").name == "slow"
    assert select(rows, objective="size").name == "nan_latency"
    missing = [_c("fp32", 100, 10.0, 1.0), {"name": "no_speedup", "size_bytes": 10, "latency_ms_per_token": 5.0,
                                            "domain_ppl_ratio": 1.0}]
    assert select(missing).name == "no_speedup"  # the fallback ranks by latency, which it has
    chosen = select(missing, min_speedup=1.0)  # fp32 (1.0x) qualifies; the one without a speedup does not
    assert (chosen.name, chosen.rule) == ("fp32", "size_at_speed")


def test_nothing_within_budget_is_an_error():
    with pytest.raises(ValueError):
        select([_c("x", 1, 1.0, 2.0)])
    with pytest.raises(ValueError):
        select(CANDIDATES, objective="cheapest")
