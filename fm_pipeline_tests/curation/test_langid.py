"""Language ID backends: held-out and UDHR accuracy, the script, label and alphabet rules, agreement on clear
sentences, determinism, code-switching."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.langid import heldout_scores, load_sentences
from fm_pipeline.curation.langid.backends import BACKENDS, LangdetectDetector, bundled_fasttext_model, get_detector
from fm_pipeline.curation.langid.scripts import main_script, text_scripts
from fm_pipeline.curation.langid.segments import LangResult, _segments, detect_segments, identify

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


def test_heldout_sentences_cover_29_languages_with_20_or_more() -> None:
    sentences = load_sentences()
    counts = Counter(s.lang for s in sentences)
    assert (len(sentences), len(counts), sum(n >= 20 for n in counts.values())) == (858, 33, 29)
    assert Counter(s.split for s in sentences) == {"tune": 423, "test": 435}
    assert Counter(s.length for s in sentences) == {"short": 399, "medium": 459}
    assert "wooorm/udhr" not in {s.source for s in sentences}


def test_default_backend_heldout_accuracy() -> None:
    """At least 0.97 overall and on the half no rule was tuned on; no language with 20 sentences or more below
    0.80 (fastText alone cannot tell short Nynorsk from Danish and Swedish, or Croatian from Serbian and
    Bosnian: Norwegian 0.82 and Croatian 0.84 are the lowest today)."""
    scores = heldout_scores(get_detector(), load_sentences())
    assert scores["accuracy"]["all"] >= 0.97
    assert scores["accuracy"]["test"] >= 0.97
    assert scores["accuracy"]["short"] >= 0.95
    floors = {lang: by["all"] for lang, by in scores["per_language"].items() if by["n"] >= 20}
    assert len(floors) == 29
    assert min(floors.values()) >= 0.80
    assert sum(accuracy >= 0.96 for accuracy in floors.values()) >= 25


def test_combined_backend_heldout_accuracy() -> None:
    """fastText with langdetect consulted when unsure: at least 0.98 overall and on the test half, every language
    with 20 sentences or more at 0.85 or better (Bulgarian and Norwegian, 0.89, are the lowest today)."""
    scores = heldout_scores(get_detector("fasttext+langdetect"), load_sentences())
    assert scores["accuracy"]["all"] >= 0.98
    assert scores["accuracy"]["test"] >= 0.98
    floors = [by["all"] for by in scores["per_language"].values() if by["n"] >= 20]
    assert min(floors) >= 0.85
    assert sum(accuracy >= 0.96 for accuracy in floors) >= 26


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Ofte vil hinduar lesa skriftene sine på fleire nivå.", "no"),  # fastText: nn, folded into no
        ("Han er midtstoppar i den norske eliteserieklubben.", "no"),  # da 0.33 < nn 0.23 + no 0.16
        ("Atmosfera je upotpunjena klicanjem navijačkih prometnih pjesama iz publike.", "hr"),  # fastText: sh
        ("还需要很长的路要走", "zh"),  # wuu 0.36 < sh 0.27 + hr 0.16 until Latin labels were ruled out
        ("人人有权享有国籍。", "zh"),  # ja 0.69: no kana, so Chinese
        ("東京都知事選挙", "ja"),  # a kanji-only Japanese compound stays Japanese
        ("August älskar sin Sara.", "sv"),  # id 0.15 > sv 0.13, but Indonesian has no ä
    ],
)
def test_fasttext_label_script_and_alphabet_rules(text: str, lang: str) -> None:
    assert get_detector("fasttext").detect(text)[0] == lang


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("plain ascii", "Latin"),
        ("12345 ...", None),
        ("Şu an İstanbul'dayım", "Latin"),
        ("Привет, мир: hello", "Cyrillic"),
        ("これはペンです", "Han"),
        ("東京都知事選挙", "Han"),
        ("人人有权享有国籍。", "Han without kana"),
        ("한국어(韓國語)는 주로", "Hangul"),
        ("ภาษาไทย", "Thai"),
        ("😀😀😀 ok", "Latin"),
        ("ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", None),  # Cherokee: no script listed
    ],
)
def test_main_script(text: str, script: str | None) -> None:
    assert main_script(text) == script


@pytest.mark.parametrize(
    ("text", "scripts"),
    [
        ("Next.js에서 SvelteKit으로 migration한 이야기", ("Latin", "Hangul")),  # 24 letters, 8 syllables weigh 24
        ("서울 is the capital", ("Latin", "Hangul")),  # 2 syllables weigh 6 of 20: over a fifth
        ("The noodle shop on Orchard Road is called 好", ("Latin",)),  # 1 Han character weighs 3 of 36
        ("人人有权享有国籍。", ("Han without kana",)),
    ],
)
def test_text_scripts_weigh_syllables(text: str, scripts: tuple[str, ...]) -> None:
    assert text_scripts(text) == scripts


def test_text_in_an_unlisted_script_is_still_read(backend: str) -> None:
    lang, score = get_detector(backend).detect("ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ ᎠᏍᎦᏯ")
    assert 0.0 <= score <= 1.0 and isinstance(lang, str)


def test_langdetect_answers_only_languages_of_the_script() -> None:
    """langdetect calls some Chinese sentences Korean; no Hangul in them, so it is ruled out."""
    assert get_detector("langdetect").detect("大多數的加長型禮車則是租車公司的財產。")[0] == "zh"  # ko 0.71, zh-tw 0.29


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
