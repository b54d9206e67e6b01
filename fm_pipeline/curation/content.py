"""Content filters: adult content, spam, and copyright/licence policy.

Each filter is a `quality.rule.Rule`, as the quality families are: a ``name`` and ``check(view)`` that
returns None to keep the document or a reason ``"<family>:<rule>"`` to drop it, in the style of datatrove's
filters, so the filter stage runs both from one list over one `TextView`. They never rewrite text. Word
lists are short, unambiguous and counted against thresholds rather than acted on at the first hit (C4's
badwords rule drops any page with one listed word, which removes medical and legal text).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter
from typing import Literal
from urllib.parse import urlsplit

from fm_pipeline.curation.quality.rule import Rule
from fm_pipeline.curation.quality.view import TextView
from fm_pipeline.curation.stopwords import bare_word, stop_words
from fm_pipeline.curation.words import split_words


def _needs_boundary(ch: str) -> bool:
    """Latin, Greek and Cyrillic letters and digits must sit on a word boundary ("sex cam" is not in
    "Essex cam"); Hangul, CJK, Arabic and Devanagari terms attach particles and affixes, so they match as
    substrings."""
    return ch.isalnum() and ch < "\u0530"


class _Terms:
    """Counts fixed phrases in lower-cased text with ``str.find``, which is far faster than one regex
    alternation over a hundred phrases. Terms in one list must not overlap (no "porn" beside "porn star")."""

    def __init__(self, terms: Iterable[str]) -> None:
        self._terms = tuple((t.lower(), _needs_boundary(t[0]), _needs_boundary(t[-1])) for t in dict.fromkeys(terms))

    def count(self, lowered: str) -> Counter[str]:
        hits: Counter[str] = Counter()
        for term, left, right in self._terms:
            i = lowered.find(term)
            while i >= 0:
                end = i + len(term)
                if not (left and i > 0 and lowered[i - 1].isalnum()) and not (
                    right and end < len(lowered) and lowered[end].isalnum()
                ):
                    hits[term] += 1
                i = lowered.find(term, end)
        return hits


# --- adult content ------------------------------------------------------------------------------------

# Short lists of terms that are adult in any context. Ambiguous words ("sex", "nude", "adult", "escort")
# are left out: they fire on medicine ("sex differences"), art and place names (Essex, Sussex).
# fmt: off
ADULT_TERMS: dict[str, tuple[str, ...]] = {
    "en": (
        "porn", "porno", "pornstar", "pornhub", "xvideos", "xhamster", "hentai", "sex cam", "sex cams",
        "sex chat", "sex tape", "sex video", "sex videos", "camgirl", "camgirls", "nude pics", "nsfw",
        "milf", "adult videos", "erotic videos", "hardcore sex",
    ),
    "es": ("pornografía", "sexo explícito", "chat erótico", "contenido para adultos", "videochat erótico"),
    "fr": ("pornographie", "pornographique", "sexe explicite", "tchat érotique", "contenu pour adultes"),
    "de": ("pornos", "pornografie", "pornofilm", "pornofilme", "sexfilme", "sexvideos", "erotikchat"),
    "pt": ("pornô", "pornografia", "sexo explícito", "conteúdo adulto", "vídeos eróticos"),
    "ru": ("порно", "порнография", "порнуха", "секс видео", "секс чат", "интим услуги"),
    "ko": ("야동", "성인방송", "성인영상", "음란물", "포르노", "섹스", "조건만남"),
    "zh": ("色情", "黄片", "成人视频", "成人影片", "裸聊", "约炮", "一夜情"),
    "ja": ("アダルト", "エロ動画", "無修正", "ポルノ", "出会い系", "エッチ動画"),
    "ar": ("إباحي", "سكس", "جنس صريح"),
    "hi": ("अश्लील", "पोर्न", "सेक्स वीडियो", "ब्लू फिल्म"),
}
# fmt: on
_ADULT_ANY = _Terms(t for terms in ADULT_TERMS.values() for t in terms)
_ADULT_BY_LANG = {lang: _Terms(ADULT_TERMS["en"] + terms) for lang, terms in ADULT_TERMS.items()}

# Hostname blocklist in the manner of datatrove's URLFilter: substrings that are adult wherever they
# appear, whole hostname words that are, and softer words that only count in pairs ("adult-cams").
# fmt: off
URL_BANNED_SUBWORDS = (
    "porn", "xxx", "hentai", "xvideo", "xnxx", "xhamster", "redtube", "brazzers", "chaturbate",
    "livejasmin", "camgirl", "sexcam", "sexchat",
)
# fmt: on
URL_BANNED_WORDS = frozenset({"sex", "nsfw", "milf", "escort", "escorts", "erotic", "erotica", "nude", "nudes"})
URL_SOFT_WORDS = frozenset({"adult", "cam", "cams", "girls", "hookup", "dating", "fetish", "xx"})
_HOST_WORD = re.compile(r"[a-z]+")


def _hostname(url: str) -> str:
    return (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()


class AdultContent(Rule):
    """Drops pages on adult hostnames or with several distinct adult terms (or a dense repetition of one).

    Thresholds: ``min_distinct`` distinct terms, or at least 2 hits making ``max_share`` of the words;
    one mention in a news story or a medical abstract stays.
    """

    name = "adult"

    def __init__(self, min_distinct: int = 3, max_share: float = 0.02) -> None:
        self.min_distinct = min_distinct
        self.max_share = max_share

    def check(self, view: TextView) -> str | None:
        if view.url and self._banned_host(_hostname(view.url)):
            return self._reason("url")
        hits = _ADULT_BY_LANG.get(view.lang, _ADULT_ANY).count(view.lowered)
        if not hits:
            return None
        total = sum(hits.values())
        if len(hits) >= self.min_distinct or (total >= 2 and total / max(len(view.words), 1) >= self.max_share):
            return self._reason("words")
        return None

    @staticmethod
    def _banned_host(host: str) -> bool:
        if any(sub in host for sub in URL_BANNED_SUBWORDS):
            return True
        words = _HOST_WORD.findall(host)
        return bool(URL_BANNED_WORDS.intersection(words)) or len(URL_SOFT_WORDS.intersection(words)) >= 2


# --- spam ---------------------------------------------------------------------------------------------

# fmt: off
CALLS_TO_ACTION = (
    # en
    "click here", "buy now", "order now", "limited offer", "limited time offer", "act now", "subscribe now",
    "100% free", "sign up now", "call now", "don't miss out", "shop now", "download now",
    # es, fr, de, pt, ru
    "haz clic aquí", "compra ahora", "oferta limitada", "suscríbete ahora", "pide ahora",
    "cliquez ici", "achetez maintenant", "offre limitée", "commandez maintenant", "abonnez-vous",
    "hier klicken", "jetzt kaufen", "jetzt bestellen", "begrenztes angebot", "jetzt abonnieren",
    "clique aqui", "compre agora", "peça agora", "inscreva-se agora",
    "нажмите здесь", "купить сейчас", "закажите сейчас", "ограниченное предложение",
    # ko, zh, ja, ar, hi
    "지금 구매", "지금 바로 구매", "여기를 클릭", "지금 신청", "한정 특가",
    "点击这里", "立即购买", "限时优惠", "马上订购", "立即订阅",
    "今すぐ購入", "こちらをクリック", "今すぐ登録", "期間限定",
    "اشتر الآن", "انقر هنا", "اطلب الآن",
    "अभी खरीदें", "यहां क्लिक करें", "अभी ऑर्डर करें",
)
# fmt: on
_CTA = _Terms(CALLS_TO_ACTION)


def _is_content_word(word: str, stop: frozenset[str]) -> bool:
    """Not a stop word of the language, and, since many languages have no list, not a short Latin, Greek
    or Cyrillic word either (function words there are short: the, of, die, на, и); other scripts count
    whole."""
    return word not in stop and (len(word) >= 4 or word[0] >= "\u0530")


class Spam(Rule):
    """Link farms, pages repeating calls to action, and keyword stuffing.

    A link farm is mostly URLs: links above ``max_link_share`` of the tokens, or more than ``max_links``
    links with fewer than ``min_words_per_link`` other tokens each. Keyword stuffing is one content word
    making more than ``max_word_share`` of at least ``min_words`` tokens (in news, contracts, abstracts and
    books the top content word stays under 10%).
    """

    name = "spam"

    def __init__(
        self,
        max_link_share: float = 0.3,
        max_links: int = 20,
        min_words_per_link: float = 10.0,
        min_calls_to_action: int = 3,
        max_word_share: float = 0.15,
        min_words: int = 50,
    ) -> None:
        self.max_link_share = max_link_share
        self.max_links = max_links
        self.min_words_per_link = min_words_per_link
        self.min_calls_to_action = min_calls_to_action
        self.max_word_share = max_word_share
        self.min_words = min_words

    def check(self, view: TextView) -> str | None:
        lowered = view.lowered
        words = split_words(lowered)
        n_tokens = len(words)
        links = lowered.count("://") + lowered.count("www.") - lowered.count("://www.")
        if links >= 3 and links / n_tokens > self.max_link_share:
            return self._reason("link_farm")
        if links > self.max_links and n_tokens - links < self.min_words_per_link * links:
            return self._reason("link_farm")
        if sum(_CTA.count(lowered).values()) >= self.min_calls_to_action:
            return self._reason("call_to_action")
        if n_tokens < self.min_words:  # too short to judge stuffing: its tokens need no counting
            return None
        if self._top_content_count(Counter(words), view.lang) / n_tokens > self.max_word_share:
            return self._reason("keyword_stuffing")
        return None

    @staticmethod
    def _top_content_count(tokens: Counter[str], lang: str) -> int:
        """Occurrences of the most frequent content word. A stuffed keyword is among the most frequent
        tokens, so only those are classified (with their punctuated variants merged): classifying every
        distinct token made this the slowest filter. The 50 are `most_common(50)`'s, taken by one sort in C (stable:
        ties stay in order of appearance) rather than its heap in Python."""
        stop = stop_words(lang)
        top: Counter[str] = Counter()
        for token, n in sorted(tokens.items(), key=itemgetter(1), reverse=True)[:50]:
            word = bare_word(token)
            if word.isalpha() and _is_content_word(word, stop):
                top[word] += n
        return max(top.values(), default=0)


# --- copyright and licences ---------------------------------------------------------------------------

# Permissive licences only, as in The Stack: weak copyleft (MPL-2.0, LGPL, EPL) is left out because it
# carries file-level obligations into anything trained to reproduce the code.
# fmt: off
PERMISSIVE_LICENSES = frozenset({
    "MIT", "MIT-0", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "ISC", "Unlicense", "CC0-1.0",
    "Zlib", "BSL-1.0",
})
# fmt: on
_SPDX = re.compile(r"(?i)SPDX-License-Identifier:[ \t]*([\w.+\-() \t]+)")
_NON_WORD = re.compile(r"[\W_]+")

# Licence header phrases after `_normalise_header` (lower case, words only), checked in order: licences
# before the bare "all rights reserved" that BSD and MIT headers also carry.
_HEADER_RULES: tuple[tuple[str, str], ...] = (
    ("permission is hereby granted free of charge to any person obtaining a copy", "MIT"),
    ("licensed under the apache license version 2 0", "Apache-2.0"),
    ("permission to use copy modify and or distribute this software for any purpose", "ISC"),
    ("this is free and unencumbered software released into the public domain", "Unlicense"),
    ("creative commons legal code cc0", "CC0-1.0"),
)
_HEADER_HEAD = 6000  # licence headers sit at the top of a file


def _normalise_header(text: str) -> str:
    """Comment markers and line breaks removed, so "#  Licensed under the Apache License,\n# Version 2.0"
    reads as one phrase."""
    return " " + _NON_WORD.sub(" ", text[:_HEADER_HEAD]).lower() + " "


def _gnu_license(h: str) -> str | None:
    later = "any later version" in h
    if "gnu affero general public license" in h:
        return "AGPL-3.0-or-later" if later else "AGPL-3.0-only"
    if "gnu lesser general public license" in h or "gnu library general public license" in h:
        version = "2.1" if "version 2 1" in h else "3.0" if "version 3" in h else "2.0"
        return f"LGPL-{version}-or-later" if later else f"LGPL-{version}-only"
    if "gnu general public license" in h:
        version = "3.0" if "version 3" in h else "2.0" if "version 2" in h else "1.0"
        return f"GPL-{version}-or-later" if later or version == "1.0" else f"GPL-{version}-only"
    return None


def detect_license(text: str) -> str | None:
    """The licence of a source file: its SPDX expression, else one read from a known header, else
    "proprietary" for an "All rights reserved" notice, else None."""
    spdx = _SPDX.search(text, 0, _HEADER_HEAD)
    if spdx:
        return " ".join(spdx.group(1).split()).rstrip(" -")  # "MIT -->" in an HTML comment
    h = _normalise_header(text)
    for phrase, spdx_id in _HEADER_RULES:
        if phrase in h:
            return spdx_id
    if "redistribution and use in source and binary forms" in h:
        three = "neither the name" in h or "endorse or promote products" in h
        return "BSD-3-Clause" if three else "BSD-2-Clause"
    gnu = _gnu_license(h)
    if gnu:
        return gnu
    if "mozilla public license" in h:
        return "MPL-2.0" if " 2 0 " in h else "MPL-1.1"
    if "all rights reserved" in h:
        return "proprietary"
    return None


def license_allowed(expression: str, allowed: frozenset[str] = PERMISSIVE_LICENSES) -> bool:
    """Whether an SPDX expression can be used under `allowed`: one OR branch whose AND terms are all
    allowed; a WITH exception does not change the base licence. Parentheses are flattened, which is
    exact for the usual "MIT OR Apache-2.0" and "X AND Y" forms."""
    allowed_lower = {a.lower() for a in allowed}
    for branch in re.split(r"\s+or\s+", expression.replace("(", " ").replace(")", " "), flags=re.I):
        terms = re.split(r"\s+and\s+", branch.strip(), flags=re.I)
        if all(re.split(r"\s+with\s+", t.strip(), flags=re.I)[0].lower() in allowed_lower for t in terms):
            return True
    return False


# Reservation of rights in prose (books, news, papers), in the pipeline's main languages. An explicit
# prohibition on copying counts wherever it stands; a bare "all rights reserved" counts unless it sits in a
# site's copyright line ("© 2024 Example Media. All rights reserved."), which is page chrome on most of the
# web, not a reservation on the text itself.
# fmt: off
PROHIBITION_NOTICES = (
    "no part of this publication may be reproduced", "no part of this book may be reproduced",
    "무단전재", "무단 전재", "무단복제", "무단 복제", "禁止转载", "不得转载", "無断転載", "無断複製", "無断複写",
)
RESERVATION_NOTICES = (
    "all rights reserved", "todos los derechos reservados", "tous droits réservés", "alle rechte vorbehalten",
    "todos os direitos reservados", "tutti i diritti riservati", "все права защищены", "版权所有",
    "جميع الحقوق محفوظة", "सर्वाधिकार सुरक्षित",
)
# fmt: on
_PROHIBITION = _Terms(PROHIBITION_NOTICES)
_RESERVATION = _Terms(RESERVATION_NOTICES)
_COPYRIGHT_LINE = re.compile(r"\s*(?:©|\(c\)|copyright\b)")


@lru_cache(maxsize=4)
def has_reservation_notice(text: str, lowered: str | None = None) -> bool:
    """Whether prose reserves its rights: an explicit prohibition on copying ("No part of this publication
    may be reproduced", "무단 전재 금지", "禁止转载") anywhere, or "All rights reserved" outside a © line.

    Cached for the last few texts: the filter stage tags the document with it and the copyright filter then
    asks again about the same string (whose hash Python keeps, so a repeat costs a lookup). `lowered`, the
    caller's `text.lower()` (a `TextView.lowered`), saves lowering it again; both callers pass the same."""
    lowered = text.lower() if lowered is None else lowered
    if _PROHIBITION.count(lowered):
        return True
    if not _RESERVATION.count(lowered):
        return False
    return any(_RESERVATION.count(line) for line in lowered.splitlines() if not _COPYRIGHT_LINE.match(line))


class Copyright(Rule):
    """Licence policy for code and rights-reservation policy for prose.

    Code (``kind="code"``) is kept only under a licence on ``allowed_licenses``; with
    ``require_license_for_code`` a file without any licence is dropped too, as The Stack does. Prose
    (``kind="prose"``) carrying an explicit reservation notice is dropped when ``drop_reserved_prose``.
    """

    name = "copyright"

    def __init__(
        self,
        kind: Literal["prose", "code"] = "prose",
        allowed_licenses: Iterable[str] = PERMISSIVE_LICENSES,
        require_license_for_code: bool = True,
        drop_reserved_prose: bool = True,
    ) -> None:
        if kind not in ("prose", "code"):
            raise ValueError(f"kind must be 'prose' or 'code', not {kind!r}")
        self.kind = kind
        self.allowed_licenses = frozenset(allowed_licenses)
        self.require_license_for_code = require_license_for_code
        self.drop_reserved_prose = drop_reserved_prose

    def check(self, view: TextView) -> str | None:
        if self.kind == "code":
            found = detect_license(view.text)
            if found is None:
                return self._reason("no_license") if self.require_license_for_code else None
            if license_allowed(found, self.allowed_licenses):
                return None
            return self._reason(f"license_not_allowed:{found}")
        if self.drop_reserved_prose and has_reservation_notice(view.text, view.lowered):
            return self._reason("reservation_notice")
        return None


def content_filters(source_profile: str) -> list[Rule]:
    """The content filters for a source profile, in order. Code gets the licence policy only: adult and
    spam word rules misread identifiers, URLs and repeated keywords that are normal in source files."""
    if source_profile == "prose":
        return [AdultContent(), Spam(), Copyright("prose")]
    if source_profile == "code":
        return [Copyright("code")]
    raise ValueError(f"unknown source profile {source_profile!r}; expected 'prose' or 'code'")
