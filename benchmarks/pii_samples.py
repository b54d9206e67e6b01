"""A seeded labelled set for measuring PII detection: clean carrier text with generated values inserted.

Values come in the formats that generators of synthetic PII (Faker, presidio-research) and real documents
use: phones of 36 countries in international, ``00`` and national notation (North American with
extensions, brackets, dots), cards of every major network with their spacing, IBANs of many countries with
a valid checksum, spaced or not, SSNs, public IPv4 and IPv6 in all its notations, Korean RRNs, e-mails
with plus-addressing and sub-domains. Each value sits in a sentence in one of nine languages, sometimes
next to a particle (``이고``, ``です``), in brackets, in full-width or Arabic-Indic digits.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tools.sample_corpus import SEEDS

_SAMPLE_DOMAINS = Path(__file__).resolve().parents[1] / "fm_pipeline" / "sample_data" / "domain"

TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "KR_RRN")

# Country calling code -> national significant number groups ('#' a digit); national trunk prefix.
_PHONE_PLANS: dict[str, tuple[str, str]] = {
    "1": ("### ### ####", "1"), "44": ("20 #### ####", "0"), "49": ("30 #######", "0"),
    "33": ("6 ## ## ## ##", "0"), "34": ("6## ### ###", ""), "39": ("3## ### ####", ""),
    "31": ("6 ########", "0"), "32": ("4## ## ## ##", "0"), "41": ("7# ### ## ##", "0"),
    "43": ("664 #######", "0"), "45": ("## ## ## ##", ""), "46": ("7# ### ## ##", "0"),
    "47": ("4## ## ###", ""), "48": ("5## ### ###", ""), "351": ("9## ### ###", ""),
    "353": ("8# ### ####", "0"), "358": ("4# ### ####", "0"), "30": ("69# ### ####", ""),
    "7": ("9## ###-##-##", "8"), "380": ("6# ### ## ##", "0"), "90": ("5## ### ## ##", "0"),
    "82": ("10-####-####", "0"), "81": ("90-####-####", "0"), "86": ("138 #### ####", "0"),
    "852": ("9### ####", ""), "886": ("9## ### ###", "0"), "91": ("9#### #####", "0"),
    "61": ("4## ### ###", "0"), "64": ("21 ### ####", "0"), "65": ("9### ####", ""),
    "55": ("11 9####-####", "0"), "52": ("55 #### ####", ""), "54": ("9 11 ####-####", "0"),
    "27": ("82 ### ####", "0"), "234": ("803 ### ####", "0"), "20": ("10 #### ####", "0"),
    "971": ("50 ### ####", "0"), "966": ("5# ### ####", "0"), "972": ("5#-###-####", "0"),
    "62": ("812-####-####", "0"), "63": ("917 ### ####", "0"), "66": ("8# ### ####", "0"),
    "84": ("9# ### ## ##", "0"),
}
_NANP_FORMATS = (
    "(###) ###-####", "(###)###-####", "###-###-####", "###.###.####", "+1-###-###-####", "001-###-###-####",
    "###-###-####x###", "(###)###-####x####", "###.###.####x#####", "+1-###-###-####x###", "1-###-###-####",
    "+1 (###) ###-####", "+1 ### ### ####", "+1##########", "### ### ####", "###-###-#### ext. ###",
)
# Brand: (prefixes, lengths, groupings by length).
_CARDS = {
    "visa": (("4",), (13, 16, 19)), "mastercard": (("51", "53", "55", "2221", "2720"), (16,)),
    "amex": (("34", "37"), (15,)), "discover": (("6011", "65", "644"), (16,)),
    "jcb": (("3528", "3589"), (16,)), "diners": (("300", "305", "36", "38"), (14,)),
}
_CARD_GROUPS = {13: (4, 4, 5), 14: (4, 6, 4), 15: (4, 6, 5), 16: (4, 4, 4, 4), 19: (4, 4, 4, 4, 3)}
_IBAN_BBAN = {  # country: BBAN shape ('9' digit, 'A' capital, 'X' either)
    "DE": "999999999999999999", "GB": "AAAA99999999999999", "FR": "9999999999XXXXXXXXXXX99",
    "ES": "99999999999999999999", "IT": "A9999999999XXXXXXXXXXXX", "NL": "AAAA9999999999",
    "BE": "999999999999", "CH": "99999XXXXXXXXXXXX", "AT": "9999999999999999", "PL": "999999999999999999999999",
    "PT": "999999999999999999999", "SE": "99999999999999999999", "NO": "99999999999", "DK": "99999999999999",
    "FI": "99999999999999", "IE": "AAAA99999999999999", "GR": "9999999XXXXXXXXXXXXXXXX", "TR": "99999X9999999999999999",
    "SA": "99XXXXXXXXXXXXXXXXXX", "AE": "9999999999999999999", "BR": "99999999999999999999999AX",
    "KZ": "999XXXXXXXXXXXXX", "LU": "999XXXXXXXXXXXXX", "RO": "AAAAXXXXXXXXXXXXXXXX",
    "MT": "AAAA99999XXXXXXXXXXXXXXXXXX",
}
_NAMES = ("anna", "jae.won", "li.wei", "maria", "omar", "priya", "yuki", "lukas", "chloe", "diego", "fatima", "noah")
_DOMAINS = ("example.com", "mail.example.org", "uni-heidelberg.de", "cs.stanford.edu", "gmail.com", "naver.com",
            "yahoo.co.jp", "qq.com", "correo.example.es", "example.fr", "lists.example.co.uk", "hotmail.com")

# Per language: sentences with a cue word per type, and neutral ones ({v} is the value).
_CUES = {
    "en": {"PHONE": "Call me at {v} after six.", "EMAIL": "Write to {v} for details.",
           "CREDIT_CARD": "The card number is {v}, expiring 09/27.", "IBAN": "Please transfer to IBAN {v}.",
           "US_SSN": "Her SSN is {v}.", "IP_ADDRESS": "The login came from IP {v} last night.",
           "KR_RRN": "Resident registration number: {v}."},
    "ko": {"PHONE": "연락처는 {v}이고 평일에만 받습니다.", "EMAIL": "문의는 {v}로 보내 주세요.",
           "CREDIT_CARD": "카드 번호 {v}로 결제했습니다.", "IBAN": "계좌 {v}으로 송금해 주세요.",
           "US_SSN": "사회보장번호는 {v}입니다.", "IP_ADDRESS": "접속 IP는 {v}였습니다.",
           "KR_RRN": "주민등록번호 {v}을 입력하세요."},
    "ja": {"PHONE": "電話番号は{v}です。", "EMAIL": "メールは{v}までお願いします。",
           "CREDIT_CARD": "カード番号は{v}です。", "IBAN": "振込先IBANは{v}です。", "US_SSN": "SSNは{v}です。",
           "IP_ADDRESS": "アクセス元IPアドレスは{v}でした。", "KR_RRN": "住民登録番号は{v}です。"},
    "zh": {"PHONE": "请拨打{v}联系我们。", "EMAIL": "请发邮件至{v}。", "CREDIT_CARD": "信用卡号为{v}。",
           "IBAN": "请汇款至{v}。", "US_SSN": "社会保障号码SSN：{v}。", "IP_ADDRESS": "来源IP地址{v}。",
           "KR_RRN": "居民登记号码RRN：{v}。"},
    "de": {"PHONE": "Telefon: {v} (werktags).", "EMAIL": "Schreiben Sie an {v}.", "CREDIT_CARD": "Kartennummer {v}.",
           "IBAN": "Bitte überweisen Sie auf {v}.", "US_SSN": "Die SSN lautet {v}.",
           "IP_ADDRESS": "Zugriff von IP {v} um 03:12 Uhr.", "KR_RRN": "RRN {v}."},
    "fr": {"PHONE": "Appelez le {v} avant midi.", "EMAIL": "Écrivez-nous à {v}.",
           "CREDIT_CARD": "Carte bancaire n° {v}.", "IBAN": "Virement sur l'IBAN {v}.",
           "US_SSN": "Son SSN est {v}.", "IP_ADDRESS": "Connexion depuis l'adresse IP {v}.", "KR_RRN": "RRN : {v}."},
    "es": {"PHONE": "Llame al {v} de lunes a viernes.", "EMAIL": "Escríbanos a {v}.",
           "CREDIT_CARD": "Tarjeta {v}.", "IBAN": "Transfiera a la cuenta {v}.", "US_SSN": "Su SSN es {v}.",
           "IP_ADDRESS": "Acceso desde la IP {v}.", "KR_RRN": "RRN: {v}."},
    "ar": {"PHONE": "رقم الهاتف {v} متاح مساء.", "EMAIL": "راسلنا على {v} شكرا.",
           "CREDIT_CARD": "رقم البطاقة {v} صالح.", "IBAN": "حول المبلغ إلى {v} اليوم.",
           "US_SSN": "رقم SSN هو {v}.", "IP_ADDRESS": "عنوان IP هو {v}.", "KR_RRN": "رقم RRN هو {v}."},
    "hi": {"PHONE": "फ़ोन नंबर {v} है।", "EMAIL": "ईमेल {v} पर भेजें।", "CREDIT_CARD": "कार्ड नंबर {v} है।",
           "IBAN": "खाता {v} में भेजें।", "US_SSN": "SSN {v} है।", "IP_ADDRESS": "आईपी पता {v} था।",
           "KR_RRN": "RRN {v} है।"},
}
_NEUTRAL = ("({v})", "— {v} —", "{v}", "→ {v}; ", "「{v}」", "[{v}]")
_FULL_WIDTH = str.maketrans("0123456789-()+", "０１２３４５６７８９－（）＋")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@dataclass(frozen=True)
class Labelled:
    text: str
    spans: tuple[tuple[int, int, str], ...]
    """(start, end, type) of every inserted value."""


def _digits(rng: random.Random, shape: str) -> str:
    return "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in shape)


def _luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    doubled = sum((int(c) * 2 - 9 if int(c) > 4 else int(c) * 2) if i % 2 == 0 else int(c)
                  for i, c in enumerate(reversed(body)))
    return body + str(-doubled % 10)


def phone(rng: random.Random) -> str:
    if rng.random() < 0.3:
        area = f"{rng.randrange(2, 10)}{rng.randrange(10)}{rng.randrange(10)}"
        return _digits(rng, rng.choice(_NANP_FORMATS).replace("###", area, 1))
    cc, (plan, trunk) = rng.choice(sorted(_PHONE_PLANS.items()))
    national = _digits(rng, plan)
    style = rng.randrange(6)
    if style == 0:
        return f"+{cc} {national}"
    if style == 1:
        return f"+{cc}-{national.replace(' ', '-')}"
    if style == 2:
        return "+" + cc + national.replace(" ", "").replace("-", "")
    if style == 3:
        return f"00{cc} {national}"
    if style == 4 and trunk == "0":
        first, _, rest = national.partition(" ") if " " in national else national.partition("-")
        return f"+{cc} (0){first} {rest}" if rng.random() < 0.5 else f"(0{first}) {rest}"
    return f"{trunk}{national}" if trunk == "0" else f"+{cc} {national}"


def card(rng: random.Random) -> str:
    prefixes, lengths = _CARDS[rng.choice(sorted(_CARDS))]
    number = _luhn_complete(rng, rng.choice(prefixes), rng.choice(lengths))
    sep = rng.choice(("", " ", "-", " "))
    if not sep:
        return number
    groups, pos = [], 0
    for size in _CARD_GROUPS[len(number)]:
        groups.append(number[pos : pos + size])
        pos += size
    return sep.join(groups)


def iban(rng: random.Random) -> str:
    country, shape = rng.choice(sorted(_IBAN_BBAN.items()))
    pools = {"9": string.digits, "A": string.ascii_uppercase, "X": string.digits + string.ascii_uppercase}
    bban = "".join(rng.choice(pools[ch]) for ch in shape)
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    number = f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
    sep = rng.choice(("-", "-", "-", " ", ""))
    return sep.join((number[:3], number[3:5], number[5:]))


def ip_address(rng: random.Random) -> str:
    kind = rng.randrange(7)
    if kind == 6:  # a private address, which counts when a sentence names it as an IP
        return str(ipaddress.IPv4Address(rng.choice((0x0A000000, 0xC0A80000)) | rng.getrandbits(16)))
    if kind < 3:
        while True:
            addr = ipaddress.IPv4Address(rng.getrandbits(32))
            if addr.is_global and not addr.is_multicast and not addr.is_reserved:
                return str(addr)
    if kind == 3:
        addr6 = ipaddress.IPv6Address((0x2001 << 112) | (rng.getrandbits(16) << 96) | rng.getrandbits(32))
        return str(addr6)  # compressed: 2001:4a3f::1c:2b
    if kind == 4:
        full = ipaddress.IPv6Address((rng.randrange(0x2400, 0x2C00) << 112) | rng.getrandbits(112))
        return full.exploded if rng.random() < 0.5 else str(full)
    mac = rng.getrandbits(48)
    eui = ((mac >> 24) << 40) | (0xFFFE << 24) | (mac & 0xFFFFFF)
    return str(ipaddress.IPv6Address((0xFE80 << 112) | eui)) if rng.random() < 0.5 else \
        f"::ffff:{ipaddress.IPv4Address(rng.randrange(0x01000000, 0x09000000))}"


def kr_rrn(rng: random.Random) -> str:
    year = rng.randrange(1950, 2020)
    gender = rng.choice("12" if year < 2000 else "34")
    return f"{year % 100:02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}-{gender}{_digits(rng, '######')}"


def email(rng: random.Random) -> str:
    local = rng.choice(_NAMES) + rng.choice(("", str(rng.randrange(100)), "+news", "_" + rng.choice(_NAMES)))
    return f"{local}@{rng.choice(_DOMAINS)}"


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": email, "PHONE": phone, "CREDIT_CARD": card, "IBAN": iban, "US_SSN": ssn,
    "IP_ADDRESS": ip_address, "KR_RRN": kr_rrn,
}


def _sentence(rng: random.Random, kind: str, value: str) -> tuple[str, int, str]:
    """A sentence carrying the value; returns it, the value's offset and the value as written."""
    lang = rng.choice(sorted(_CUES))
    private = kind == "IP_ADDRESS" and ipaddress.ip_address(value).is_private
    bare = kind in ("US_SSN", "KR_RRN") and "-" not in value or kind == "PHONE" and value.isdigit() or private
    template = _CUES[lang][kind] if bare or rng.random() < 0.7 else rng.choice(_NEUTRAL)
    if kind == "PHONE" and lang in ("ja", "zh") and rng.random() < 0.3:
        value = value.translate(_FULL_WIDTH)
    elif kind == "PHONE" and lang == "ar" and rng.random() < 0.3:
        value = value.translate(_ARABIC_INDIC)
    before = template.split("{v}")[0]
    return template.replace("{v}", value), len(before), value


