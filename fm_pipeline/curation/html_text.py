"""Main-content text from HTML pages, with two real extractors: Resiliparse (fast, the default) and
trafilatura (slower, often cleaner). `benchmarks/ingest.py` measures both."""

from __future__ import annotations

from collections.abc import Callable

HTML_EXTRACTORS: tuple[str, ...] = ("resiliparse", "trafilatura")


def _resiliparse(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    return extract_plain_text(tree, main_content=True, alt_texts=False, links=False, form_fields=False)


def _trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=True, deduplicate=False) or ""


def get_html_extractor(name: str = "resiliparse") -> Callable[[str], str]:
    """The extractor named `name`: a function from an HTML string to its main text."""
    extractors = {"resiliparse": _resiliparse, "trafilatura": _trafilatura}
    if name not in extractors:
        raise ValueError(f"unknown HTML extractor {name!r}; choose one of {HTML_EXTRACTORS}")
    return extractors[name]
