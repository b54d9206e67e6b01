"""The seed web pages (`seed_texts/common_crawl/pages/*.txt`) and the documents made from them: each page
once, then the planted exact and near duplicates, boilerplate copies and junk of `cases`."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from tools.sample_corpus.cases import (
    BOILERPLATE_COPIES,
    EXACT_DUPLICATES,
    JUNK_DOCS,
    NEAR_DUPLICATE_RATE,
    NEAR_DUPLICATES,
    OUTPUT_FILES,
    PII_EXPECTATIONS,
    SEED,
)

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

