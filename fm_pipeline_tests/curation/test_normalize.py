"""normalize_text: exact repairs, what it must leave alone, and idempotence on odd and real text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fm_pipeline.curation.normalize import normalize_text

CASES = [
    ("cafÃ©", "café"),  # UTF-8 read as Latin-1
    ("donâ€™t", "don’t"),  # UTF-8 read as Windows-1252; the curly quote stays curly
    ("VÃ\xadctor", "Víctor"),  # the soft hyphen is half of the mojibake: repaired before junk removal
    ("РїСЂРёРІРµС‚", "привет"),  # UTF-8 read as Windows-1251
    ("It\x92s", "It’s"),  # a stray C1 control is the Windows-1252 character it stands for
    ("Ã\u200b©", "é"),  # junk between the halves of a mojibake sequence
    ("e\u0301", "\u00e9"),  # NFC: e + combining acute -> é
    ("a\x00b\x07c\x7fd", "abcd"),
    ("zero\u200bwidth\ufeff\u2060 joins\xad", "zerowidth joins"),
    ("\x1b[31mred\x1b[0m", "red"),
    ("one\r\ntwo\rthree\u2028four\x0cfive", "one\ntwo\nthree\nfour\nfive"),
    ("a  b   c  \n\n\n\nd\t \n", "a b c\n\nd"),
    ("  \n\n lead and trail \n\n ", "lead and trail"),
    ("def f():\n    return  1", "def f():\n    return 1"),  # indentation kept, inner runs collapsed
    ("col1\tcol2", "col1\tcol2"),
    ("می\u200cخواهم 👩\u200d💻", "می\u200cخواهم 👩\u200d💻"),  # joiners carry meaning: kept
    ("“quoted” ﬁne ＡＢ &amp; ‘x’", "“quoted” ﬁne ＡＢ &amp; ‘x’"),  # no needless rewriting
    ("Zażółć gęślą jaźń", "Zażółć gęślą jaźń"),
    ("人人生而自由，在尊严和权利上一律平等。", "人人生而自由，在尊严和权利上一律平等。"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_normalize_exact(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_normalize_is_idempotent_on_cases(raw: str, expected: str) -> None:
    assert normalize_text(expected) == expected


def test_normalize_is_idempotent_on_random_junk() -> None:
    """Random mixes of mojibake pieces, controls, combining marks and spaces reach a fixed point at once."""
    pieces = list("ab cÃ©â€™Â \n\t\r\x00\x07\x81\x85\x92\u200b\ufeff\u0301e\xa0\xadТЂØÙ.,") + [
        "café",
        "  ",
        "\x1b[1m",
        "\ud83d",
    ]
    rng = random.Random(0)
    for _ in range(5000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        once = normalize_text(raw)
        assert normalize_text(once) == once, repr(raw)


@pytest.mark.parametrize("relative", ["multilingual/udhr.jsonl", "web/common_crawl_en.jsonl", "domain/legal.jsonl"])
def test_normalize_is_idempotent_on_real_text(shared_corpora: Path, relative: str) -> None:
    lines = (shared_corpora / relative).read_text(encoding="utf-8").splitlines()
    for row in map(json.loads, lines):
        once = normalize_text(row["text"])
        assert normalize_text(once) == once, row["id"]
        assert once.strip() == once and "\r" not in once and "\n\n\n" not in once