def labelled_set(carriers: Iterable[str], seed: int = 0, per_doc: int = 3) -> list[Labelled]:
    """Each carrier text with `per_doc` PII sentences inserted between its lines, types in rotation."""
    rng = random.Random(seed)
    docs: list[Labelled] = []
    counter = 0
    for carrier in carriers:
        lines = carrier.split("\n")
        inserts: dict[int, list[tuple[str, int, str, str]]] = {}
        for _ in range(per_doc):
            kind = TYPES[counter % len(TYPES)]
            counter += 1
            sentence, offset, value = _sentence(rng, kind, GENERATORS[kind](rng))
            inserts.setdefault(rng.randrange(len(lines) + 1), []).append((sentence, offset, value, kind))
        text, spans = "", []
        for i in range(len(lines) + 1):
            for sentence, offset, value, kind in inserts.get(i, []):
                joiner = rng.choice((" ", "\n"))
                text += joiner
                spans.append((len(text) + offset, len(text) + offset + len(value), kind))
                text += sentence + joiner
            if i < len(lines):
                text += lines[i] + ("\n" if i < len(lines) - 1 else "")
        docs.append(Labelled(text, tuple(spans)))
    return docs


def score(docs: list[Labelled], detect: Callable[[str], list[tuple[int, int, str]]]) -> dict[str, object]:
    """Recall per type (a value counts when one detection of its type covers all of it), precision (a
    detection counts when it overlaps a value of its type) and the detections that matched nothing."""
    found = dict.fromkeys(TYPES, 0)
    total = dict.fromkeys(TYPES, 0)
    true_pos = 0
    detections = 0
    false_pos: list[tuple[str, str]] = []
    for doc in docs:
        hits = detect(doc.text)
        detections += len(hits)
        for start, end, kind in doc.spans:
            total[kind] += 1
            found[kind] += any(k == kind and a <= start and end <= b for a, b, k in hits)
        for a, b, k in hits:
            if any(k == kind and a < end and start < b for start, end, kind in doc.spans):
                true_pos += 1
            else:
                false_pos.append((k, doc.text[a:b]))
    return {
        "values": sum(total.values()),
        "recall": round(sum(found.values()) / max(1, sum(total.values())), 4),
        "precision": round(true_pos / max(1, detections), 4),
        "recall_by_type": {k: round(found[k] / total[k], 4) for k in TYPES if total[k]},
        "false_positives": false_pos,
    }


