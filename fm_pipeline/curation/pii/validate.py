"""What makes a candidate count: checksums (Luhn, mod-97), issuer prefixes, calendar dates, SSA rules,
routable addresses, phone shapes and the cue words that make a bare digit run a number of some kind.

Each `*_span` takes a candidate match and returns the span to redact, or None for a look-alike.
"""

from __future__ import annotations

import datetime
import ipaddress
import re

# Versions and outline numbers ("version 1.2.3.4", "Section 8.3.2.1"), not addresses.
_NOT_IP_BEFORE = re.compile(
    r"(?i)(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bsection|\bsec\.|\bclause|\barticle|"
    r"\bparagraph|\bpara\.|\bitem|\bstep|\bchapter|\brule|§)\s*$"
)
# Words that make a bare digit run a phone number, an SSN or an RRN (searched in the 48 characters before).
_PHONE_CUE = re.compile(
    r"(?i)tel\b|tel\.|phone|call|mobile|cell|fax|whats ?app|contact|reach|dial|hotline|telefon|téléphone|"
    r"teléfono|telefone|telefono|tél|móvil|handy|portable|appel|llam|anruf|chiama|ligue|número|numéro|nummer|"
    r"номер|звон|電話|携帯|番号|连络|联系|电话|手机|号码|拨打|致电|전화|연락|휴대|"
    r"هاتف|جوال|رقم|फ़ोन|फोन|मोबाइल|संपर्क|नंबर"
)
_SSN_CUE = re.compile(r"(?i)ssn|social security|soc\. ?sec|sécurité sociale|seguro social|社会保障|사회보장")
_RRN_CUE = re.compile(r"(?i)주민|rrn|resident registration|registration (?:no|number)|住民|居民")
_IP_CUE = re.compile(  # not inside a word, nor in the <IP_ADDRESS> placeholder
    r"(?i)(?<![a-z_])(?:ip(?:v4)?|inet|addr(?:ess)?|adresse|ping)(?![a-z_])|주소|アドレス|地址|पता|عنوان"
)
_NON_DIGIT = re.compile(r"\D")
_GROUPS = re.compile(r"[0-9]+")

# ISO 13616 IBAN lengths by country (the SWIFT registry, 2024).
_IBAN_LENGTHS = {
    cc: int(n)
    for cc, n in re.findall(
        r"([A-Z]{2})(\d{2})",
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 "
        "EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 "
        "IR26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 "
        "NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 "
        "SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30",
    )
}
_PRIVATE_V4 = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
_NON_IDENTIFYING_V6 = tuple(ipaddress.ip_network(n) for n in ("::/127", "2001:db8::/32", "ff00::/8"))
_LOCAL_V6 = tuple(ipaddress.ip_network(n) for n in ("fe80::/10", "fc00::/7"))

Span = tuple[int, int]


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
    if p2 == 35:  # JCB (3528-3589; generators of test numbers use all of 35)
        return 16 <= n <= 19
    if p4 in (2131, 1800):  # JCB, 15 digits
        return n == 15
    if p2 == 50 or 56 <= p2 <= 58 or p4 in (6304, 6759, 6761, 6762, 6763, 6390):  # Maestro
        return 12 <= n <= 19
    if 60 <= p2 <= 69:  # Discover, UnionPay, RuPay, Maestro
        return 13 <= n <= 19
    return False


def _cue_near(m: re.Match[str], cue: re.Pattern[str], before: int = 48) -> bool:
    """A cue word in the `before` characters before or the 16 after (Korean, Japanese and Chinese often
    name the number after it: 请拨打…联系)."""
    text = m.string
    return cue.search(text, max(0, m.start() - before), m.start()) is not None or \
        cue.search(text, m.end(), m.end() + 16) is not None


def card_span(m: re.Match[str]) -> Span | None:
    digits = _NON_DIGIT.sub("", m.group())
    ok = 12 <= len(digits) <= 19 and _card_prefix_ok(digits) and _luhn_ok(digits)
    return m.span() if ok else None


def iban_span(m: re.Match[str]) -> Span | None:
    """The mod-97 checksum decides. A match longer than its country's registry length (a reference after
    the IBAN) is cut back to it at a group boundary; other lengths from 15 to 34 count when the checksum
    holds (generators of synthetic IBANs write them: Faker's GB IBANs have 21 characters)."""
    text = m.group()
    ends = [i + 1 for i, ch in enumerate(text) if ch.isalnum() and (i + 1 == len(text) or not text[i + 1].isalnum())]
    want = _IBAN_LENGTHS.get(text[:2])
    if want is None:
        return None
    for end in sorted(ends, key=lambda e: (_alnum_count(text[:e]) != want, -e)):
        compact = text[:end].replace(" ", "").replace("-", "")
        if 15 <= len(compact) <= 34 and _mod97_ok(compact):
            return m.start(), m.start() + end
    return None


