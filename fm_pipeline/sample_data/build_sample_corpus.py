"""Build the embedded sample corpus for `common_crawl` and `code_repositories` from `seed_texts/`.

Run from the repository root: `python -m fm_pipeline.sample_data.build_sample_corpus`.

It rewrites `raw/common_crawl/`, `raw/code_repositories/` and `raw/PLANTED.md` (which lists every planted
case). The output is byte-identical on every run: seeded `random.Random`, sorted inputs, gzip with
mtime 0 and fixed WARC dates and record ids.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import random
import re
import shutil
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "seed_texts"
RAW = HERE / "raw"

SEED = 20240315
CRAWL = "CC-MAIN-2024-10"
NEAR_DUPLICATE_RATE = 0.02
RECORD_NAMESPACE = uuid.UUID("6f1c1f4e-4a57-4c1e-9a51-2f1d8d0c7b10")

# Output kind (a page's `out:` field) -> file under raw/common_crawl/.
OUTPUT_FILES: dict[str, str] = {
    "warc": "crawl-000.warc.gz",
    "wet": "crawl-001-wet.warc.gz",
    "jsonl.gz": "pages-000.jsonl.gz",
    "jsonl.zst": "pages-001.jsonl.zst",
    "parquet": "pages-002.parquet",
}

# (original id, copy id, copy url, copy output): the copy has exactly the original's text.
EXACT_DUPLICATES: tuple[tuple[str, str, str, str], ...] = (
    (
        "en-sourdough-starter",
        "en-sourdough-starter-mirror",
        "https://recipehub-aggregator.example/bread/reviving-a-neglected-sourdough-starter",
        "jsonl.zst",
    ),
    (
        "en-git-bisect-howto",
        "en-git-bisect-howto-mirror",
        "https://mirror.devnotes-archive.example/posts/find-the-breaking-commit-with-git-bisect",
        "parquet",
    ),
    (
        "en-library-reopening-news",
        "en-library-reopening-news-mirror",
        "https://www.countynewswire.example/stories/2023/09/millbrook-library-reopens",
        "jsonl.gz",
    ),
    (
        "en-product-kettle",
        "en-product-kettle-mirror",
        "https://deals.kitchenfinds.example/pourwell-gooseneck-kettle-1l?utm_source=feed",
        "warc",
    ),
    (
        "zh-news-high-speed-rail",
        "zh-news-high-speed-rail-mirror",
        "https://m.huanan-daily.example/2023/12/28/high-speed-rail-opens",
        "jsonl.gz",
    ),
)

# (original id, copy id, copy url, copy output): the copy has ~NEAR_DUPLICATE_RATE of its words replaced.
NEAR_DUPLICATES: tuple[tuple[str, str, str, str], ...] = (
    (
        "en-budget-spreadsheet",
        "en-budget-spreadsheet-repost",
        "https://moneytips-daily.example/budget-spreadsheet",
        "wet",
    ),
    (
        "en-forum-tomato-blight",
        "en-forum-tomato-blight-repost",
        "https://gardenchat.example/topic/yellow-spots-tomato-leaves",
        "jsonl.gz",
    ),
    (
        "en-birdwatching-blog",
        "en-birdwatching-blog-repost",
        "https://naturewriting-hub.example/reads/winter-birdwatching-estuary",
        "parquet",
    ),
    (
        "es-noticias-sequia",
        "es-noticias-sequia-repost",
        "https://www.noticiasdelagua.example/2024/02/embalses-22-por-ciento",
        "jsonl.zst",
    ),
    (
        "fr-actualite-velo",
        "fr-actualite-velo-repost",
        "https://www.infomobilites.example/lyon-pistes-cyclables",
        "wet",
    ),
    (
        "en-city-council-bike-lanes",
        "en-city-council-bike-lanes-repost",
        "https://localnews-roundup.example/harbor-avenue-bike-lanes",
        "jsonl.zst",
    ),
)

# (original id, copy id, copy url, copy output, header line, footer line).
BOILERPLATE_COPIES: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "en-howto-bike-chain",
        "en-howto-bike-chain-syndicated",
        "https://www.examplemedia.example/cycling/clean-and-lube-bike-chain",
        "jsonl.zst",
        "Home | About | Contact",
        "© 2024 Example Media. All rights reserved.",
    ),
    (
        "en-product-backpack",
        "en-product-backpack-syndicated",
        "https://www.examplemedia.example/shop/transit-28-backpack",
        "jsonl.gz",
        "Home | About | Contact",
        "© 2024 Example Media. All rights reserved.",
    ),
    (
        "en-trail-running-blog",
        "en-trail-running-blog-syndicated",
        "https://www.examplemedia.example/running/first-trail-half-marathon",
        "wet",
        "Home | Blog | Events | Contact",
        "© 2024 Example Media. All rights reserved. | Privacy | Terms",
    ),
    (
        "es-receta-tortilla",
        "es-receta-tortilla-syndicated",
        "https://www.ejemplomedios.example/cocina/tortilla-de-patatas",
        "parquet",
        "Inicio | Recetas | Contacto",
        "© 2024 Ejemplo Medios. Todos los derechos reservados.",
    ),
)

# (id, url, text, output): documents too short to be worth keeping.
JUNK_DOCS: tuple[tuple[str, str, str, str], ...] = (
    ("junk-home", "https://www.northlinegear.example/home", "Home", "jsonl.gz"),
    ("junk-404", "https://www.baysidecourier.example/news/2019/05/removed-story", "404 Not Found", "wet"),
    ("junk-loading", "https://app.plainmoney.example/dashboard", "Loading...", "jsonl.zst"),
    ("junk-emoji", "https://status.kitchenbench.example/feed/12", "🙂", "parquet"),
    ("junk-asdf", "https://paste.scratchpad.example/p/a8f3", "asdf qwer", "jsonl.gz"),
    (
        "junk-url",
        "https://go.shortlink.example/r/8812",
        "https://www.greenthumbjournal.example/guides/",
        "jsonl.zst",
    ),
)

# Per PII document: strings to redact (with their type) and look-alikes that must stay.
PII_EXPECTATIONS: dict[str, dict[str, list[Any]]] = {
    "pii-contact-page": {
        "redact": [
            ("frontdesk@brightlane-dental.example", "email"),
            ("billing.team@brightlane-dental.example", "email"),
            ("+1 415 555 0132", "phone"),
            ("+44 20 7946 0958", "phone"),
        ],
        "keep": ["2024-03-15", "v1.2.3.4"],
    },
    "pii-forum-homelab": {
        "redact": [
            ("8.8.4.4", "ipv4"),
            ("93.184.216.34", "ipv4"),
            ("2001:4860:4860::8888", "ipv6"),
        ],
        "keep": ["192.168.1.10", "10.0.0.5", "127.0.0.1", "2024-03-15", "v1.2.3.4", "3.10.12"],
    },
    "pii-payment-support": {
        "redact": [
            ("4111 1111 1111 1111", "credit_card"),
            ("5500-0000-0000-0004", "credit_card"),
            ("lena.kovac@example.net", "email"),
            ("+1 415 555 0132", "phone"),
        ],
        "keep": ["4111 1111 1111 1112", "A-20240315-77", "2024-03-15"],
    },
    "pii-invoice-iban": {
        "redact": [
            ("DE89 3704 0044 0532 0130 00", "iban"),
            ("GB82 WEST 1234 5698 7654 32", "iban"),
            ("accounts@nordlicht-studio.example", "email"),
        ],
        "keep": ["INV-2024-0042", "2024-03-15", "4,250.00"],
    },
    "pii-hr-onboarding-ssn": {
        "redact": [
            ("078-05-1120", "us_ssn"),
            ("+1 415 555 0132", "phone"),
            ("payroll@copperfield-logistics.example", "email"),
        ],
        "keep": ["2024-03-15", "3.10.12"],
    },
    "pii-ko-shop-contact": {
        "redact": [
            ("900101-1234567", "kr_rrn"),
            ("010-1234-5678", "phone"),
            ("+82 10-1234-5678", "phone"),
            ("help@hanok-teashop.example", "email"),
        ],
        "keep": ["2024-03-15"],
    },
    "pii-access-log": {
        "redact": [
            ("93.184.216.34", "ipv4"),
            ("2001:4860:4860::8888", "ipv6"),
            ("ops-alerts@latencyhunt.example", "email"),
        ],
        "keep": ["10.0.0.5", "1.24.0", "v1.2.3.4", "15/Mar/2024:10:12:01"],
    },
    "pii-conference-speakers": {
        "redact": [
            ("hello@datadays-meetup.example", "email"),
            ("+44 20 7946 0958", "phone"),
        ],
        "keep": ["2024-03-15", "3.10.12", "v1.2.3.4", "192.168.1.10"],
    },
}

# What each code file is, for licence and quality filters.
CODE_EXPECTATIONS: dict[str, str] = {
    "repo-a/scripts/release.sh": "permissive: MIT",
    "repo-a/src/textstats/cli.py": "permissive: MIT",
    "repo-a/src/textstats/tokenize.py": "permissive: MIT",
    "repo-b/static/tinyroute.min.js": "minified bundle (banner: MIT)",
    "repo-b/src/api/client.js": "no licence",
    "repo-b/src/timing.js": "permissive: Apache-2.0",
    "repo-c/api/v1/status.pb.go": "autogenerated (protoc-gen-go, DO NOT EDIT), no licence",
    "repo-c/cmd/server/main.go": "permissive: Apache-2.0",
    "repo-c/internal/ratelimit/bucket.go": "permissive: Apache-2.0",
    "repo-d/src/ini.rs": "copyleft: GPL-3.0-only",
    "repo-d/src/ring.rs": "permissive: BSD-3-Clause",
    "repo-e/src/main/java/org/example/cache/LruCache.java": "permissive: Apache-2.0",
    "repo-e/src/main/java/org/example/csv/CsvReader.java": "copyleft: GPL-3.0-only",
    "repo-f/src/arena.c": "no licence",
    "repo-f/src/crc32.c": "permissive: BSD-3-Clause",
}
CODE_LANGUAGES: dict[str, str] = {
    ".c": "c",
    ".go": "go",
    ".java": "java",
    ".js": "javascript",
    ".py": "python",
    ".rs": "rust",
    ".sh": "shell",
}

# ISO 639-1 -> ISO 639-3, as Common Crawl writes WARC-Identified-Content-Language.
ISO639_3: dict[str, str] = {
    "ar": "ara",
    "en": "eng",
    "es": "spa",
    "fr": "fra",
    "hi": "hin",
    "ja": "jpn",
    "ko": "kor",
    "zh": "zho",
}

# Site chrome for the HTML pages in the WARC file, per page language.
UI_STRINGS: dict[str, dict[str, Any]] = {
    "en": {
        "nav": ["Home", "News", "Guides", "Reviews", "About", "Contact"],
        "skip": "Skip to main content",
        "cookie": "We use cookies to improve your experience and to show you relevant ads. "
        "By continuing to browse, you agree to our use of cookies.",
        "accept": "Accept all",
        "manage": "Manage preferences",
        "published": "Published",
        "share": "Share this article",
        "related": "Related articles",
        "newsletter": "Subscribe to our newsletter",
        "newsletter_text": "Get our best stories in your inbox "
        "every Friday. No spam, unsubscribe at any time.",
        "subscribe": "Subscribe",
        "rights": "All rights reserved.",
        "privacy": "Privacy policy",
        "terms": "Terms of use",
    },
    "ko": {
        "nav": ["홈", "뉴스", "가이드", "리뷰", "소개", "문의"],
        "skip": "본문 바로가기",
        "cookie": "이 웹사이트는 더 나은 서비스 제공을 위해 쿠키를 사용합니다. "
        "계속 이용하시면 쿠키 사용에 동의하는 것으로 간주됩니다.",
        "accept": "모두 허용",
        "manage": "설정 관리",
        "published": "게시일",
        "share": "이 글 공유하기",
        "related": "관련 글",
        "newsletter": "뉴스레터 구독하기",
        "newsletter_text": "매주 금요일, 엄선한 글을 메일로 보내 "
        "드립니다. 언제든지 구독을 취소할 수 있습니다.",
        "subscribe": "구독",
        "rights": "무단 전재 및 재배포 금지.",
        "privacy": "개인정보처리방침",
        "terms": "이용약관",
    },
    "zh": {
        "nav": ["首页", "新闻", "指南", "评测", "关于我们", "联系我们"],
        "skip": "跳到主要内容",
        "cookie": "本网站使用 Cookie 来改善您的浏览体验。继续浏览即表示您同意我们使用 Cookie。",
        "accept": "全部接受",
        "manage": "管理偏好设置",
        "published": "发布于",
        "share": "分享本文",
        "related": "相关文章",
        "newsletter": "订阅我们的电子报",
        "newsletter_text": "每周五将精选文章发送到您的邮箱，可随时取消订阅。",
        "subscribe": "订阅",
        "rights": "版权所有。",
        "privacy": "隐私政策",
        "terms": "使用条款",
    },
    "ar": {
        "nav": ["الرئيسية", "أخبار", "أدلة", "مراجعات", "من نحن", "اتصل بنا"],
        "skip": "انتقل إلى المحتوى الرئيسي",
        "cookie": "نستخدم ملفات تعريف الارتباط لتحسين تجربتك. باستمرارك "
        "في التصفح فإنك توافق على استخدامنا لها.",
        "accept": "قبول الكل",
        "manage": "إدارة التفضيلات",
        "published": "نُشر في",
        "share": "شارك المقال",
        "related": "مقالات ذات صلة",
        "newsletter": "اشترك في نشرتنا البريدية",
        "newsletter_text": "احصل على أفضل المقالات في بريدك كل يوم جمعة، ويمكنك إلغاء الاشتراك في أي وقت.",
        "subscribe": "اشترك",
        "rights": "جميع الحقوق محفوظة.",
        "privacy": "سياسة الخصوصية",
        "terms": "شروط الاستخدام",
    },
    "ja": {
        "nav": ["ホーム", "ニュース", "ガイド", "レビュー", "運営者情報", "お問い合わせ"],
        "skip": "本文へスキップ",
        "cookie": "当サイトでは、利便性向上のためにCookieを使用しています。"
        "閲覧を続けることで、Cookieの使用に同意したものとみなされます。",
        "accept": "すべて許可",
        "manage": "設定を管理",
        "published": "公開日",
        "share": "この記事をシェア",
        "related": "関連記事",
        "newsletter": "ニュースレターを購読する",
        "newsletter_text": "毎週金曜日に、おすすめの記事をメールでお届けします。配信はいつでも停止できます。",
        "subscribe": "登録する",
        "rights": "無断転載を禁じます。",
        "privacy": "プライバシーポリシー",
        "terms": "利用規約",
    },
}

NAV_SLUGS = ("", "news/", "guides/", "reviews/", "about/", "contact/")
_WORD = re.compile(r"^(\W*)(\w+)(\W*)$")


@dataclass(frozen=True)
class Page:
    """One hand-written seed page: front matter plus a body in light markup (`## ` headings, `- ` lists)."""

    id: str
    url: str
    title: str
    lang: str
    kind: str
    site: str
    published: str
    out: str
    body: str
    planted: tuple[str, ...]

    @property
    def text(self) -> str:
        """Plain text as an extractor would give it: title, then blocks separated by blank lines."""
        blocks = [block.removeprefix("## ") for block in self.body.split("\n\n")]
        return "\n\n".join([self.title, *blocks])


@dataclass(frozen=True)
class Doc:
    """One document as written to an output file, with what was planted in it."""

    id: str
    url: str
    text: str
    out: str
    lang: str
    category: str
    note: str = ""
    page: Page | None = None


def load_pages(folder: Path) -> dict[str, Page]:
    """Read every `*.txt` seed page (front matter, blank line, body) keyed by file stem."""
    pages: dict[str, Page] = {}
    for path in sorted(folder.glob("*.txt")):
        head, body = path.read_text(encoding="utf-8").split("\n\n", 1)
        meta = dict(line.split(": ", 1) for line in head.splitlines())
        pages[path.stem] = Page(
            id=path.stem,
            url=meta["url"],
            title=meta["title"],
            lang=meta["lang"],
            kind=meta["kind"],
            site=meta["site"],
            published=meta["published"],
            out=meta["out"],
            body=body.strip(),
            planted=tuple(filter(None, meta.get("planted", "").split(","))),
        )
    return pages


def mojibake(text: str) -> str:
    """UTF-8 bytes misread as Windows-1252; bytes cp1252 leaves undefined pass through as Latin-1."""
    table = []
    for byte in range(256):
        try:
            table.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            table.append(chr(byte))
    return "".join(table[byte] for byte in text.encode("utf-8"))


def perturb_words(text: str, rng: random.Random, rate: float) -> tuple[str, int, int]:
    """Replace about `rate` of the words with other words of the same text.

    Returns the new text, the number of words replaced and the number of whitespace-separated words.
    """
    tokens = re.split(r"(\s+)", text)
    candidates = [i for i, token in enumerate(tokens) if (m := _WORD.match(token)) and m[2].isalpha()]
    vocabulary = sorted({_WORD.match(tokens[i])[2].lower() for i in candidates})
    n_words = sum(1 for token in tokens if token and not token.isspace())
    n_changes = max(1, round(rate * n_words))
    for i in sorted(rng.sample(candidates, n_changes)):
        lead, word, trail = _WORD.match(tokens[i]).groups()
        replacement = rng.choice([w for w in vocabulary if w != word.lower()])
        if word[0].isupper():
            replacement = replacement[0].upper() + replacement[1:]
        tokens[i] = f"{lead}{replacement}{trail}"
    return "".join(tokens), n_changes, n_words


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    """Jaccard similarity of the word n-gram sets of two texts."""

    def shingles(text: str) -> set[tuple[str, ...]]:
        words = text.lower().split()
        return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def build_documents(pages: dict[str, Page]) -> list[Doc]:
    """Every common_crawl document: the seed pages, then the planted copies and junk."""
    docs = []
    for page in pages.values():
        if "mojibake" in page.planted:
            text, category = mojibake(page.text), "mojibake"
        else:
            text, category = page.text, ",".join(page.planted) or "clean"
        docs.append(Doc(page.id, page.url, text, page.out, page.lang, category, page=page))

    for original, copy_id, url, out in EXACT_DUPLICATES:
        page = pages[original]
        docs.append(Doc(copy_id, url, page.text, out, page.lang, "exact_duplicate", f"of {original}", page))

    for original, copy_id, url, out in NEAR_DUPLICATES:
        page = pages[original]
        text, changed, total = perturb_words(
            page.text, random.Random(f"{SEED}-{copy_id}"), NEAR_DUPLICATE_RATE
        )
        note = (
            f"of {original}: {changed} of {total} words replaced, "
            f"word 5-gram Jaccard {shingle_jaccard(page.text, text):.2f}"
        )
        docs.append(Doc(copy_id, url, text, out, page.lang, "near_duplicate", note, page))

    for original, copy_id, url, out, header, footer in BOILERPLATE_COPIES:
        page = pages[original]
        text = f"{header}\n\n{page.text}\n\n{footer}"
        note = f"of {original}: header {header!r}, footer {footer!r}, word 5-gram Jaccard "
        note += f"{shingle_jaccard(page.text, text):.2f}"
        docs.append(Doc(copy_id, url, text, out, page.lang, "boilerplate_copy", note, page))

    for doc_id, url, text, out in JUNK_DOCS:
        docs.append(Doc(doc_id, url, text, out, "und", "junk"))

    check_documents(docs)
    return docs


def check_documents(docs: list[Doc]) -> None:
    """Fail loudly if the tables above and the seed files disagree."""
    for attribute in ("id", "url"):
        values = [getattr(doc, attribute) for doc in docs]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        assert not duplicates, f"duplicate {attribute}s: {duplicates}"
    by_id = {doc.id: doc for doc in docs}
    for doc in docs:
        assert doc.out in OUTPUT_FILES, f"{doc.id}: unknown output {doc.out!r}"
        if doc.out == "warc":
            assert doc.page is not None and doc.text == doc.page.text, (
                f"{doc.id}: WARC needs an unmodified page"
            )
    pii_ids = sorted(doc.id for doc in docs if "pii" in doc.category)
    assert pii_ids == sorted(PII_EXPECTATIONS), f"PII seeds {pii_ids} != PII_EXPECTATIONS"
    for doc_id, expected in PII_EXPECTATIONS.items():
        for string in [s for s, _ in expected["redact"]] + expected["keep"]:
            assert string in by_id[doc_id].text, f"{doc_id}: {string!r} not in text"


def render_html(page: Page, related: list[Page]) -> str:
    """A full page: cookie banner, navigation, the article, a related-links sidebar, newsletter and footer."""
    ui = UI_STRINGS[page.lang.split("+")[0]]
    e = html.escape
    direction = ' dir="rtl"' if page.lang == "ar" else ""
    host = urlsplit(page.url).netloc
    nav = "\n".join(
        f'      <li><a href="/{slug}">{e(label)}</a></li>'
        for slug, label in zip(NAV_SLUGS, ui["nav"], strict=True)
    )
    links = "\n".join(
        f'      <li><a href="{e(urlsplit(other.url).path)}">{e(other.title)}</a></li>' for other in related
    )
    article = []
    for block in page.body.split("\n\n"):
        lines = block.splitlines()
        if block.startswith("## "):
            article.append(f"<h2>{e(block[3:])}</h2>")
        elif all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{e(line[2:])}</li>" for line in lines)
            article.append(f"<ul>{items}</ul>")
        else:
            article.append("<p>" + "<br>\n".join(e(line) for line in lines) + "</p>")
    body = "\n      ".join(article)
    year = page.published[:4]
    return f"""<!DOCTYPE html>
