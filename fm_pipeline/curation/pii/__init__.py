"""PII redaction with typed placeholders (``<EMAIL>``, ``<PHONE>``, ...).

Each detector is a regular expression that finds candidates plus a validator that rejects look-alikes
(Luhn and issuer prefixes for cards, mod-97 for IBANs, calendar dates for Korean RRNs, SSA rules for SSNs,
``ipaddress`` for IPs, digit counts and group shapes for phones), so dates, versions, prices and order
numbers survive. Detectors run in a fixed order, each on the text left by the previous ones: e-mails first
(their digits are not phones), then the validated numbers (IBAN, card, RRN, SSN, IP) before the loose phone
shapes that would otherwise swallow them. Bare digit runs (``5551234567``, ``123456789``) count only after a
word that names them ("phone", "SSN", "전화", "電話", ...).

Boundaries are about ASCII letters and digits, not any ``\\w``: ``010-1234-5678이고`` and
``090-1234-5678です`` are phones. Full-width and Arabic-Indic digits and full-width punctuation are folded to
ASCII one character for one (offsets do not move) before matching, and placeholders go into the original.

Most documents hold no PII, so one cheap pre-check (an ``@``, a run of nine digits, a dotted quad or a
hex-colon group) decides whether the detectors run at all.

`detectors` holds what each kind looks like (folding, the gate, the candidate patterns, and the ordered scan of
one line), `validate` what makes a candidate count (checksums, calendars, cue words), and `redact` the calls
the pipeline makes: `pii_spans`, `redact_pii`, `find_pii`.
"""