def _alnum_count(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _mod97_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def kr_rrn_span(m: re.Match[str]) -> Span | None:
    digits = _NON_DIGIT.sub("", m.group())
    if "-" not in m.group() and not _cue_near(m, _RRN_CUE, before=24):
        return None
    yy, mm, dd, gender = int(digits[:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    if (mm == 0 and dd <= 31) or (dd == 0 and mm <= 12):  # an unknown month or day, as generators write it
        return m.span()
    century = 1900 if gender in (1, 2, 5, 6) else 2000  # 5-8: foreign residents, same centuries
    try:
        datetime.date(century + yy, mm, dd)
    except ValueError:
        return None
    return m.span()


def us_ssn_span(m: re.Match[str]) -> Span | None:
    digits = _NON_DIGIT.sub("", m.group())
    if m.group(1) is None and not _cue_near(m, _SSN_CUE, before=24):
        return None
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    ok = area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
    return m.span() if ok else None


def ip_span(m: re.Match[str]) -> Span | None:
    """Addresses that can point at someone. IPv4: globally routable ones, not dotted quads that are
    versions or outline numbers; private ones (10/8, 172.16/12, 192.168/16, 100.64/10) only when the text
    calls them someone's IP ("my ip 192.168.0.12", "inet 10.41.21.72"), not a router's address in a how-to;
    loopback, link-local, documentation, multicast and reserved ranges never. IPv6: all but loopback,
    unspecified, documentation and multicast; link-local and unique-local ones only when the host part is
    more than a hand-numbered ``::1``."""
    try:
        addr = ipaddress.ip_address(m.group())
    except ValueError:
        return None
    if addr.version == 4:
        if any(addr in net for net in _PRIVATE_V4):
            return m.span() if _cue_near(m, _IP_CUE, before=16) else None
        keep = _is_outline_number(m) or not addr.is_global or addr.is_multicast or addr.is_reserved
        return None if keep else m.span()
    if addr.ipv4_mapped is not None:
        v4 = addr.ipv4_mapped
        return m.span() if v4.is_global and not v4.is_multicast else None
    if m.group().count(":") < 2 or any(addr in net for net in _NON_IDENTIFYING_V6):
        return None
    if any(addr in net for net in _LOCAL_V6) and int(addr) & 0xFFFF_FFFF_FFFF_FFFF <= 0xFFFF:
        return None
    return m.span()


def _is_outline_number(m: re.Match[str]) -> bool:
    """A version ("version 1.2.3.4"), a cross-reference ("Section 8.3.2.1(A)") or a small outline number
    heading a line before its title ("4.1.2.1 Skype grants"); real addresses rarely sit in those places."""
    text, start = m.string, m.start()
    if _NOT_IP_BEFORE.search(text, max(0, start - 12), start) or text.startswith("(", m.end()):
        return True
    line_end = text.find("\n", m.end())
    heads_line = text[text.rfind("\n", 0, start) + 1 : start].strip() == "" and \
        text[m.end() : len(text) if line_end < 0 else line_end].strip() != ""  # a heading has a title after it
    return heads_line and all(len(octet) <= 2 for octet in m.group().split("."))


def phone_span(m: re.Match[str]) -> Span | None:
    """Whether a digit-group shape is a phone number, and its exact span (an unmatched leading bracket
    stays in the text). Marked shapes count on their own: a leading + or 00 (international), a bracketed
    group, a trunk 0, North American 3-3-4, Brazilian "11 91234-5678", Chinese mobile 1[3-9]x. Any other run of 9
    to 15 digits (a bare 5551234567, a Polish 518 246 281) counts only next to a cue word, or, for a valid North
    American 10-digit number, alone on its line."""
    start, end = m.span()
    body = m.group()[: m.start("ext") - start] if m.group("ext") else m.group()
    if body.startswith("(") and ")" not in body:
        body, start = body[1:], start + 1
    groups = _GROUPS.findall(body)
    digits = "".join(groups)
    n = len(digits) - ("(0)" in body)
    if n < 8:
        return None
    if body[0] == "+" or body.startswith("(+"):
        return (start, end) if 8 <= n <= 15 else None
    if not 9 <= n <= 15 or len(digits) == 13 and digits[:3] in ("978", "979"):  # ISBN-13
        return None
    sizes = [len(g) for g in groups]
    marked = (
        (digits.startswith("00") and sizes[0] <= 5 and n >= 11)
        or (n <= 13 and not _is_number(groups, body) and (
            (len(groups) > 1 and digits[0] == "0" and digits[1] != "0" and sizes[0] <= 5 and "/" not in body)
            or _AREA_CODE.search(body) is not None
            or (len(groups) >= 3 and n in (10, 11) and sizes[-3:] == [3, 3, 4])
            or _BRAZIL.fullmatch(body) is not None
            or (n == 11 and digits[0] == "1" and digits[1] in "3456789" and sizes in ([11], [3, 4, 4], [3, 8]))
            or (sizes in ([10], [11]) and digits[0] == "0" and digits[1] != "0")
            or (sizes == [10] and _NANP.fullmatch(digits) is not None and _alone_on_line(m))
        ))
    )
    return (start, end) if marked or _cue_near(m, _PHONE_CUE) else None


def _alone_on_line(m: re.Match[str]) -> bool:
    """Nothing but spaces and closing punctuation shares the match's line: a contact list entry, not a
    number in a sentence or a table row."""
    text = m.string
    line_start = text.rfind("\n", 0, m.start()) + 1
    line_end = text.find("\n", m.end())
    return not text[line_start:m.start()].strip() and not text[m.end():len(text) if line_end < 0 else line_end] \
        .strip(" \t\r.,;")


_NANP = re.compile(r"[2-9][0-8][0-9][2-9][0-9]{6}")  # area code and exchange of a North American number
_BRAZIL = re.compile(r"[0-9]{2} [0-9]{4,5}-[0-9]{4}")  # 11 91234-5678 (not an account no. 40-7690-5189)
# One bracketed area code: 2-3 digits, or 3-5 with a trunk 0 ("(2010) 6(9) 1436" is a citation).
_AREA_CODE = re.compile(r"^[^(]*\((?:[0-9]{2,3}|0[0-9]{2,4})\)[^(]*$")


def _is_number(groups: list[str], body: str) -> bool:
    """A decimal number (3.14159265) or a thousands-grouped count (1 234 567, 1.234.567)."""
    seps = set(_GROUPS.split(body)[1:-1])
    if len(groups) == 2 and seps == {"."}:
        return True
    return len(groups) > 2 and len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]) and seps in ({" "}, {"."})