<html lang="{page.lang.split("+")[0]}"{direction}>
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{e(page.title)} | {e(page.site)}</title>
  <link rel="canonical" href="{e(page.url)}">
  <link rel="stylesheet" href="/assets/css/site.min.css">
  <script async src="https://analytics.{host}/tag.js"></script>
</head>
<body>
  <a class="skip-link" href="#main">{e(ui["skip"])}</a>
  <div class="cookie-banner" role="dialog">
    <p>{e(ui["cookie"])}</p>
    <button type="button">{e(ui["accept"])}</button> <button type="button">{e(ui["manage"])}</button>
  </div>
  <header class="site-header">
    <a class="logo" href="/">{e(page.site)}</a>
    <nav class="main-nav">
     <ul>
{nav}
     </ul>
    </nav>
  </header>
  <main id="main">
    <article>
      <h1>{e(page.title)}</h1>
      <p class="byline">{e(ui["published"])} <time datetime="{page.published}">{page.published}</time></p>
      {body}
      <div class="share">{e(ui["share"])}: <a href="#">Facebook</a>
        <a href="#">X</a> <a href="#">E-mail</a></div>
    </article>
    <aside class="sidebar">
     <h2>{e(ui["related"])}</h2>
     <ul>
{links}
     </ul>
    </aside>
  </main>
  <section class="newsletter">
    <h2>{e(ui["newsletter"])}</h2>
    <p>{e(ui["newsletter_text"])}</p>
    <form action="/newsletter" method="post"><input type="email" name="email">
    <button type="submit">{e(ui["subscribe"])}</button></form>
  </section>
  <footer class="site-footer">
    <p>© {year} {e(page.site)}. {e(ui["rights"])}</p>
    <p><a href="/privacy">{e(ui["privacy"])}</a> · <a href="/terms">{e(ui["terms"])}</a></p>
  </footer>
