"""The independent PII detector behind `no_pii_in_kept`: it sees what the redactor misses, and stays silent
on redacted text (placeholders included) and on clean text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.pii_samples import shipped_carriers
from fm_pipeline.curation.pii import detectors
from fm_pipeline.curation.pii.redact import redact_pii
from fm_pipeline.curation.pii_audit import audit_pii, scan_shards
from fm_pipeline_tests.curation.test_filter_stage import rows, run

ALL_TYPES = (
    "Call +1 415 555 0132 or mail jane@example.com; card 4111 1111 1111 1111; IBAN DE89 3704 0044 0532 0130 00; "
    "SSN 123-45-6789; RRN 900101-1234568; from 8.8.8.8 and 2001:4860:4860::8888."
)

_CONTACT_PAGE = "urn:uuid:a07185d0-a2c2-52d2-a262-e0a7eb165345"  # pii-contact-page, read from WARC
PHONES_LEFT_WITHOUT_PHONE_RULE = [
    ("pii-conference-speakers", "PHONE", "+44 20 7946 0958"),
    ("pii-hr-onboarding-ssn", "PHONE", "+1 415 555 0132"),
    ("pii-ko-shop-contact", "PHONE", "+82 10-1234-5678"),
    ("pii-ko-shop-contact", "PHONE", "010-1234-5678"),
    ("pii-payment-support", "PHONE", "+1 415 555 0132"),
    (_CONTACT_PAGE, "PHONE", "+1 415 555 0132"),
    (_CONTACT_PAGE, "PHONE", "+44 20 7946 0958"),
]
"""What the independent detector finds in the sample's kept common_crawl text when the redactor's phone rule
is switched off."""


def test_sees_every_type() -> None:
    assert sorted(audit_pii(ALL_TYPES)) == [
        ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("EMAIL", "jane@example.com"),
        ("IBAN", "DE89 3704 0044 0532 0130 00"),
        ("IP_ADDRESS", "2001:4860:4860::8888"),
        ("IP_ADDRESS", "8.8.8.8"),
        ("KR_RRN", "900101-1234568"),
        ("PHONE", "+1 415 555 0132"),
        ("US_SSN", "123-45-6789"),
    ]


def test_silent_on_placeholders_and_look_alikes() -> None:
    redacted = redact_pii(ALL_TYPES)[0]
    assert redacted.count("<") == 8
    assert audit_pii(redacted) == []
    look_alikes = ("Python 3.10.12, v1.2.3.4, 192.168.1.10, 2001:db8::1, order 1234567890123456, "
                   "card 4111 1111 1111 1112, ISBN 978-3-16-148410-0, pages 1092-1102, 2024-03-15 10:30:00.")
    assert audit_pii(look_alikes) == []


def test_sees_a_phone_the_redactor_cannot_see() -> None:
    """Thin spaces between the groups: the redactor's fold table does not know U+2009, NFKC does."""
    text = "Tel +33\u20091\u200923\u200945\u200967\u200989, ask for Kim."
    assert redact_pii(text) == (text, {})
    assert audit_pii(text) == [("PHONE", "+33 1 23 45 67 89")]


def test_no_pii_in_kept_fails_when_the_redactor_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       fm_home: Path) -> None:
    """The filter stage on the sample corpus with the redactor's phone rule switched off: the check's
    detector reports every phone number left in the kept documents."""
    monkeypatch.setattr(detectors, "_DETECTORS", tuple(d for d in detectors._DETECTORS if d.kind != "PHONE"))
    _, out = run(tmp_path, "common_crawl")
    leaks = scan_shards(sorted((out / "kept").glob("*.parquet")))
    assert sorted((leak["id"], leak["type"], leak["match"]) for leak in leaks) == PHONES_LEFT_WITHOUT_PHONE_RULE
    assert "<PHONE>" not in rows(out / "kept")["pii-ko-shop-contact"]["text"]


def test_silent_on_the_shipped_clean_text() -> None:
    assert [found for text in shipped_carriers() for found in audit_pii(text)] == []


def test_silent_on_clean_and_redacted_shared_corpora(shared_corpora: Path) -> None:
    """UDHR and PubMed hold no PII; SciCite and CUAD hold real contact details, which the redactor removes."""
    for rel in ("multilingual/udhr.jsonl", "domain/biomedical.jsonl", "domain/scientific.jsonl",
                "domain/legal.jsonl"):
        for line in (shared_corpora / rel).open(encoding="utf-8"):
            text = json.loads(line)["text"]
            if rel.startswith(("multilingual", "domain/bio")):
                assert audit_pii(text) == [], text[:200]
            assert audit_pii(redact_pii(text)[0]) == [], text[:200]
