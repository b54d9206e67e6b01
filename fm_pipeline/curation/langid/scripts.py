"""Writing systems: which scripts a text is written in, which languages each script writes, and the letters
of each language's alphabet, for the backends' decision rules."""

from __future__ import annotations

# Writing systems by Unicode block, and the languages (fastText labels, folded) written in them. A language in
# none of them is written in Latin script; _ALSO_LATIN are written in Latin script as well. A text's language
# must be written in one of its scripts (those holding _SCRIPT_MIN_SHARE of its letters): short text otherwise
# goes to a language of another script that happens to share its subword n-grams (a Chinese phrase came out
# Croatian). Kana counts as Han, since Japanese mixes the two.
_SCRIPTS: dict[str, tuple[tuple[tuple[int, int], ...], frozenset[str]]] = {
    "Latin": (((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)), frozenset()),
    "Cyrillic": (
        ((0x400, 0x52F),),
        frozenset({
            "av", "ba", "be", "bg", "bxr", "ce", "cv", "kk", "krc", "kv", "ky", "lez", "mhr", "mk", "mn", "mrj",
            "myv", "os", "ru", "rue", "sah", "sh", "sr", "tg", "tt", "tyv", "uk", "uz", "xal",
        }),
    ),
    "Greek": (((0x370, 0x3FF), (0x1F00, 0x1FFF)), frozenset({"el"})),
    "Armenian": (((0x530, 0x58F),), frozenset({"hy"})),
    "Hebrew": (((0x590, 0x5FF),), frozenset({"he", "yi"})),
    "Arabic": (
        ((0x600, 0x6FF), (0x750, 0x77F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
        frozenset({"ar", "az", "fa", "ku", "lrc", "mzn", "pnb", "ps", "sd", "ug", "ur"}),
    ),
    "Thaana": (((0x780, 0x7BF),), frozenset({"dv"})),
    "Devanagari": (((0x900, 0x97F),), frozenset({"bh", "dty", "gom", "hi", "mai", "mr", "ne", "new", "sa"})),
    "Bengali": (((0x980, 0x9FF),), frozenset({"as", "bn", "bpy"})),
    "Gurmukhi": (((0xA00, 0xA7F),), frozenset({"pa"})),
    "Gujarati": (((0xA80, 0xAFF),), frozenset({"gu"})),
    "Oriya": (((0xB00, 0xB7F),), frozenset({"or"})),
    "Tamil": (((0xB80, 0xBFF),), frozenset({"ta"})),
    "Telugu": (((0xC00, 0xC7F),), frozenset({"te"})),
    "Kannada": (((0xC80, 0xCFF),), frozenset({"kn"})),
    "Malayalam": (((0xD00, 0xD7F),), frozenset({"ml"})),
    "Sinhala": (((0xD80, 0xDFF),), frozenset({"si"})),
    "Thai": (((0xE00, 0xE7F),), frozenset({"th"})),
    "Lao": (((0xE80, 0xEFF),), frozenset({"lo"})),
    "Tibetan": (((0xF00, 0xFFF),), frozenset({"bo"})),
    "Myanmar": (((0x1000, 0x109F),), frozenset({"my"})),
    "Georgian": (((0x10A0, 0x10FF),), frozenset({"ka", "xmf"})),
    "Hangul": (((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)), frozenset({"ko"})),
    "Ethiopic": (((0x1200, 0x137F),), frozenset({"am"})),
    "Khmer": (((0x1780, 0x17FF),), frozenset({"km"})),
    "Han": (((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)), frozenset({"ja", "zh"})),
    "Kana": (((0x3040, 0x309F), (0x30A0, 0x30FA), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)), frozenset({"ja"})),
    "Han without kana": ((), frozenset({"zh"})),  # see _HAN_SENTENCE_MIN
}
# Japanese writes its particles and endings in kana, so this many Han characters and no kana is a Chinese
# sentence; kanji-only Japanese is a name or compound noun of a few characters (fastText gets those right, but
# gave 5 of the UDHR's Chinese paragraphs to Japanese).
_HAN_SENTENCE_MIN = 8
_ALSO_LATIN = frozenset({"az", "ku", "sh", "sr", "uz"})
_NOT_LATIN = frozenset().union(*(langs for _, langs in _SCRIPTS.values())) - _ALSO_LATIN
# A script counts for a text from this share of its letters, a Han character or Hangul syllable weighing as much
# as the three or so letters that spell a syllable in Latin script: Korean with English terms in it
# ("Next.js에서 SvelteKit으로 migration한 이야기") stays Korean.
_SCRIPT_MIN_SHARE = 0.2
_SYLLABLE_WEIGHT = {"Han": 3, "Hangul": 3}  # kana is counted with Han
# Each language's letters beyond a-z in Latin script (loanword letters included), and its whole alphabet in
# Cyrillic. A letter of the text's main script that a language's alphabet lacks is evidence against it: each
# distinct one multiplies the language's probability by a weight (backends._FOREIGN_LETTER_WEIGHT). fastText,
# reading subword n-grams, gives short text to languages that never write its letters (Swedish "älskar" came out
# Indonesian). Languages not listed are not weighed.
_CYRILLIC_RU = "абвгдежзийклмнопрстуфхцчшщъыьэюя"
_SERBO_CROATIAN_LATIN = "čćđšž"
ALPHABETS = {
    code: frozenset(letters)
    for code, letters in {
        "en": "", "id": "", "ms": "", "sw": "",
        "de": "äöüß", "nl": "áéíóúàèëïöü", "fr": "àâæçéèêëîïôœùûüÿ", "es": "áéíñóúü", "pt": "áâãàçéêíóôõúü",
        "it": "àèéìíîòóùú", "ca": "àçèéíïòóúü", "ro": "ăâîșțşţ",
        "sv": "åäöé", "da": "æøåé", "no": "æøåéèêóòôâ", "is": "áðéíóúýþæö", "fi": "äöåšž", "et": "äöõüšž",
        "pl": "ąćęłńóśźż", "cs": "áčďéěíňóřšťúůýž", "sk": "áäčďéíĺľňóôŕšťúýž", "sl": "čšž",
        "hr": _SERBO_CROATIAN_LATIN, "bs": _SERBO_CROATIAN_LATIN, "hu": "áéíóöőúüű", "tr": "çğıöşüâîû",
        "lt": "ąčęėįšųūž", "lv": "āčēģīķļņšūž", "az": "çəğıöşü",
        "ru": _CYRILLIC_RU + "ё",
        "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
        "be": "абвгдеёжзійклмнопрстуўфхцчшыьэюя",
        "bg": _CYRILLIC_RU.replace("ы", "").replace("э", "") + "ѝ",
        "mk": "абвгдѓежзѕијклљмнњопрстќуфхцчџш",
        "sr": "абвгдђежзијклљмнњопрстћуфхцчџш" + _SERBO_CROATIAN_LATIN,
    }.items()
}
# The non-ASCII letters of the scripts ALPHABETS covers, to pick a text's letters out in one set intersection.
_NON_ASCII_LETTERS = {
    script: frozenset(
        char
        for first, last in _SCRIPTS[script][0]
        for char in map(chr, range(max(first, 0x80), last + 1))
        if char.isalpha()
    )
    for script in ("Latin", "Cyrillic")
}


def _script_table() -> tuple[str, dict[str, str]]:
    """str.translate table from each code point of the Basic Multilingual Plane to its script's one-character
    tag ("\\0" for none), and the script named by each tag: translating and counting tags runs in C."""
    table = ["\0"] * 0x10000
    names = {}
    for number, (script, (blocks, _)) in enumerate(_SCRIPTS.items(), start=1):
        tag = chr(number)
        names[tag] = script
        for first, last in blocks:
            table[first : last + 1] = tag * (last - first + 1)
    return "".join(table), names


_SCRIPT_TABLE, _SCRIPT_OF_TAG = _script_table()
_SCRIPT_ORDER = {script: number for number, script in enumerate(_SCRIPTS)}


def text_scripts(text: str) -> tuple[str, ...]:
    """The scripts holding _SCRIPT_MIN_SHARE or more of the text's letters (weighed by _SYLLABLE_WEIGHT; kana
    counted with Han), the main one first (ties go to the first in _SCRIPTS); empty when no letter belongs
    to one of them. Han without kana, _HAN_SENTENCE_MIN characters or more, is "Han without kana"."""
    if text.isascii():
        return ("Latin",) if any(map(str.isalpha, text)) else ()
    tags = text.translate(_SCRIPT_TABLE)  # code points past the BMP stay themselves and are not tags
    counts = {_SCRIPT_OF_TAG[tag]: tags.count(tag) for tag in set(tags) if tag in _SCRIPT_OF_TAG}
    kana = counts.pop("Kana", 0)
    han = counts.get("Han", 0)
    if kana:
        counts["Han"] = han + kana
    weights = {script: count * _SYLLABLE_WEIGHT.get(script, 1) for script, count in counts.items()}
    floor = _SCRIPT_MIN_SHARE * sum(weights.values())
    scripts = sorted((s for s in weights if weights[s] >= floor), key=lambda s: (-weights[s], _SCRIPT_ORDER[s]))
    if not kana and han >= _HAN_SENTENCE_MIN:
        scripts = ["Han without kana" if script == "Han" else script for script in scripts]
    return tuple(scripts)


def main_script(text: str) -> str | None:
    """The script holding most of the text's letters (see text_scripts), or None."""
    scripts = text_scripts(text)
    return scripts[0] if scripts else None


def fits_script(code: str, scripts: tuple[str, ...]) -> bool:
    """Whether the language `code` (a folded fastText label) is written in one of `scripts` (empty: any)."""
    if not scripts:
        return True
    return any(code not in _NOT_LATIN if script == "Latin" else code in _SCRIPTS[script][1] for script in scripts)


def script_letters(line: str, script: str | None) -> frozenset[str]:
    """The distinct non-ASCII letters of `script` in `line` (lowercased text), for scripts with alphabets listed
    in ALPHABETS: what those alphabets are checked against."""
    letters = _NON_ASCII_LETTERS.get(script) if script is not None else None
    return letters.intersection(line) if letters is not None and not line.isascii() else frozenset()


def foreign_letters(letters: frozenset[str], code: str) -> int:
    """How many of `letters` the alphabet of `code` lacks (0 for a language without a listed alphabet)."""
    alphabet = ALPHABETS.get(code)
    return len(letters - alphabet) if alphabet is not None and letters else 0
