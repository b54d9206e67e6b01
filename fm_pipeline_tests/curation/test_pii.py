"""PII redaction: every supported format is replaced by its placeholder, and look-alikes are left alone."""

from __future__ import annotations

import json

import pytest

from fm_pipeline.curation.pii import find_pii, redact_pii


def test_email_and_phone_in_a_sentence() -> None:
    text = "Mail me at jane.doe@example.com or call +1 415 555 0132."
    assert redact_pii(text) == ("Mail me at <EMAIL> or call <PHONE>.", {"EMAIL": 1, "PHONE": 1})


@pytest.mark.parametrize(
    "phone",
    [
        "+1 415 555 0132",
        "(415) 555-0132",
        "415-555-0132",
        "1-800-555-0199",
        "+1 (415) 555-0132",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "020 7946 0958",
        "+82 10-1234-5678",
        "010-1234-5678",
        "02-123-4567",
        "+49 30 123456",
        "+33 1 23 45 67 89",
        "+91 98765 43210",
        "+86 138 0013 8000",
        "090-1234-5678",
    ],
)
def test_phone_formats(phone: str) -> None:
    assert redact_pii(f"Tel: {phone}, ask for Kim.") == ("Tel: <PHONE>, ask for Kim.", {"PHONE": 1})


def test_public_ip_addresses_are_redacted() -> None:
    text = "Resolvers 8.8.4.4 and 2001:4860:4860::8888 answered."
    assert redact_pii(text) == ("Resolvers <IP_ADDRESS> and <IP_ADDRESS> answered.", {"IP_ADDRESS": 2})


@pytest.mark.parametrize(
    "text",
    [
        "The router at 192.168.1.10 forwards to 10.0.0.5 and 172.16.4.2.",
        "Bind to 127.0.0.1 or 0.0.0.0, not 169.254.10.20.",
        "Docs use 192.0.2.1, 2001:db8::1, fe80::1 and ::1.",
        "Upgrade to v1.2.3.4 or version 1.2.3.4 today.",
        "See Section 8.3.2.1 and Section 4.2.3.2(A).\n4.1.2.1 Skype hereby grants a licence.",
    ],
)
def test_private_addresses_versions_and_outline_numbers_are_kept(text: str) -> None:
    assert redact_pii(text) == (text, {})


def test_credit_cards_need_a_valid_luhn_checksum() -> None:
    text = "Cards 4111 1111 1111 1111, 5500-0000-0000-0004 and 378282246310005; order 4111 1111 1111 1112."
    expected = "Cards <CREDIT_CARD>, <CREDIT_CARD> and <CREDIT_CARD>; order 4111 1111 1111 1112."
    assert redact_pii(text) == (expected, {"CREDIT_CARD": 3})


def test_iban_with_and_without_spaces_needs_mod97() -> None:
    text = "Pay DE89 3704 0044 0532 0130 00 or GB82 WEST 1234 5698 7654 32 or DE89370400440532013000."
    assert redact_pii(text) == ("Pay <IBAN> or <IBAN> or <IBAN>.", {"IBAN": 3})
    wrong_check = "Pay DE88 3704 0044 0532 0130 00 now."
    assert redact_pii(wrong_check) == (wrong_check, {})


def test_us_ssn_follows_ssa_rules() -> None:
    text = "SSN 123-45-6789; invalid 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000."
    expected = "SSN <US_SSN>; invalid 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000."
    assert redact_pii(text) == (expected, {"US_SSN": 1})


def test_korean_rrn_needs_a_real_date_and_gender_digit() -> None:
    text = "주민번호 900101-1234567, 010229-3234567 (no 29 Feb 2001), 901301-1234567 (month 13), 900101-9234567."
    expected = "주민번호 <KR_RRN>, 010229-3234567 (no 29 Feb 2001), 901301-1234567 (month 13), 900101-9234567."
    assert redact_pii(text) == (expected, {"KR_RRN": 1})
    assert redact_pii("born 000229-3234567")[0] == "born <KR_RRN>"  # 2000 was a leap year


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.10.12 was released on 2024-03-15.",
        "Published 15/03/2024 and updated 01.02.2024 at 10:30:00.",
        "Now $1,299.99 (was $1,499.00), 1,234,567 units sold.",
        "Order 1234567890123456 shipped; ISBN 978-3-16-148410-0.",
        "Results: p < 0.001, n = 12345678, 95% CI 1.2-3.4, years 2015-2016.",
    ],
)
def test_dates_versions_prices_and_order_numbers_are_kept(text: str) -> None:
    assert redact_pii(text) == (text, {})


def test_counts_every_type_exactly() -> None:
    text = (
        "a@b.org, c.d@e.co.uk; +44 20 7946 0958; 010-1234-5678; 8.8.8.8; 4111111111111111; "
        "DE89370400440532013000; 123-45-6789; 900101-1234567\nNothing here."
    )
    redacted, counts = redact_pii(text)
    assert redacted == (
        "<EMAIL>, <EMAIL>; <PHONE>; <PHONE>; <IP_ADDRESS>; <CREDIT_CARD>; <IBAN>; <US_SSN>; <KR_RRN>\nNothing here."
    )
    assert counts == {
        "EMAIL": 2,
        "PHONE": 2,
        "IP_ADDRESS": 1,
        "CREDIT_CARD": 1,
        "IBAN": 1,
        "US_SSN": 1,
        "KR_RRN": 1,
    }


def test_find_pii_reports_what_redact_replaces() -> None:
    text = "Write to ops@example.net from 8.8.4.4; keep 192.168.0.1."
    assert find_pii(text) == [("EMAIL", "ops@example.net"), ("IP_ADDRESS", "8.8.4.4")]
    assert find_pii(redact_pii(text)[0]) == []
    assert find_pii("Plain prose with a year, 1999, and no identifiers.") == []


def test_clean_text_is_returned_unchanged_and_identical() -> None:
    text = "Plain prose.\n" * 1000
    redacted, counts = redact_pii(text)
    assert redacted is text
    assert counts == {}


def test_no_false_positives_on_public_domain_text(shared_corpora) -> None:
    """PubMed abstracts carry doses, p-values and gene names but no PII; contracts carry real phones and
    e-mails, but their section numbers (4.1.2.1) and amounts are not addresses, cards or IDs."""
    for line in (shared_corpora / "domain" / "biomedical.jsonl").open(encoding="utf-8"):
        text = json.loads(line)["text"]
        assert find_pii(text) == [], text[:200]
    for line in (shared_corpora / "domain" / "legal.jsonl").open(encoding="utf-8"):
        kinds = {kind for kind, _ in find_pii(json.loads(line)["text"])}
        assert kinds <= {"EMAIL", "PHONE"}