def shipped_carriers() -> list[str]:
    """Clean text shipped in the repo, in ten languages: the sample web pages (bodies only, without the
    pages planted with PII) and the sample domain corpus."""
    pages = sorted((SEEDS / "common_crawl" / "pages").glob("*.txt"))
    texts = [p.read_text(encoding="utf-8").split("\n\n", 1)[1] for p in pages if not p.name.startswith("pii-")]
    for path in sorted(_SAMPLE_DOMAINS.glob("*/*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    return texts


# Words that mark real contact details in otherwise clean text (contracts list notice addresses, papers
# their corresponding author): a phone within 80 characters of one is not a false positive.
_CONTACT = re.compile(r"(?i)phone|tel\b|tel\.|fax|facsimile|telecopy|e-?mail|@|contact|call|attention|attn")


def is_contact_detail(text: str, start: int, end: int, kind: str) -> bool:
    """Real contact details in otherwise clean text: every e-mail address (it is one, whoever wrote it) and
    a phone next to a contact word."""
    near = text[max(0, start - 80) : start] + text[end : end + 80]
    return kind == "EMAIL" or kind == "PHONE" and _CONTACT.search(near) is not None


def false_positives(texts: Iterable[str], detect: Callable[[str], list[tuple[int, int, str]]]) -> list[str]:
    """Detections in clean text that are not real contact details, as "TYPE: string"."""
    return [f"{kind}: {text[start:end]}" for text in texts for start, end, kind in detect(text)
            if not is_contact_detail(text, start, end, kind)]
