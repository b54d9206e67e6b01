"""PII redaction with typed placeholders (``<EMAIL>``, ``<PHONE>``, ...).

Each detector is a regular expression that finds candidates plus a validator that rejects look-alikes
(Luhn for cards, mod-97 for IBANs, calendar dates for Korean RRNs, SSA rules for SSNs, ``ipaddress`` for
IPs), so dates, versions, prices and order numbers survive. Detectors run in a fixed order on the text
left by the previous ones: e-mails first (their digits are not phones), then the validated numbers
(IBAN, card, RRN, SSN, IP) before the loose phone shapes that would otherwise swallow them.

Most documents hold no PII, so one cheap pre-check (an ``@``, a run of nine digits, a dotted quad or an
IPv6 head) decides whether the detectors run at all.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

# Cheap gate, run over every document: each digit-bearing detector needs nine digits in a run with at
# most two separator characters between them (the shortest phone or SSN), a dotted quad (IPv4), or a
# 4-hex-digit group starting with 2 or 3 then a colon (global IPv6 lives in 2000::/3). Dates
# (2024-03-15, 11/02/2006), year ranges and times stay below it. Only ASCII digits count.
_DIGIT_HINT = re.compile(
    r"[0-9](?:(?:[ ().-]{0,2}[0-9]){8}|\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|(?<=[23])[0-9A-Fa-f]{3}:[0-9A-Fa-f]{0,4}:)"
)

# Speed: every pattern starts with a plain character class and checks its left boundary with a
# lookbehind *after* that first character, which lets the regex engine skip ahead with a fast
# character scan instead of trying a full match at every position.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"[A-Z](?<!\w[A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)")
_CARD = re.compile(r"[0-9](?<![\w+.,-][0-9])[0-9]{3}(?:[ -]?[0-9]{3,6}){2,4}(?![\w-]|[.,][0-9])")
_KR_RRN = re.compile(r"([0-9](?<![\w.-][0-9])[0-9])([0-9]{2})([0-9]{2})-([1-8])[0-9]{6}(?![\w-])")
_US_SSN = re.compile(r"([0-9](?<![\w.-][0-9])[0-9]{2})-([0-9]{2})-([0-9]{4})(?![\w-])")
_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])")
_IPV6 = re.compile(r"[23](?<![\w:][23])[0-9A-Fa-f]{3}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_INTL_PHONE = re.compile(
    r"\+(?<![\w+.-]\+)(?:"
    # +1: North American numbering, exactly ten digits after the country code: +1 415 555 0132
    r"1[ .-]?(?:\([0-9]{3}\)|[0-9]{3})[ .-]?[0-9]{3}[ .-]?[0-9]{4}"
    # other countries: separated groups, e.g. +44 (0)20 7946 0958, +82 10-1234-5678, +33 1 23 45 67 89.
    # Every group after the country code starts with a separator or a bracket, so a long digit run has
    # one parse, not thousands (no catastrophic backtracking).
    r"|[2-9][0-9]{0,2}(?:[ .-]?\([0-9]{1,4}\) ?[0-9]{0,8}|[ .-][0-9]{1,8}){1,7}"
    # ... or no separators at all: +4930123456
    r"|[2-9][0-9]{8,14}"
    r")(?![\w-]|\.[0-9])"
)
# National shapes, never a run inside a longer list of digit groups (a failed IBAN, a table row). The
# first character is consumed, then each branch checks which one it was.
_NATIONAL_PHONE = re.compile(
    r"[(0-9](?<![\w+.-][(0-9])(?<![0-9][ -][(0-9])(?:"
    # bracketed area code: (415) 555-0132, (02) 1234 5678
    r"(?<=\()[0-9]{2,4}\) ?[0-9]{3,4}[-. ][0-9]{4}"
    # trunk 0: 010-1234-5678, 02-123-4567, 090-1234-5678, 020 7946 0958 (no dots: 01.02.2024 is a date)
    r"|(?<=0)[0-9]{1,3}([- ])[0-9]{3,4}\1[0-9]{4}"
    # North American: 1-800-555-0199, 415-555-0132, 415.555.0132
    r"|(?<=1)[-. ][2-9][0-9]{2}([-. ])[2-9][0-9]{2}\2[0-9]{4}"
    r"|(?<=[2-9])[0-9]{2}([-. ])[2-9][0-9]{2}\3[0-9]{4}"
    r")(?![\w-]|[. ][0-9])"
)
# Dotted quads that are versions or outline numbers ("version 1.2.3.4", "Section 8.3.2.1"), not addresses.
_NOT_IP_BEFORE = re.compile(
    r"(?i)(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bsection|\bsec\.|\bclause|\barticle|"
    r"\bparagraph|\bpara\.|\bitem|\bstep|\bchapter|\brule|§)\s*$"
)
_NON_DIGIT = re.compile(r"\D")

# ISO 13616 IBAN lengths by country.
_IBAN_LENGTHS = {
    cc: int(n)
    for cc, n in re.findall(
        r"([A-Z]{2})(\d{2})",
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 EE20 "
        "EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 "
        "KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 "
        "PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SD18 SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 "
        "VA22 VG24 XK20",
    )
}


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(d: str) -> bool:
    """Issuer (IIN) prefix and length of the major networks: random digit runs rarely fit both."""
    n, p2, p3, p4 = len(d), int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if p2 in (34, 37):  # American Express
        return n == 15
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro, Discover, UnionPay, RuPay
        return 13 <= n <= 19
    return False


def _is_card(m: re.Match[str]) -> bool:
    digits = _NON_DIGIT.sub("", m.group())
    return 13 <= len(digits) <= 19 and _card_prefix_ok(digits) and _luhn_ok(digits)


def _is_iban(m: re.Match[str]) -> bool:
    compact = m.group().replace(" ", "")
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _is_kr_rrn(m: re.Match[str]) -> bool:
    yy, mm, dd, gender = (int(g) for g in m.groups())
    century = 1900 if gender in (1, 2, 5, 6) else 2000  # 5-8: foreign residents, same centuries
    try:
        datetime.date(century + yy, mm, dd)
    except ValueError:
        return False
    return True


def _is_us_ssn(m: re.Match[str]) -> bool:
    area, group, serial = m.groups()
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _is_public_ip(m: re.Match[str]) -> bool:
    """Only globally routable addresses identify someone; private, loopback, link-local, documentation,
    multicast and reserved ranges do not, nor do dotted quads that are versions or outline numbers."""
    try:
        addr = ipaddress.ip_address(m.group())
    except ValueError:
        return False
    if addr.version == 4 and _is_outline_number(m):
        return False
    return addr.is_global and not addr.is_multicast and not addr.is_reserved


def _is_outline_number(m: re.Match[str]) -> bool:
    """A version ("version 1.2.3.4"), a cross-reference ("Section 8.3.2.1(A)") or a small outline number
    heading a line ("4.1.2.1 Skype grants"); real addresses rarely sit in those places."""
    text, start = m.string, m.start()
    if _NOT_IP_BEFORE.search(text, max(0, start - 12), start) or text.startswith("(", m.end()):
        return True
    heads_line = text[text.rfind("\n", 0, start) + 1 : start].strip() == ""
    return heads_line and all(len(octet) <= 2 for octet in m.group().split("."))


def _is_phone(m: re.Match[str]) -> bool:
    return 9 <= len(_NON_DIGIT.sub("", m.group())) <= 15  # E.164 caps numbers at 15 digits


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    valid: Callable[[re.Match[str]], bool]


# Order matters: validated long numbers before the phone shapes that could swallow them.
_DETECTORS = (
    _Detector("IBAN", _IBAN, _is_iban),
    _Detector("CREDIT_CARD", _CARD, _is_card),
    _Detector("KR_RRN", _KR_RRN, _is_kr_rrn),
    _Detector("US_SSN", _US_SSN, _is_us_ssn),
    _Detector("IP_ADDRESS", _IPV4, _is_public_ip),
    _Detector("IP_ADDRESS", _IPV6, _is_public_ip),
    _Detector("PHONE", _INTL_PHONE, _is_phone),
    _Detector("PHONE", _NATIONAL_PHONE, _is_phone),
)
_EMAIL_DETECTOR = _Detector("EMAIL", _EMAIL, lambda m: True)


def may_contain_pii(text: str) -> bool:
    """The cheap gate: when False, `find_pii` finds nothing. Every detector needs an ``@``, nine digits in
    a run (the shortest phone or SSN; an IBAN's account number), a dotted quad or an IPv6 head."""
    return "@" in text or _DIGIT_HINT.search(text) is not None


def _candidate_lines(text: str) -> dict[int, tuple[int, bool]]:
    """Lines worth scanning, as start -> (end, holds an '@'). No pattern crosses a newline, so only the
    lines that pass the gate are scanned, which keeps long documents with one phone number cheap."""

    def bounds(i: int) -> tuple[int, int]:
        end = text.find("\n", i)
        return text.rfind("\n", 0, i) + 1, len(text) if end < 0 else end

    lines: dict[int, tuple[int, bool]] = {}
    m = _DIGIT_HINT.search(text)
    while m:
        start, end = bounds(m.start())
        lines[start] = (end, False)
        m = _DIGIT_HINT.search(text, end + 1)
    at = text.find("@")
    while at >= 0:
        start, end = bounds(at)
        lines[start] = (end, True)
        at = text.find("@", end + 1)
    return lines


def _scan_line(line: str, with_email: bool, found: list[tuple[str, str]]) -> str:
    """Run the detectors in order over one line, recording what each replaced."""
    for det in (_EMAIL_DETECTOR, *_DETECTORS) if with_email else _DETECTORS:

        def replace(m: re.Match[str], det: _Detector = det) -> str:
            if not det.valid(m):
                return m.group()
            found.append((det.kind, m.group()))
            return f"<{det.kind}>"

        line = det.pattern.sub(replace, line)
    return line


def _scan(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Redact every candidate line; return the new text and every (type, matched string) replaced."""
    found: list[tuple[str, str]] = []
    if not may_contain_pii(text):  # the common case: nothing to look at
        return text, found
    pieces: list[str] = []
    pos = 0
    for start, (end, with_email) in sorted(_candidate_lines(text).items()):
        pieces += (text[pos:start], _scan_line(text[start:end], with_email, found))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces), found


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace PII with ``<TYPE>`` placeholders; return the text and how many of each type were replaced."""
    redacted, found = _scan(text)
    return redacted, dict(Counter(kind for kind, _ in found)) if found else {}


def find_pii(text: str) -> list[tuple[str, str]]:
    """(type, matched string) for every PII item `redact_pii` would replace; empty for clean text."""
    return _scan(text)[1]