</body>
</html>
"""


def record_id(*parts: str) -> str:
    """A stable WARC-Record-ID derived from the file name and document id."""
    return f"<urn:uuid:{uuid.uuid5(RECORD_NAMESPACE, '/'.join(parts))}>"


def warc_date(index: int) -> str:
    """A fixed fetch time: 2024-03-04 12:00 UTC plus `index` minutes."""
    return f"2024-03-04T{12 + index // 60:02d}:{index % 60:02d}:00Z"


def write_warcinfo(writer: WARCWriter, filename: str, fields: dict[str, str]) -> None:
    payload = "".join(f"{key}: {value}\r\n" for key, value in fields.items()).encode("utf-8")
    record = writer.create_warc_record(
        "",
        "warcinfo",
        payload=io.BytesIO(payload),
        length=len(payload),
        warc_content_type="application/warc-fields",
        warc_headers_dict={
            "WARC-Date": warc_date(0),
            "WARC-Filename": filename,
            "WARC-Record-ID": record_id(filename, "warcinfo"),
        },
    )
    writer.write_record(record)


def write_warc(path: Path, docs: list[Doc], pages: dict[str, Page]) -> dict[str, str]:
    """A warcinfo record, then a request/response pair per document with the page as full HTML.

    Returns the response WARC-Record-ID per document id.
    """
    record_ids = {}
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        write_warcinfo(
            writer,
            path.name,
            {
                "software": "fm-pipeline build_sample_corpus",
                "isPartOf": f"{CRAWL} (synthetic sample)",
                "description": "Original pages written for the fm-pipeline sample corpus",
                "format": "WARC File Format 1.0",
            },
        )
        for index, doc in enumerate(docs, start=1):
            assert doc.page is not None
            lang = doc.page.lang.split("+")[0]
            others = [
                p
                for p in pages.values()
                if p.lang.split("+")[0] == lang and not p.planted and p.id != doc.page.id
            ]
            related = random.Random(f"{SEED}-related-{doc.page.id}").sample(others, min(3, len(others)))
            body = render_html(doc.page, related).encode("utf-8")
            url = urlsplit(doc.url)
            target = url.path + (f"?{url.query}" if url.query else "")
            response_id = record_id(path.name, doc.id, "response")
            record_ids[doc.id] = response_id
            response = writer.create_warc_record(
                doc.url,
                "response",
                payload=io.BytesIO(body),
                length=len(body),
                http_headers=StatusAndHeaders(
                    "200 OK",
                    [
                        ("Date", "Mon, 04 Mar 2024 12:00:00 GMT"),
                        ("Server", "nginx"),
                        ("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                    ],
                    protocol="HTTP/1.1",
                ),
                warc_headers_dict={"WARC-Date": warc_date(index), "WARC-Record-ID": response_id},
            )
            request = writer.create_warc_record(
                doc.url,
                "request",
                http_headers=StatusAndHeaders(
                    f"GET {target} HTTP/1.1",
                    [
                        ("Host", url.netloc),
                        ("User-Agent", "CCBot/2.0 (https://commoncrawl.org/faq/)"),
                        ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
                    ],
                    is_http_request=True,
                ),
                warc_headers_dict={
                    "WARC-Date": warc_date(index),
                    "WARC-Record-ID": record_id(path.name, doc.id, "request"),
                },
            )
            writer.write_request_response_pair(request, response)
    return record_ids


def write_wet(path: Path, docs: list[Doc]) -> dict[str, str]:
    """A warcinfo record, then one text/plain `conversion` record per document.

    Returns the conversion WARC-Record-ID per document id.
    """
    record_ids = {}
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        write_warcinfo(
            writer,
            path.name,
            {
                "Software-Info": "fm-pipeline build_sample_corpus",
                "Extracted-Date": "Mon, 04 Mar 2024 18:00:00 GMT",
                "isPartOf": f"{CRAWL} (synthetic sample)",
                "description": "Plain text extracted from original pages "
                "written for the fm-pipeline sample corpus",
            },
        )
        for index, doc in enumerate(docs, start=1):
            payload = doc.text.encode("utf-8")
            headers = {
                "WARC-Date": warc_date(index),
                "WARC-Record-ID": record_id(path.name, doc.id, "conversion"),
                "WARC-Refers-To": record_id("crawl-001.warc.gz", doc.id, "response"),
            }
            if doc.lang != "und":
                headers["WARC-Identified-Content-Language"] = ",".join(
                    ISO639_3[x] for x in doc.lang.split("+")
                )
            record_ids[doc.id] = headers["WARC-Record-ID"]
            record = writer.create_warc_record(
                doc.url,
                "conversion",
                payload=io.BytesIO(payload),
                length=len(payload),
                warc_content_type="text/plain",
                warc_headers_dict=headers,
            )
            writer.write_record(record)
    return record_ids


def jsonl_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def page_rows(docs: list[Doc]) -> list[dict[str, Any]]:
    return [
        {
            "id": doc.id,
            "text": doc.text,
            "url": doc.url,
            "meta": {"crawl": CRAWL, "fetch_time": warc_date(index)},
        }
        for index, doc in enumerate(docs, start=1)
    ]


def write_common_crawl(folder: Path, docs: list[Doc], pages: dict[str, Page]) -> dict[str, str]:
    """Write each output file in a seeded shuffled order; returns the WARC/WET record id per document id."""
    record_ids: dict[str, str] = {}
    for out, filename in OUTPUT_FILES.items():
        selected = sorted((doc for doc in docs if doc.out == out), key=lambda doc: doc.id)
        random.Random(f"{SEED}-order-{out}").shuffle(selected)
        path = folder / filename
        if out == "warc":
            record_ids |= write_warc(path, selected, pages)
        elif out == "wet":
            record_ids |= write_wet(path, selected)
        elif out == "jsonl.gz":
            path.write_bytes(gzip.compress(jsonl_bytes(page_rows(selected)), compresslevel=9, mtime=0))
        elif out == "jsonl.zst":
            path.write_bytes(zstandard.ZstdCompressor(level=10).compress(jsonl_bytes(page_rows(selected))))
        else:
            table = pa.table(
                {
                    "id": pa.array([doc.id for doc in selected], pa.string()),
                    "text": pa.array([doc.text for doc in selected], pa.string()),
                    "url": pa.array([doc.url for doc in selected], pa.string()),
                }
            )
            pq.write_table(table, path, compression="zstd")
    return record_ids


def notice_row(prefix: str, number: int, text: str) -> bytes:
    row = {
        "id": f"{prefix}-{number:02d}",
        "text": text,
        "url": f"https://www.riversidenotices.example/{prefix}/{number}",
        "meta": {"crawl": CRAWL},
    }
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def write_broken(folder: Path, notices: list[str]) -> list[tuple[str, str, str]]:
    """Malformed inputs for the reader; returns (file, line or part, what it is) for PLANTED.md."""
    folder.mkdir(parents=True)
    url = "https://www.riversidenotices.example/bad-000"
    lines = [
        (notice_row("bad-000", 1, notices[0]), "good row `bad-000-01`"),
        (
            b'{"id": "bad-000-02", "text": "This row was cut off by a crashed writer", "url": "'
            + url.encode(),
            "malformed JSON: unterminated string, no closing brace",
        ),
        (notice_row("bad-000", 3, notices[1]), "good row `bad-000-03`"),
        (
            json.dumps(
                {"id": "bad-000-04", "url": f"{url}/4", "body": "The writer used body instead of text."}
            ).encode(),
            'valid JSON object without a "text" key',
        ),
        (notice_row("bad-000", 5, notices[2]), "good row `bad-000-05`"),
        (json.dumps({"id": "bad-000-06", "text": "", "url": f"{url}/6"}).encode(), 'empty "text"'),
        (
            b'{"id": "bad-000-07", "text": "Caf\xe9 opening hours have changed", "url": "'
            + url.encode()
            + b'/7"}',
            "invalid UTF-8: a lone Latin-1 byte 0xE9 inside the text",
        ),
        (notice_row("bad-000", 8, notices[3]), "good row `bad-000-08`"),
    ]
    (folder / "bad-000.jsonl").write_bytes(b"".join(line + b"\n" for line, _ in lines))
    report = [("bad-000.jsonl", f"line {n}", what) for n, (_, what) in enumerate(lines, start=1)]

    # One full flush per row, so every row before the cut decompresses on its own.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    flushed = [
        compressor.compress(notice_row("truncated-000", number, text) + b"\n")
        + compressor.flush(zlib.Z_FULL_FLUSH)
        for number, text in enumerate(notices[4:12], start=1)
    ]
    cut = b"".join(flushed[:6]) + flushed[6][: len(flushed[6]) // 2]
    (folder / "truncated-000.jsonl.gz").write_bytes(cut)
    report += [
        ("truncated-000.jsonl.gz", f"line {n}", f"good row `truncated-000-{n:02d}`") for n in range(1, 7)
    ]
    report += [
        ("truncated-000.jsonl.gz", "line 7", "cut: the compressed stream ends halfway through this row"),
        ("truncated-000.jsonl.gz", "end", "no end-of-stream marker and no gzip trailer; row 8 is lost"),
    ]

    (folder / "empty.txt").write_bytes(b"")
    report.append(("empty.txt", "whole file", "zero bytes"))
    return report


def write_code(folder: Path, seeds: Path) -> list[dict[str, Any]]:
    """Pack the seed source files into `files-000.jsonl`; returns the rows."""
    paths = sorted(p for p in seeds.rglob("*") if p.is_file())
    rows = []
    for path in paths:
        file_id = path.relative_to(seeds).as_posix()
        repo, inner = file_id.split("/", 1)
        rows.append(
            {
                "id": file_id,
                "text": path.read_text(encoding="utf-8"),
                "url": f"https://example.org/{repo}/blob/main/{inner}",
                "meta": {"repo": repo, "path": inner, "language": CODE_LANGUAGES[path.suffix]},
            }
        )
    assert sorted(row["id"] for row in rows) == sorted(CODE_EXPECTATIONS), "CODE_EXPECTATIONS is out of date"
    (folder / "files-000.jsonl").write_bytes(jsonl_bytes(rows))
    return rows


def md_table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ids_in(docs: list[Doc], category: str) -> list[Doc]:
    return sorted((doc for doc in docs if category in doc.category.split(",")), key=lambda doc: doc.id)


def render_planted(
    docs: list[Doc],
    record_ids: dict[str, str],
    broken: list[tuple[str, str, str]],
    code_rows: list[dict[str, Any]],
) -> str:
    """PLANTED.md: every common_crawl document with its category, the PII ground truth and the code files."""
    where = {doc.id: OUTPUT_FILES[doc.out] for doc in docs}

    def listing(category: str, with_note: bool = False) -> str:
        header = ["id", "file", "url"] + (["detail"] if with_note else [])
        rows = [
            [f"`{d.id}`", where[d.id], d.url] + ([d.note] if with_note else [])
            for d in ids_in(docs, category)
        ]
        return md_table(header, rows)

    counts = {filename: sum(1 for doc in docs if doc.out == out) for out, filename in OUTPUT_FILES.items()}
    good = Counter(file for file, _, what in broken if what.startswith("good row"))
    bad_good_lines = ", ".join(
        where.split()[1]
        for file, where, what in broken
        if file == "bad-000.jsonl" and what.startswith("good row")
    )
    pii_rows = []
    for doc_id, expected in sorted(PII_EXPECTATIONS.items()):
        redact = "<br>".join(f"`{string}` → {kind}" for string, kind in expected["redact"])
        keep = "<br>".join(f"`{string}`" for string in expected["keep"])
        pii_rows.append([f"`{doc_id}`", where[doc_id], redact, keep])

    sections = [
        "# Planted cases in the sample corpus (common_crawl, code_repositories)",
        "Generated by `python -m fm_pipeline.sample_data.build_sample_corpus` from `seed_texts/`; do "
        "not edit by "
        "hand. Every text was written for this project. Rebuilding gives byte-identical files.",
        "Documents are identified by `id` (JSONL and Parquet rows) and by URL, which is unique across "
        "`common_crawl/`. WARC and WET records have no `id` field: the ids below are the seed names, and the "
        "record's WARC-Target-URI and WARC-Record-ID (listed at the end) identify it.",
        "## common_crawl files",
        md_table(
            ["file", "documents", "format"],
            [
                [
                    OUTPUT_FILES["warc"],
                    counts[OUTPUT_FILES["warc"]],
                    "WARC/1.0, gzip per record: 1 warcinfo, then a request + response (HTTP 200, full "
                    "HTML page "
                    "with cookie banner, nav, related-links sidebar, newsletter box and footer) per document",
                ],
                [
                    OUTPUT_FILES["wet"],
                    counts[OUTPUT_FILES["wet"]],
                    "WARC/1.0, gzip per record: 1 warcinfo, then one `conversion` record (text/plain) "
                    "per document",
                ],
                [
                    OUTPUT_FILES["jsonl.gz"],
                    counts[OUTPUT_FILES["jsonl.gz"]],
                    'JSONL, gzip: {"id", "text", "url", "meta": {"crawl", "fetch_time"}}',
                ],
                [OUTPUT_FILES["jsonl.zst"], counts[OUTPUT_FILES["jsonl.zst"]], "JSONL, zstd: same rows"],
                [OUTPUT_FILES["parquet"], counts[OUTPUT_FILES["parquet"]], "Parquet: columns id, text, url"],
                ["broken/*", "see below", "malformed inputs for the reader"],
            ],
        ),
        f"Total: {len(docs)} documents outside `broken/`, plus {good['bad-000.jsonl']} good rows in "
        f"`broken/bad-000.jsonl` and {good['truncated-000.jsonl.gz']} in `broken/truncated-000.jsonl.gz`.",
        "## Every document",
        "`lang` is the ISO 639-1 code of the text (`es+en`: code-switched; `und`: no language). "
        "`category` is `clean` or the planted case.",
        md_table(
            ["id", "file", "lang", "kind", "category", "url"],
            [
                [f"`{d.id}`", where[d.id], d.lang, d.page.kind if d.page else "-", d.category, d.url]
                for d in sorted(docs, key=lambda d: d.id)
            ],
        ),
        "## Exact duplicates (5)",
        "Same text as the original, different id and URL. `en-product-kettle-mirror` is a second WARC "
        "response "
        "with the identical HTML payload (same WARC-Payload-Digest), so it extracts to the same text as "
        "`en-product-kettle`; the others cross formats (JSONL.gz, JSONL.zst, Parquet, WET) with "
        "identical text.",
        listing("exact_duplicate", with_note=True),
        "## Near duplicates (6 + 4)",
        f"Word edits: about {NEAR_DUPLICATE_RATE:.1%} of the words replaced by other words of the same page "
        "(seeded). Boilerplate copies: the original text with a navigation header line and a footer "
        "line added. "
        "Jaccard is over sets of lower-cased whitespace word 5-grams.",
        listing("near_duplicate", with_note=True),
        listing("boilerplate_copy", with_note=True),
        "The boilerplate footers say “All rights reserved.”: an ordinary site footer, which should not "
        "by itself "
        "count as a copyright reservation notice (see below).",
        "## Spam and keyword stuffing (5)",
        "`spam-cheap-watches` (one phrase repeated), `spam-click-here-pills` (repeated calls to action, "
        "!!!, capitals), `spam-link-farm` (mostly URLs), `spam-ko-loan` (Korean keyword stuffing), "
        "`spam-best-vpn-seo` (SEO stuffing inside a normal HTML page in the WARC file).",
        listing("spam"),
        "## Very short junk (6)",
        listing("junk"),
        "## Mojibake (4)",
        "UTF-8 text decoded as Windows-1252 (bytes it leaves undefined decoded as Latin-1), e.g. `cafÃ©`, "
        "`â€™`, and Korean turned into `ì„œìš¸`-like sequences. These documents exist only in broken form. "
        "`ftfy.fix_encoding(text)` restores the seed text exactly; `ftfy.fix_text` with defaults also "
        "straightens curly quotes.",
        listing("mojibake"),
        "## PII (8)",
        "Redact the strings on the left as the given type; the strings on the right look similar and must "
        "stay: private and loopback IPs, a Luhn-invalid card number, dates, version numbers and order "
        "numbers. "
        "Card numbers are Luhn-valid test numbers; IBANs have valid check digits; `078-05-1120` is a "
        "long-voided SSN printed on a sample card in 1938; `900101-1234567` has the Korean RRN format (RRNs "
        "issued since October 2020 carry no checksum, so do not require one). Phone numbers and e-mail "
        "domains are fictional or reserved. Person names are out of scope.",
        md_table(["id", "file", "redact (string → type)", "keep"], pii_rows),
        "## Adult content (2)",
        "Keyword lists only, on adult-looking domains.",
        listing("adult"),
        "## Copyright reservation notice in the body (2)",
        "Both contain “All rights reserved. No part of this … may be reproduced …”. Other pages have only "
        "ordinary “© year Site. All rights reserved.” footers (in the WARC HTML chrome or the "
        "boilerplate copies).",
        listing("copyright"),
        "## Code-switched (2)",
        listing("code_switched"),
        "## broken/ (malformed input for the reader)",
        md_table(["file", "where", "what"], broken),
        f"`bad-000.jsonl`: {good['bad-000.jsonl']} good rows (lines {bad_good_lines}). "
        f"`truncated-000.jsonl.gz`: {good['truncated-000.jsonl.gz']} complete good rows, then the "
        "stream ends "
        "inside the next row (Python's `gzip` yields the complete rows, then raises EOFError). "
        "`empty.txt`: a `.txt` document with no text.",
        "## WARC record ids",
        md_table(
            ["id", "file", "WARC-Record-ID"],
            [[f"`{doc_id}`", where[doc_id], rid] for doc_id, rid in sorted(record_ids.items())],
        ),
        "## code_repositories/files-000.jsonl",
        "One row per source file: id `repo/path`, text, url `https://example.org/<repo>/blob/main/<path>`, "
        "meta {repo, path, language}. The sources live in `seed_texts/code_repositories/`.",
        md_table(
            ["id", "language", "lines", "licence / kind"],
            [
                [
                    f"`{row['id']}`",
                    row["meta"]["language"],
                    row["text"].count("\n"),
                    CODE_EXPECTATIONS[row["id"]],
                ]
                for row in code_rows
            ],
        ),
    ]
    return "\n\n".join(sections) + "\n"


def main() -> None:
    pages = load_pages(SEEDS / "common_crawl" / "pages")
    notices = (SEEDS / "common_crawl" / "notices.txt").read_text(encoding="utf-8").strip().split("\n\n")
    docs = build_documents(pages)

    for folder in (RAW / "common_crawl", RAW / "code_repositories"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    record_ids = write_common_crawl(RAW / "common_crawl", docs, pages)
    broken = write_broken(RAW / "common_crawl" / "broken", notices)
    code_rows = write_code(RAW / "code_repositories", SEEDS / "code_repositories")
    (RAW / "PLANTED.md").write_text(render_planted(docs, record_ids, broken, code_rows), encoding="utf-8")
    print(f"wrote {len(docs)} common_crawl documents and {len(code_rows)} code files under {RAW}")


if __name__ == "__main__":
    main()
