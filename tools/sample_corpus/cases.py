"""What is planted in the sample `common_crawl` source, and where: the copies, junk and PII ground truth that
`documents.build_documents` adds to the seed pages and `PLANTED.md` lists."""

from __future__ import annotations

from typing import Any

SEED = 20240315
CRAWL = "CC-MAIN-2024-10"
NEAR_DUPLICATE_RATE = 0.02

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

