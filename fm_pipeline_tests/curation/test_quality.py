"""Quality rules: exact reasons on real-looking text in several languages, and on the public corpora."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fm_pipeline.curation.quality.c4 import C4Quality
from fm_pipeline.curation.quality.code import CodeQuality
from fm_pipeline.curation.quality.fineweb import FineWebQuality
from fm_pipeline.curation.quality.gopher import (
    GopherQuality,
    GopherRepetition,
    duplicate_ngram_chars,
    top_ngram_chars,
)
from fm_pipeline.curation.quality.profiles import code_rules, prose_rules
from fm_pipeline.curation.quality.rule import run_rules
from fm_pipeline.curation.quality.view import (
    TextView,
    count_sentences,
    count_sentences_in,
    duplicates,
    punctuation_chars,
)
from fm_pipeline.curation.stopwords import count_stop_words, normalize_lang, stop_words
from fm_pipeline.curation.words import split_words

ENGLISH = (
    "The city council voted on Tuesday to extend the hours of the main public library, which will now stay "
    "open until nine o'clock on weekday evenings. The decision follows a year of complaints from students and "
    "shift workers who said they could not reach the building before it closed at six.\n\n"
    "Library staff welcomed the change but warned that it would only work if the council also funded two "
    'additional positions. "We are happy to open longer, but we cannot ask the same people to cover every '
    'evening," said the head librarian. The new schedule begins in March and will be reviewed after six months.'
)
KOREAN = (
    "서울의 봄은 짧지만 아름답다. 삼월 말이 되면 한강 주변의 벚꽃이 피기 시작하고, 주말마다 많은 사람들이 가족이나 "
    "친구와 함께 공원을 찾는다. 낮에는 따뜻하지만 저녁에는 아직 바람이 차가워서 얇은 외투를 챙기는 것이 좋다.\n\n"
    "최근에는 동네 도서관에서 열리는 독서 모임도 인기가 많다. 참가자들은 한 달에 한 권의 책을 함께 읽고, 마지막 주 "
    "토요일에 모여 각자의 생각을 나눈다. 처음에는 어색해하던 사람들도 몇 번 참여하고 나면 자연스럽게 "
    "이야기를 이어 간다.\n\n"
    "이런 작은 모임은 바쁜 도시 생활 속에서 이웃과 연결될 수 있는 좋은 기회가 된다. 도서관 측은 앞으로 어린이와 노인을 "
    "위한 프로그램도 늘릴 계획이라고 밝혔다."
)
CHINESE = (
    "北京的秋天是一年中最舒服的季节。天空很高，空气干燥，早晚的温度也很适合散步。每到周末，很多人会去香山看红叶，"
    "山路上常常挤满了拍照的游客。\n\n"
    "除了自然风景，城市里的小胡同也很有意思。走进一条安静的胡同，你可以看到老人坐在门口下棋，孩子们在院子里追着跑。"
    "街角的小店卖着刚出炉的烧饼，香味能飘得很远。\n\n"
    "对于第一次来北京的人来说，最好的办法是放慢脚步，不要急着把所有景点都看完。花一个下午在胡同里随便走走，"
    "往往比排队参观名胜更能了解这座城市的生活。"
)
JAPANESE = (
    "京都の冬は寒いが、観光客が少ないので静かに寺を見て回ることができる。朝早く清水寺に行くと、雪をかぶった屋根と"
    "白い息を吐く僧侶の姿が見られることもある。昼には近くの店で温かいうどんを食べて体を温めるのがいい。\n\n"
    "最近は古い町家を改装した小さな宿も増えている。畳の部屋に泊まり、木の風呂に入ると、昔の暮らしを少しだけ体験できる。"
    "宿の主人が近所のおすすめの店を教えてくれることも多い。\n\n"
    "旅行の計画を立てるときは、あまり予定を詰め込みすぎないほうがいい。ゆっくり歩きながら路地をのぞくと、"
    "ガイドブックには載っていない景色に出会えるからだ。"
)
ARABIC = (
    "تعد القهوة جزءا مهما من الحياة اليومية في كثير من البلدان العربية. يبدأ الناس يومهم بفنجان صغير من القهوة، "
    "وغالبا ما تقدم للضيوف عند وصولهم إلى البيت تعبيرا عن الترحيب والكرم. وتختلف طريقة تحضيرها من منطقة إلى أخرى، "
    "فبعضهم يضيف الهيل وبعضهم يفضلها سادة.\n\n"
    "في المدن الكبيرة انتشرت المقاهي الحديثة التي تقدم أنواعا جديدة من المشروبات، لكن المقاهي الشعبية ما زالت تحتفظ "
    "بمكانتها. يجتمع فيها كبار السن لمناقشة أخبار الحي ولعب الطاولة، بينما يأتي الطلاب للدراسة مع أصدقائهم.\n\n"
    "وهكذا تبقى القهوة أكثر من مجرد مشروب، فهي مناسبة للقاء والحديث وتبادل الأفكار بين الأجيال."
)
HINDI = (
    "भारत में त्योहारों का मौसम अक्टूबर से शुरू होकर दिसंबर तक चलता है। इस दौरान लोग अपने घरों की सफ़ाई करते हैं, नए "
    "कपड़े खरीदते हैं और रिश्तेदारों से मिलने जाते हैं। दिवाली के दिन हर घर में दीये जलाए जाते हैं और बच्चे पटाखे चलाते हैं।\n\n"
    "गाँवों में त्योहारों का रंग और भी अलग होता है। वहाँ लोग मिलकर मेले लगाते हैं, जिनमें झूले, मिठाइयों की दुकानें और लोक "
    "संगीत के कार्यक्रम होते हैं। कई परिवार साल भर इसी समय का इंतज़ार करते हैं क्योंकि शहरों में काम करने वाले बच्चे घर लौटते हैं।\n\n"
    "हालाँकि आजकल लोग पर्यावरण के बारे में ज़्यादा सोचने लगे हैं, इसलिए कई शहरों में पटाखों की जगह दीयों और रंगोली पर ज़ोर "
    "दिया जा रहा है।"
)
KEYWORD_STUFFED = (
    "Cheap flights to Paris are here. Find cheap flights to Paris with our cheap flights to Paris search, "
    "because cheap flights to Paris make cheap flights to Paris easy for the whole family. Compare cheap "
    "flights to Paris and book cheap flights to Paris today. The best cheap flights to Paris deals are the "
    "cheap flights to Paris you find with us, and our cheap flights to Paris team loves cheap flights to "
    "Paris more than anything."
)
PYTHON_FILE = '''"""Small helpers for reading configuration files."""

from __future__ import annotations

import json
from pathlib import Path

DEFAULTS = {"retries": 3, "timeout_s": 30.0, "verbose": False}


def load_config(path: Path) -> dict:
    """Defaults overlaid with the JSON object stored at `path`."""
    config = dict(DEFAULTS)
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            config.update(json.load(handle))
    return config


def retries(config: dict) -> int:
    value = int(config.get("retries", 0))
    if value < 0:
        raise ValueError(f"retries must be >= 0, got {value}")
    return value
'''


def _lines(*parts: str) -> str:
    return "\n".join(parts)


# --- prose: one expected reason per kind of junk ------------------------------------------------------------


def test_real_english_paragraph_is_kept() -> None:
    assert run_rules(prose_rules(), ENGLISH, "en") is None


def test_ten_words_is_too_short() -> None:
    assert run_rules(prose_rules(), "Buy now and save big on all of our shoes.", "en") == "gopher_quality:word_count"


def test_hashtag_page_fails_the_symbol_ratio() -> None:
    words = (
        "travel mountains hiking summer alps switzerland nature photography adventure wanderlust sunrise lake "
        "glacier trail camping backpacking outdoors explore landscape instatravel travelgram views peaks snow "
        "forest river valley village cheese chocolate train scenic roadtrip holiday vacation friends family "
        "memories weekend getaway fresh air freedom happiness"
    )
    tags = " ".join(f"#{word}" for word in words.split(" "))
    text = "Our trip to the mountains was the best part of the summer and we took many photos along the way.\n" + tags
    assert run_rules(prose_rules(), text, "en") == "gopher_quality:hash_ratio"


def test_bullet_list_page() -> None:
    items = [
        "Fresh organic apples from local farms", "Handmade wooden chairs for the kitchen",
        "Warm wool blankets in six colours", "Ceramic mugs glazed by local artists",
        "Linen napkins with embroidered edges", "Cast iron pans that last for decades",
        "Beeswax candles with a honey scent", "Woven baskets for the weekly market",
        "Copper kettles polished by hand", "Stoneware bowls for soup and salad",
        "Cotton aprons with deep front pockets", "Olive wood boards for bread and cheese",
    ]  # fmt: skip
    text = _lines("Our shop", *(f"• {item}" for item in items))
    assert run_rules(prose_rules(), text, "en") == "gopher_quality:bullet_lines"


def test_teaser_lines_ending_in_ellipses() -> None:
    teasers = [
        "The mayor announced a new plan for the old harbour district and said that the first buildings will",
        "Scientists at the university have found that the birds in the northern valley are changing their",
        "After three years of work the team behind the bridge project finally opened it to the public and",
        "Parents at the primary school have asked the board for a longer lunch break because the children",
    ]
    assert run_rules(prose_rules(), _lines(*(t + " ..." for t in teasers)), "en") == "gopher_quality:ellipsis_lines"


def test_table_of_numbers_fails_alpha_words() -> None:
    rows = [f"{year} {1200 + year % 7 * 31} {450 + year % 5 * 17} {98 - year % 3}" for year in range(1990, 2010)]
    text = _lines("Annual figures for the region and the city", *rows)
    assert run_rules(prose_rules(), text, "en") == "gopher_quality:alpha_words"


def test_keyword_list_without_stop_words() -> None:
    text = (
        "Wireless headphones bluetooth speaker portable charger laptop stand ergonomic keyboard gaming mouse "
        "mechanical switches monitor arm webcam cover phone case screen protector tablet sleeve smart watch "
        "fitness tracker running shoes yoga mat water bottle backpack travel pillow sunglasses wallet keychain "
        "desk lamp office chair standing desk cable organizer power bank usb hub memory card external drive "
        "noise cancelling earbuds microphone tripod ring light streaming deck capture card"
    )
    assert run_rules(prose_rules(), text, "en") == "gopher_quality:stop_words"


def test_repeated_lines_page() -> None:
    text = _lines(
        "Welcome to our little bakery in the centre of the old town, open since the spring of 1987.",
        "Click here to subscribe to our newsletter.",
        "Every morning we bake bread, rolls and cakes with flour from the mill down the river.",
        "Click here to subscribe to our newsletter.",
        "On Saturdays the children of the neighbourhood can decorate their own biscuits with us.",
        "Click here to subscribe to our newsletter.",
        "We are closed on Mondays and during the first two weeks of August for our summer holiday.",
        "Click here to subscribe to our newsletter.",
    )
    assert run_rules(prose_rules(), text, "en") == "gopher_repetition:dup_line_frac"


def test_keyword_stuffing_fails_a_top_ngram_rule() -> None:
    assert run_rules(prose_rules(), KEYWORD_STUFFED, "en") == "gopher_repetition:top_2gram_frac"


def test_lorem_ipsum_placeholder() -> None:
    text = ENGLISH + (
        "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
        "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
        "aliquip ex ea commodo consequat."
    )
    assert run_rules(prose_rules(), text, "en") == "c4:lorem_ipsum"


def test_curly_bracket_in_a_prose_line() -> None:
    text = ENGLISH + "\n\nTo personalise the letter, write {first_name} where the name of the reader should go."
    assert run_rules(prose_rules(), text, "en") == "c4:curly_bracket"


def test_curly_bracket_in_a_line_c4_drops_is_ignored() -> None:
    # C4 only looks for "{" in lines that survive its line rules; a code-like line does not.
    assert run_rules(prose_rules(), ENGLISH + "\n\nfunction track() { return 1 }", "en") is None


def test_headings_only_page_has_no_terminal_punctuation() -> None:
    text = _lines(
        "Home and Garden Ideas for the Spring Season",
        "How to Plant Tomatoes in a Small Backyard Garden",
        "The Best Flowers for a Shady Corner of the Yard",
        "Ten Tips for Keeping Your Lawn Green in the Summer",
        "Why You Should Start a Compost Heap This Year",
        "A Simple Guide to Pruning Roses and Fruit Trees",
        "What to Do With All the Leaves in the Autumn",
    )
    assert run_rules(prose_rules(), text, "en") == "c4:terminal_punct"


def test_three_sentences_are_too_few_for_c4() -> None:
    text = (
        "The museum on the hill reopened last week after two years of repairs to its roof and its old wooden "
        "floors. Visitors can once again see the collection of maps and paintings that tell the story of the "
        "valley and the families who farmed it for three hundred years. Entry is free for children and for "
        "anyone who lives in the county."
    )
    assert run_rules(prose_rules(), text, "en") == "c4:too_few_sentences"


def test_javascript_and_policy_lines_do_not_count_as_sentences() -> None:
    sentences = [
        "The river festival returns this weekend with boat races, music and food stalls along the bank.",
        "Organisers expect more than ten thousand visitors over the two days if the weather stays dry.",
        "Parking near the bridge will be closed, so visitors are asked to come by bus or by bicycle.",
        "The fireworks start at ten o'clock on Saturday evening and can be seen from the old town.",
    ]
    boilerplate = [
        "Please enable JavaScript to see the comments below.",
        "This site uses cookies to improve the service.",
    ]
    assert C4Quality().filter(_lines(*sentences, *boilerplate), "en") == "c4:too_few_sentences"
    extra = "Tickets for the concert on the main stage are sold at the tourist office for twelve euros."
    assert C4Quality().filter(_lines(*sentences, extra, *boilerplate), "en") is None


def test_mostly_unpunctuated_lines_fail_fineweb() -> None:
    headings = [
        "Opening hours of the reading rooms and the archive", "Membership cards for residents of the county",
        "Evening lectures on local history and archaeology", "Children's corner with picture books and games",
        "Study spaces with power sockets and free wireless", "Printing and scanning services at the front desk",
        "Interlibrary loans from the national collection", "Accessible entrance from the car park behind us",
        "Volunteers wanted for the summer reading challenge", "Donations of books in good condition welcome",
    ]  # fmt: skip
    text = _lines(ENGLISH.replace("\n\n", " "), *headings)
    assert run_rules(prose_rules(), text, "en") == "fineweb:line_punct_frac"


def test_mostly_short_lines_fail_fineweb() -> None:
    menu = [
        "Home",
        "About us",
        "Our team",
        "Careers",
        "Press",
        "Contact",
        "Opening hours",
        "Directions",
        "Shop",
        "Blog",
    ]
    text = _lines(*ENGLISH.split("\n\n"), *menu)
    assert run_rules(prose_rules(), text, "en") == "fineweb:short_line_frac"


def test_one_repeated_line_fails_fineweb_duplicate_characters() -> None:
    text = _lines(
        *ENGLISH.split("\n\n"), "Share this article with your friends", "Share this article with your friends"
    )
    assert run_rules(prose_rules(), text, "en") == "fineweb:dup_line_char_frac"


def test_many_line_breaks_per_word_is_a_list() -> None:
    words = ["apples", "pears", "plums", "cherries", "grapes", "lemons", "oranges", "melons", "peaches", "apricots"]
    text = _lines(*(f"{word.capitalize()}." for word in words))  # short lines: relax that rule to reach this one
    assert FineWebQuality(max_short_line_frac=2.0).filter(text, "en") == "fineweb:list_ratio"


@pytest.mark.parametrize(
    ("text", "lang"),
    [(ENGLISH, "en"), (KOREAN, "ko"), (CHINESE, "zh"), (JAPANESE, "ja"), (ARABIC, "ar"), (HINDI, "hi")],
    ids=["en", "ko", "zh", "ja", "ar", "hi"],
)
def test_real_prose_in_many_languages_is_kept(text: str, lang: str) -> None:
    assert run_rules(prose_rules(), text, lang) is None


def test_korean_word_length_override_keeps_normal_prose() -> None:
    view = TextView(KOREAN, "ko")
    assert 2.0 < view.mean_word_length < 3.5  # Korean whitespace words are short in syllables
    assert GopherQuality().filter(KOREAN, "ko") is None


def test_arabic_is_not_judged_with_english_stop_words() -> None:
    words = split_words(ARABIC)
    assert count_stop_words(words, "en") == 0
    assert count_stop_words(words, "ar") >= 10
    assert GopherQuality().filter(ARABIC, "ar") is None
    assert GopherQuality().filter(ARABIC, "und") is None  # no list for the language: rule skipped
    assert GopherQuality().filter(ARABIC, "en") == "gopher_quality:stop_words"  # what English lists would do


def test_spaceless_text_counts_characters_as_words() -> None:
    assert GopherQuality().filter("北京的秋天是一年中最舒服的季节。", "zh") == "gopher_quality:word_count"
    assert GopherQuality().filter(CHINESE, "zh") is None


# --- code ---------------------------------------------------------------------------------------------------


def test_python_file_passes_code_rules_but_not_prose_rules() -> None:
    assert run_rules(code_rules(), PYTHON_FILE, "en") is None
    assert run_rules(prose_rules(), PYTHON_FILE, "en") is not None


def test_autogenerated_header() -> None:
    text = "// Code generated by protoc-gen-go. DO NOT EDIT.\n// source: user.proto\n\npackage user\n" + PYTHON_FILE
    assert run_rules(code_rules(), text, "en") == "code:autogenerated"


def test_minified_file_fails_max_line_length() -> None:
    line = ";".join(f"var a{i}=function(b){{return b*{i}+a{i - 1}}}" for i in range(1, 200))
    assert run_rules(code_rules(), line, "en") == "code:max_line_length"


def test_minified_blob_among_short_lines() -> None:
    blob = 'ICON = "' + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk" * 5 + '"'
    assert run_rules(code_rules(), PYTHON_FILE + blob + "\n", "en") == "code:minified"


def test_long_lines_on_average() -> None:
    lines = [f"    result_{i} = compute_value(alpha_{i}, beta_{i}, gamma_{i}) + adjust(delta_{i}) * scale" * 2
             for i in range(20)]  # fmt: skip
    assert CodeQuality().filter("\n".join(lines), "en") == "code:mean_line_length"


def test_mostly_symbols_fails_alphanumeric_share() -> None:
    assert CodeQuality().filter("\n".join(["{[(<>)]} == !! ++ -- ** // %% && ||"] * 30), "en") == "code:alnum_frac"


# --- the helpers and the fast paths ---------------------------------------------------------------------------


def test_duplicates_count_repeats_after_the_first() -> None:
    assert duplicates(["a", "bb", "a", "bb", "a", "c"]) == (3, 4)
    assert duplicates(["a", "b"]) == (0, 0)


def test_ngram_helpers_follow_datatrove() -> None:
    words = ["a", "b", "c", "a", "b", "c", "a", "b"]
    assert top_ngram_chars(words, 2) == 3 * 2  # ("a", "b") three times
    # greedy scan: "a b c" at 3 repeats position 0 (3 chars), jump to 6: "a b" too short for a 3-gram
    assert duplicate_ngram_chars(words, 3) == 3
    assert duplicate_ngram_chars(words, 2) == 2 + 2  # "a b" at 3, then "a b" at 6


def test_textview_words_match_split_words() -> None:
    for text in (ENGLISH, "naïve café — “quoted”", CHINESE, JAPANESE, "Mixed 中文 and English", KOREAN, ""):
        assert TextView(text, "en").words == split_words(text)


def _reference_repetition(rule: GopherRepetition, text: str, lang: str) -> str | None:
    """The n-gram rules of GopherRepetition computed the slow, obvious way."""
    view = TextView(text, lang)
    scale = rule.ngram_scale(view)
    for n, limit in rule.top_ngrams:
        if top_ngram_chars(view.words, n * scale) > limit * len(text):
            return f"gopher_repetition:top_{n}gram_frac"
    for n, limit in rule.dup_ngrams:
        if duplicate_ngram_chars(view.words, n * scale) > limit * len(text):
            return f"gopher_repetition:dup_{n}gram_frac"
    return None


def test_repetition_bounds_decide_like_the_exact_counts(shared_corpora: Path) -> None:
    rule = GopherRepetition(
        max_dup_line_frac=1, max_dup_para_frac=1, max_dup_line_char_frac=1, max_dup_para_char_frac=1
    )
    docs = [(row["text"], row["meta"]["gold_lang"]) for row in _jsonl(shared_corpora / "multilingual" / "udhr.jsonl")]
    docs += [(row["text"], "en") for row in _jsonl(shared_corpora / "web" / "common_crawl_en.jsonl")]
    sentence = "the quick brown fox jumps over the lazy dog near the river bank "
    docs += [(sentence * k + ENGLISH, "en") for k in range(1, 8)]  # growing repetition crosses each limit
    docs += [(ENGLISH + " " + " ".join(ENGLISH.split()[:n]), "en") for n in range(5, 60, 6)]
    docs += [(KEYWORD_STUFFED + " " + ENGLISH[: 150 * k], "en") for k in range(5)]
    phrase = "吾輩は猫である。名前はまだ無い。"
    docs += [(phrase * k + JAPANESE, "ja") for k in range(1, 12, 2)]  # the same in a space-less script
    novel = (shared_corpora / "books" / "wagahaiwa_nekodearu.txt").read_text(encoding="utf-8")
    docs += [(novel[start : start + 3000], "ja") for start in range(0, 300_000, 30_000)]
    decisions = Counter()
    for text, lang in docs:
        expected = _reference_repetition(rule, text, lang)
        assert rule.filter(text, lang) == expected, text[:80]
        decisions[expected] += 1
    exercised = {None, "gopher_repetition:top_2gram_frac", "gopher_repetition:top_3gram_frac"}
    assert exercised | {"gopher_repetition:dup_5gram_frac", "gopher_repetition:dup_10gram_frac"} <= set(decisions)


# --- stop words ---------------------------------------------------------------------------------------------


def test_stop_words_by_language() -> None:
    assert {"the", "and", "of"} <= stop_words("en")
    assert "的" in stop_words("zh") and "の" in stop_words("ja")
    assert stop_words("xx") == frozenset() and count_stop_words(["the"], "xx") is None
    assert stop_words("pt_BR") == stop_words("pt") and stop_words("nb") == stop_words("no")
    assert normalize_lang("zh-Hant") == "zh" and normalize_lang(None) == ""


def test_stop_words_ignore_case_and_edge_punctuation() -> None:
    assert count_stop_words(["The", "(and", "of,", "cat"], "en") == 3
    assert count_stop_words(["the"] * 10, "en", limit=2) == 2


def test_korean_particles_count_as_stop_words() -> None:
    assert count_stop_words(["사람은", "권리를", "가진다."], "ko") == 2
    assert count_stop_words(["그리고"], "ko") == 1


# --- the public corpora -------------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# The UDHR's 41 languages all pass, with two documented exceptions shared by every language:
# - document 0 is the preamble, one long sentence whose clauses end in commas ("Whereas ..., ") and
#   semicolons: C4 keeps no line (`terminal_punct`) or too few (`too_few_sentences`), as it would on the web;
# - document 7 holds only articles 29-30, 2 to 4 sentences: under C4's 5-sentence minimum, and the Hebrew
#   one (46 words) is under Gopher's 50 words.
UDHR_EXCEPTIONS = {
    "0": {"c4:terminal_punct", "c4:too_few_sentences"},
    "7": {"c4:too_few_sentences", "gopher_quality:word_count"},
}


def test_udhr_in_41_languages_passes_prose_rules(shared_corpora: Path) -> None:
    rows = _jsonl(shared_corpora / "multilingual" / "udhr.jsonl")
    rules = prose_rules()
    kept_languages = set()
    for row in rows:
        lang, part = row["meta"]["gold_lang"], row["id"].rsplit("-", 1)[1]
        reason = run_rules(rules, row["text"], lang)
        assert reason is None or reason in UDHR_EXCEPTIONS.get(part, set()), (row["id"], reason)
        if reason is None:
            kept_languages.add(lang)
    assert len(kept_languages) == 41


def test_common_crawl_pages(shared_corpora: Path) -> None:
    """The reasons that fire on 20 real Common Crawl pages (all other pages are kept)."""
    rows = _jsonl(shared_corpora / "web" / "common_crawl_en.jsonl")
    reasons = {row["id"]: run_rules(prose_rules(), row["text"], "en") for row in rows}
    rejected = {url: reason for url, reason in reasons.items() if reason is not None}
    assert rejected == {
        # two short announcements, 4 and 3 sentences
        "http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/": "c4:too_few_sentences",
        "http://2011.rubyworld-conf.org/en/program/A-9/": "c4:too_few_sentences",
        # a teaser cut off with "..."
        "http://blogs.boardprospects.com/articles/3928691/opendoor-adds-to-leadership-team-board-of-director/": (
            "gopher_quality:ellipsis_lines"
        ),
        # a list of five truncated headlines
        "http://cempaka-tourist.blogspot.com/2017/07/aborigines-in-australia-longer-than.html": (
            "gopher_quality:word_count"
        ),
    }
    assert len(rows) - len(rejected) == 16


def test_sentence_ends_across_scripts_and_closers() -> None:
    lines = ["One. Two! Three?", "Wait...", 'He said "stop." Then left.', "3.14 is pi", "終わり。次！", "a.b", "End?!",
             "नमस्ते। धन्यवाद॥", "(see above.)"]  # fmt: skip
    assert [count_sentences(line) for line in lines] == [3, 1, 2, 1, 2, 1, 1, 2, 1]
    assert count_sentences_in(lines) == 14


def test_punctuation_chars_counts_ascii_and_other_marks() -> None:
    assert punctuation_chars("Hello, world — «quoted» text… ok?! 😀 #tag") == 9  # , — « » … ? ! 😀 #
    assert punctuation_chars("plain words") == 0
    assert TextView("Hello, world — «quoted» text… ok?! 😀 #tag", "en").mean_word_length == 25 / 6
