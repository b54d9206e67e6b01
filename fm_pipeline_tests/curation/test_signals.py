"""Quality signals: exact values on small texts, sensible orderings on real ones, and the public corpora."""

from __future__ import annotations

import json
import math
from pathlib import Path

from fm_pipeline.curation.quality.gopher import top_ngram_chars
from fm_pipeline.curation.quality.view import TextView
from fm_pipeline.curation.signals import _syllables_en, quality_signals
from fm_pipeline_tests.curation.test_quality import ARABIC, CHINESE, ENGLISH

COMMON_KEYS = {"compression_ratio", "ttr", "mean_word_length", "dup_line_frac", "top_2gram_frac"}


def test_english_signals_have_flesch_and_are_rounded() -> None:
    signals = quality_signals(ENGLISH, "en")
    assert set(signals) == COMMON_KEYS | {"flesch_reading_ease"}
    assert all(round(value, 4) == value for value in signals.values())
    assert quality_signals(ENGLISH, "en") == signals  # deterministic


def test_flesch_reading_ease_exact() -> None:
    # 6 words, 1 sentence, 6 syllables: 206.835 - 1.015 * 6 - 84.6 * 1
    assert quality_signals("The cat sat on the mat.", "en")["flesch_reading_ease"] == 116.145


def test_fernandez_huerta_for_spanish() -> None:
    # el(1) ga-to(2) co-me(2) pan(1): 206.84 - 60 * 6 / 4 - 1.02 * 4
    signals = quality_signals("El gato come pan.", "es")
    assert signals["fernandez_huerta"] == 112.76
    assert "flesch_reading_ease" not in signals


def test_no_readability_without_a_formula() -> None:
    assert set(quality_signals(CHINESE, "zh")) == COMMON_KEYS
    assert set(quality_signals(ARABIC, "ar")) == COMMON_KEYS


def test_simple_text_reads_easier_than_legal_text() -> None:
    simple = "We went to the park. The sun was out. My dog ran and ran. Then we all went home to eat."
    legal = (
        "Notwithstanding the foregoing, the indemnifying party shall, at its own expense, defend any "
        "proceeding instituted against the indemnified party, provided that the indemnified party promptly "
        "notifies the indemnifying party in writing of such proceeding."
    )
    assert quality_signals(simple, "en")["flesch_reading_ease"] > quality_signals(legal, "en")["flesch_reading_ease"]


def test_compression_ratio_is_low_for_repetitive_text() -> None:
    repetitive = "Buy cheap shoes now. " * 50
    assert (
        quality_signals(repetitive, "en")["compression_ratio"]
        < 0.1
        < quality_signals(ENGLISH, "en")["compression_ratio"]
    )


def test_ttr_only_reads_the_first_1000_words() -> None:
    distinct = " ".join(f"word{i}" for i in range(1000))
    assert quality_signals(distinct + " the" * 2000, "en")["ttr"] == 1.0
    assert quality_signals("The cat and THE dog, the end.", "en")["ttr"] == round(5 / 7, 4)  # the x3 -> 1 type


def test_repetition_signals_exact() -> None:
    text = "Share this\nGood line one\nShare this\nShare this"
    signals = quality_signals(text, "en")
    assert signals["dup_line_frac"] == 0.5
    words = TextView(text, "en").words
    assert signals["top_2gram_frac"] == round(top_ngram_chars(words, 2) / len(text), 4)
    assert quality_signals("a b a b", "en")["top_2gram_frac"] == round(4 / 7, 4)


def test_blank_text_has_no_signals() -> None:
    assert quality_signals("", "en") == {}
    assert quality_signals(" \n\n ", "en") == {}


def test_signals_on_the_udhr(shared_corpora: Path) -> None:
    rows = [json.loads(line) for line in (shared_corpora / "multilingual" / "udhr.jsonl").open(encoding="utf-8")]
    for row in rows:
        lang = row["meta"]["gold_lang"]
        signals = quality_signals(row["text"], lang)
        assert all(math.isfinite(value) for value in signals.values()), row["id"]
        assert 0.0 < signals["compression_ratio"] < 1.0
        assert 0.0 < signals["ttr"] <= 1.0
        assert ("flesch_reading_ease" in signals) == (lang == "en")
        assert ("fernandez_huerta" in signals) == (lang == "es")


def test_english_silent_e_needs_a_consonant_other_than_l_and_an_earlier_vowel() -> None:
    words = "made time table free the be eye 3made made_ bake. rhythm crwth cafe axe shoe ole"
    assert [_syllables_en(word) for word in words.split()] == [1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2]
    assert _syllables_en(words) == 19
