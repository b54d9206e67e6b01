"""What each kind of PII looks like: same-length folding, the cheap gates, the candidate patterns, and the
detectors that pair each pattern with its validator, run in order over one line."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fm_pipeline.curation.pii.validate import (
    Span,
    card_span,
    iban_span,
    ip_span,
    kr_rrn_span,
    phone_span,
    us_ssn_span,
)

# Same-length folding: full-width, Arabic-Indic, Persian and Devanagari digits, full-width + - ( ) . @, the
# dash look-alikes that Japanese and typeset text put between digit groups, and no-break spaces.
_FOLD = {ord(c): "0123456789"[i % 10] for i, c in enumerate("０１２３４５６７８９٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९")}
_FOLD.update({ord(c): a for c, a in zip("＋（）．＠－‐‑‒–−ー\u00a0\u202f", "+().@-------  ", strict=True)})
_NEEDS_FOLD = re.compile("[" + "".join(map(chr, _FOLD)) + "]")

# Cheap gates, run over every document as it is (folding every document would cost more than the gate),
# so they know the wide digits and separators that folding maps. Each digit-bearing detector needs nine
# digits in a run with at most two separator characters between them (the shortest phone or SSN), a
# dotted quad (IPv4) or an IBAN head (two capitals, two digits, two groups of four, which may be letters);
# IPv6 needs a hex digit, a colon, up to four hex digits, a colon. Dates (2024-03-15), years and times
# stay below the first. The IPv6 gate starts at a colon so the scan skips ahead to colons only.
_WIDE_DIGIT = "０-９٠-٩۰-۹०-९"
_WIDE_SEP = "－‐‑‒–−ー\u00a0\u202f（）＋．"
DIGIT_HINT = re.compile(
    rf"[0-9{_WIDE_DIGIT}](?:(?:[ ()+./{_WIDE_SEP}-]{{0,2}}[0-9{_WIDE_DIGIT}]){{8}}"
    rf"|[.．][0-9{_WIDE_DIGIT}]{{1,3}}[.．][0-9{_WIDE_DIGIT}]{{1,3}}[.．][0-9{_WIDE_DIGIT}]"
    r"|(?<=[A-Z][A-Z][0-9])[0-9][ -]?[A-Z0-9]{4}[ -]?[A-Z0-9]{4})"
)
IPV6_HINT = re.compile(r":(?<=[0-9A-Fa-f]:)[0-9A-Fa-f]{0,4}:|::[Ff]{4}:")  # a hex group and colons, or ::ffff:

# Speed: every pattern starts with a plain character class and checks its left boundary with a
# lookbehind *after* that first character, which lets the regex engine skip ahead with a fast
# character scan instead of trying a full match at every position.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,8}(?:[ -]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"[0-9](?<![A-Za-z0-9+.,-][0-9])[0-9]{3}(?:[ -]?[0-9]{3,6}){2,4}(?![A-Za-z0-9-]|[.,][0-9])")
_KR_RRN = re.compile(r"[0-9](?<![A-Za-z0-9.-][0-9])[0-9]{5}(?: ?- ?|)[1-8][0-9]{6}(?![A-Za-z0-9-])")
_US_SSN = re.compile(r"[0-9](?<![A-Za-z0-9.-][0-9])[0-9]{2}(?:([- ])[0-9]{2}\1|[0-9]{2})[0-9]{4}(?![A-Za-z0-9-])")
_IPV4 = re.compile(r"[0-9](?<![A-Za-z0-9.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![A-Za-z0-9]|\.[0-9])")
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![A-Za-z0-9:.][0-9A-Fa-f:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"
    r"(?![A-Za-z0-9:]|\.[0-9])"
)
# Any phone shape: an optional + or (+ or (, digit groups joined by one separator ( - . space, a bracket
# with an optional space or separator), an optional extension. Every group after the first needs a
# separator, so a long digit run has one parse (no catastrophic backtracking). `phone_span` decides.
_PHONE = re.compile(
    r"[+(0-9](?<![A-Za-z0-9_+.,/@-][+(0-9])(?:(?<=\()\+)?[0-9]{0,14}(?:(?:\)[ ./-]?|[ ./-]?\(|[ ./-])[0-9]{1,14}){0,9}"
    r"(?:(?P<ext> ?(?:x|ext\.? ?) ?[0-9]{1,6}))?(?![A-Za-z0-9]|[.,/-][0-9])"
)


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    span: Callable[[re.Match[str]], Span | None]
    hint: re.Pattern[str] | None = None
    """A quick scan a line must pass first, for patterns whose first character is common in prose (capital
    letters for IBANs, hex letters for IPv6): long contract lines would otherwise cost a try at each one."""


# Order matters: validated long numbers before the phone shapes that could swallow them.
_DETECTORS = (
    _Detector("IBAN", _IBAN, iban_span, re.compile(r"[0-9](?<=[A-Z][A-Z][0-9])[0-9]")),
    _Detector("CREDIT_CARD", _CARD, card_span),
    _Detector("KR_RRN", _KR_RRN, kr_rrn_span),
    _Detector("US_SSN", _US_SSN, us_ssn_span),
    _Detector("IP_ADDRESS", _IPV6, ip_span, IPV6_HINT),  # first: ::ffff:1.2.3.4 holds a dotted quad
    _Detector("IP_ADDRESS", _IPV4, ip_span),
    _Detector("PHONE", _PHONE, phone_span),
)
_EMAIL_DETECTOR = _Detector("EMAIL", _EMAIL, lambda m: m.span())


def fold(text: str) -> str:
    """ASCII digits and punctuation for matching, one character for one, so spans fit the original."""
    if text.isascii():
        return text
    return _NEEDS_FOLD.sub(_fold_char, text)  # few hits: faster than str.translate over the whole text


def _fold_char(m: re.Match[str]) -> str:
    return _FOLD[ord(m.group())]


def may_contain_pii(text: str) -> bool:
    """The cheap gate: when False, `find_pii` finds nothing. Every detector needs an ``@``, nine digits in
    a run (the shortest phone or SSN), an IBAN head, a dotted quad or a hex-colon group."""
    return (
        "@" in text or "＠" in text or DIGIT_HINT.search(text) is not None or IPV6_HINT.search(text) is not None
    )


def scan_line(line: str, with_email: bool) -> list[tuple[int, int, str]]:
    """Run the detectors in order over one folded line; each found span is blanked out (same length) so
    later detectors do not see it. Returns (start, end, type) in line order."""
    found: list[tuple[int, int, str]] = []
    for det in (_EMAIL_DETECTOR, *_DETECTORS) if with_email else _DETECTORS:
        if det.hint is not None and det.hint.search(line) is None:
            continue

        def blank(m: re.Match[str], det: _Detector = det) -> str:
            span = det.span(m)
            if span is None:
                return m.group()
            found.append((*span, det.kind))
            a, b = span[0] - m.start(), span[1] - m.start()
            return m.group()[:a] + "\0" * (b - a) + m.group()[b:]

        line = det.pattern.sub(blank, line)
    return sorted(found)
