"""Language ID backends: UDHR accuracy, agreement on clear sentences, determinism, code-switching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fm_pipeline.curation.langid import (
    BACKENDS,
    LangdetectDetector,
    LangResult,
    _segments,
    bundled_fasttext_model,
    detect_segments,
    get_detector,
    identify,
)

SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog while the children watch from the window.",
    "ko": "오늘은 날씨가 정말 좋아서 친구들과 함께 공원에 산책을 나갔습니다.",
    "zh": "今天天气很好，我们一起去公园散步，然后在湖边吃了午饭。",
    "ja": "今日はとても良い天気なので、友達と一緒に公園へ散歩に行きました。",
    "es": "El rápido zorro marrón salta sobre el perro perezoso mientras los niños miran por la ventana.",
    "ar": "ذهبنا اليوم إلى الحديقة مع الأصدقاء لأن الطقس كان جميلا جدا.",
    "hi": "आज मौसम बहुत अच्छा था इसलिए हम दोस्तों के साथ पार्क में टहलने गए।",
    "ru": "Сегодня была прекрасная погода, и мы с друзьями пошли гулять в парк.",
}
ENGLISH = (
    "Every morning the old fisherman walked down to the harbour, checked his nets and talked with "
    "the other men about the weather and the price of fish at the market."
)
SPANISH = (
    "Cada mañana el viejo pescador bajaba al puerto, revisaba sus redes y hablaba con los otros "
    "hombres sobre el tiempo y el precio del pescado en el mercado del pueblo. "
    "Después volvía a casa y comía con su mujer y sus hijos."
)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_bundled_model_is_used_offline() -> None:
    assert bundled_fasttext_model().is_file()
    assert get_detector().name == "fasttext"


def test_get_detector_is_cached_and_checks_names() -> None:
    assert get_detector("langdetect") is get_detector("langdetect")
    with pytest.raises(ValueError, match="unknown language detector"):
        get_detector("cld3")


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_backends_agree_on_clear_sentences(backend: str, lang: str) -> None:
    code, score = get_detector(backend).detect(SENTENCES[lang])
    assert code == lang
    assert 0.5 < score <= 1.0


def test_default_backend_udhr_document_accuracy(shared_corpora: Path) -> None:
    rows = [json.loads(line) for line in (shared_corpora / "multilingual" / "udhr.jsonl").open()]
    detector = get_detector()
    correct = sum(identify(row["text"], detector).lang == row["meta"]["gold_lang"] for row in rows)
    assert len(rows) >= 300
    assert correct / len(rows) >= 0.98


def test_fasttext_reads_multiline_and_uppercase_text() -> None:
    detector = get_detector("fasttext")
    assert detector.detect("first line of the letter\nand the second line of it")[0] == "en"
    assert detector.detect(SENTENCES["en"].upper())[0] == "en"


def test_langdetect_is_deterministic() -> None:
    text = "ok merci"  # unseeded langdetect answers sk or hu here, with varying probabilities
    first = get_detector("langdetect").detect(text)
    assert all(get_detector("langdetect").detect(text) == first for _ in range(5))
    assert LangdetectDetector().detect(text) == first
    assert LangdetectDetector().detect(text) == first


def test_code_switched_document(backend: str) -> None:
    detector = get_detector(backend)
    result = identify(ENGLISH + "\n\n" + SPANISH, detector)
    assert result.segments is not None
    assert set(result.segments) == {"en", "es"}
    assert result.segments["es"] > result.segments["en"] >= 0.4
    assert sum(result.segments.values()) == pytest.approx(1.0, abs=1e-3)
    assert result.lang == "es"
    assert 0.0 < result.score <= 1.0


def test_sentences_of_a_long_line_are_segments(backend: str) -> None:
    shares = detect_segments(ENGLISH + " " + SPANISH, get_detector(backend))
    assert set(shares) == {"en", "es"}
    assert list(shares) == sorted(shares)


def test_monolingual_document_has_no_segments(backend: str) -> None:
    text = ENGLISH + "\n\n" + SENTENCES["en"] + "\n" + ENGLISH.replace("fisherman", "baker")
    result = identify(text, get_detector(backend))
    assert result.lang == "en"
    assert result.segments is None
    assert result.score > 0.9


@pytest.mark.parametrize("text", ["", "   \n\t", "12345 67", "Hi", "?!"])
def test_empty_or_letterless_text_is_undetermined(backend: str, text: str) -> None:
    detector = get_detector(backend)
    assert detector.detect(text) == ("und", 0.0)
    assert identify(text, detector) == LangResult("und", 0.0)
    assert detect_segments(text, detector) == {}


def test_long_lines_split_after_sentence_marks_of_every_script() -> None:
    english = "This is the first sentence of a long line. "
    line = english * 3 + "これは日本語です。次の文です！" + "¿Qué tal? Muy bien. " * 4 + "Done."
    assert _segments(line) == [
        english * 2 + english.rstrip(),
        "これは日本語です。 次の文です！ " + "¿Qué tal? Muy bien. " * 3 + "¿Qué tal? Muy bien. Done.",
    ]
