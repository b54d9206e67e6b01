"""A second, independent PII detector, for auditing redacted text (the `no_pii_in_kept` check).

Re-running the redactor's own rules over its output can never find anything, so this module shares none
of them: phones are what Google's libphonenumber (``phonenumbers.PhoneNumberMatcher``, VALID leniency) finds
for any of a dozen regions; cards, IBANs, SSNs and Korean RRNs are digit runs that python-stdnum validates
(Luhn, ISO 13616 formats, SSA and RRN rules); e-mails are whitespace tokens that parse as local@domain;
IPs are tokens that ``ipaddress`` accepts. Non-ASCII digits are normalized with NFKC and
``unicodedata.decimal`` rather than a fold table. What the redactor missed shows up here.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
from stdnum import iban, luhn
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.kr import rrn
from stdnum.us import ssn

from fm_pipeline.lake.parquet_io import iter_rows

REGIONS = ("US", "GB", "DE", "FR", "KR", "JP", "CN", "IN")
_DIGITS = str.maketrans({chr(c): str(unicodedata.decimal(chr(c))) for c in range(0x80, 0x10000)
                         if unicodedata.category(chr(c)) == "Nd"})
# A national number as people write it: an optional bracketed first group, then groups joined by one
# plain separator each.
_NATIONAL_SHAPE = re.compile(r"\(?\d+\)?(?:(?:[ .-]|\) ?)\d+)+")
_NINE_DIGITS = re.compile(r"(?:\d\D{0,3}){9}")
_DIGIT_RUN = re.compile(r"\d[\d -]*\d")
_IBAN_HEAD = re.compile(r"\b[A-Z]{2}\d\d[ ]?[A-Z0-9]")
# What every address `ipaddress` accepts contains: four dotted digit groups, or (IPv6) "::" or two colons
# around hex digits. Lines without it hold no IP, so the token split is skipped for them.
_IP_HINT = re.compile(r"\d\.\d+\.\d+\.\d|::|[0-9A-Fa-f]:[0-9A-Fa-f]*:")
_TOKEN_EDGE = ".,;:!?()[]{}<>\"'`«»“”‘’「」『』（）、。，：；"
_ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-.")
_VERSION_WORDS = {"v", "ver", "version", "release", "build", "section", "sec", "§", "clause", "article",
                  "paragraph", "para", "item", "step", "chapter", "rule"}
REPORT_LIMIT = 20
"""At most this many findings are reported: one is enough to fail the check, a few show the pattern."""
_QUIET_V6 = tuple(ipaddress.ip_network(n) for n in ("::/127", "2001:db8::/32", "ff00::/8"))


def _normalize(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_DIGITS)


def _trim(token: str) -> str:
    """Without edge punctuation or glued-on non-ASCII text (a particle: help@shop.example로, 8.8.8.8에서)."""
    token = token.strip(_TOKEN_EDGE)
    while token and not token[-1].isascii():
        token = token[:-1].rstrip(_TOKEN_EDGE)
    while token and not token[0].isascii():
        token = token[1:].lstrip(_TOKEN_EDGE)
    return token


def _emails(text: str) -> Iterator[str]:
    for token in text.split():
        if "@" not in token:
            continue
        token = _trim(token)
        local, _, domain = token.rpartition("@")
        labels = domain.split(".")
        if (
            local and set(local) <= _ATEXT and not local.startswith(".") and ".." not in local
            and len(labels) >= 2 and labels[-1].isalpha() and len(labels[-1]) >= 2
            and all(label and label.replace("-", "").isalnum() and label.isascii()
                    and not label.startswith("-") and not label.endswith("-") for label in labels)
        ):
            yield token


def _phones(line: str) -> Iterator[str]:
    """Numbers libphonenumber holds valid for some region. Written with + or 00 they stand; national ones
    need nine digits and plain single separators, so page ranges (1092-1102), citations (323  643-645) and
    bank routing numbers (026009593) stay out."""
    seen: set[str] = set()
    for region in REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(line, region, leniency=phonenumbers.Leniency.VALID):
            raw = match.raw_string
            international = raw.lstrip("(").startswith(("+", "00"))
            if raw in seen or not (international or _plain_national(raw)):
                continue
            seen.add(raw)
            yield raw


def _plain_national(raw: str) -> bool:
    if not _NATIONAL_SHAPE.fullmatch(raw):
        return False
    groups = re.findall(r"\d+", raw)
    sizes = [len(g) for g in groups]
    if not 9 <= sum(sizes) <= 12 or min(sizes) < 3 and raw.lstrip("(")[0] != "0":
        return False
    return not (len(groups) == 2 and sizes[0] == sizes[1] >= 4 and "-" in raw)  # a range: 22068-22074


def _numbers(line: str) -> Iterator[tuple[str, str]]:
    """Cards, SSNs and RRNs among the digit runs (digits, single spaces or dashes) of one line."""
    for m in _DIGIT_RUN.finditer(line):
        run = m.group()
        compact = run.replace(" ", "").replace("-", "")
        groups = re.split(r"[ -]", run)
        card_groups = len(groups) == 1 or len(groups[0]) == 4 and min(map(len, groups[1:])) >= 3
        if 13 <= len(compact) <= 19 and compact[0] in "23456" and card_groups and luhn.is_valid(compact):
            yield "CREDIT_CARD", run
        elif re.fullmatch(r"\d{3}([- ])\d{2}\1\d{4}", run) and ssn.is_valid(run.replace(" ", "-")):
            yield "US_SSN", run
        elif re.fullmatch(r"\d{6}-\d{7}", run) and _rrn_ok(run):
            yield "KR_RRN", run


def _rrn_ok(run: str) -> bool:
    try:
        rrn.validate(run)
    except InvalidChecksum:
        return True  # numbers issued since October 2020 carry no check digit
    except ValidationError:
        return False
    return True


def _ibans(line: str) -> Iterator[str]:
    for m in _IBAN_HEAD.finditer(line):
        tail = line[m.start() : m.start() + 42]
        chars = [i for i, ch in enumerate(tail) if ch.isalnum() and ch.isascii()]
        for count in range(min(34, len(chars)), 14, -1):
            candidate = tail[: chars[count - 1] + 1]
            if not candidate.replace(" ", "").isalnum():
                continue
            if iban.is_valid(candidate, check_country=False):  # checksum and length, not the BBAN layout
                yield candidate
                break


def _ips(line: str) -> Iterator[str]:
    words = re.split(r"[\s,;()\[\]<>\"'=/]+", line)
    for before, token in zip(["", *words], words, strict=False):
        token = _trim(token)
        if not token or not (token.count(".") == 3 or token.count(":") >= 2):
            continue
        try:
            addr = ipaddress.ip_address(token.split("%")[0])
        except ValueError:
            continue
        if _identifying(addr, before):
            yield token


def _identifying(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, before: str) -> bool:
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.version == 4:
        outline = before in ("", "\n") and all(len(octet) <= 2 for octet in str(addr).split("."))
        version = before.lower().rstrip(".") in _VERSION_WORDS
        return addr.is_global and not addr.is_multicast and not outline and not version
    if any(addr in net for net in _QUIET_V6):
        return False
    return not (addr.is_link_local or addr.is_private) or int(addr) & (2**64 - 1) > 0xFFFF


def audit_pii(text: str) -> list[tuple[str, str]]:
    """(type, string) of every PII item this detector sees; redacted text should give none."""
    text = _normalize(text)
    found: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if "@" in line:
            found += [("EMAIL", e) for e in _emails(line)]
        if _IP_HINT.search(line):
            found += [("IP_ADDRESS", ip) for ip in _ips(line)]
        if not _NINE_DIGITS.search(line):
            continue
        found += [("IBAN", v) for v in _ibans(line)]
        numbers = list(_numbers(line))
        found += numbers
        taken = {run for _, run in numbers}
        found += [("PHONE", p) for p in _phones(line) if not any(p in run or run in p for run in taken)]
    return found


def scan_shards(shards: list[Path], limit: int = REPORT_LIMIT) -> list[dict[str, str]]:
    """PII the detector finds in the `text` of `shards`, read here in order: id, type and string, at most
    `limit`."""
    found: list[dict[str, str]] = []
    for row in iter_rows(shards, columns=["id", "text"]):
        for kind, match in audit_pii(row["text"]):
            found.append({"id": row["id"], "type": kind, "match": match})
            if len(found) >= limit:
                return found
    return found
