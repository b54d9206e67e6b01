"""Text normalization applied to every document before any rule looks at it, so filters, dedup and
language ID all see the same canonical text: mojibake repaired, Unicode NFC, no invisible control
characters, tidy whitespace.

ftfy is accurate but slow (1-3 MB/s, it walks the text line by line), so it only runs on the few
documents that can need it: non-ASCII text that looks like mojibake or holds C1 controls or surrogates.
Everything else takes a few regular expressions. Quotes, ligatures and full-width characters are left
as written: rewriting them is not repair, and it would change text that readers and tokenizers expect.
"""

from __future__ import annotations

import re
import unicodedata

import ftfy
from ftfy import chardata
from ftfy.badness import is_bad

_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,  # "&amp;amp;" -> "&amp;" -> "&" would break idempotence
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    normalization="NFC",
    explain=False,
)
# Line breaks other than LF: CRLF, CR, vertical tab, form feed, Unicode line/paragraph separators.
# NEL (U+0085) is left to ftfy, which reads it as the Windows-1252 ellipsis it nearly always is.
_LINE_BREAK_CHARS = "\r\x0b\x0c\u2028\u2029"
_LINE_BREAK_RE = re.compile("\r\n?|[\x0b\x0c\u2028\u2029]")
_TERMINAL_ESCAPE_RE = re.compile(r"\x1b\[[\d;]*[A-Za-z]")


def _mojibake_alphabet() -> str:
    """Every character UTF-8 mojibake can be made of: the upper halves of the single-byte encodings ftfy
    undoes, the replacement character, and surrogates (which ftfy also repairs)."""
    chars = {"\ufffd"}
    for encoding in chardata.CHARMAP_ENCODINGS:
        chars.update(bytes(range(0x80, 0x100)).decode(encoding, errors="ignore"))
    return "".join(re.escape(ch) for ch in sorted(chars)) + "\ud800-\udfff"


_ALPHABET = _mojibake_alphabet()
# Stretches of mojibake-capable characters, short gaps bridged. ftfy's mojibake patterns need such
# characters and look at most 2 characters beyond them, so checking the stretches (with that margin) is
# as good as checking the whole text, and far faster on ASCII-heavy or CJK, Indic, Arabic... text.
_SUSPECT_RE = re.compile(f"[{_ALPHABET}]+(?:[^{_ALPHABET}]{{1,4}}[{_ALPHABET}]+)*")
# Never in intended text: C1 controls and surrogates. ftfy must see them before anything is removed.
_FTFY_CLUE_RE = re.compile("[\x80-\x9f\ud800-\udfff]")
# Removed outright: C0 controls but tab and newline, DEL, C1 controls, soft hyphen, zero-width space,
# word joiner and invisible operators, deprecated format characters, interlinear annotation marks,
# the object replacement character and byte-order marks. Joiners (U+200C/D) and direction marks
# stay: Persian, Indic scripts and emoji need them.
_JUNK_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\xad\u200b\u2060-\u2064\u206a-\u206f\ufeff\ufff9-\ufffc]+")
_SPACE_RUN_RE = re.compile("  +")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Canonical form of `text`: repaired, NFC, without control characters, whitespace tidied.

    Idempotent: normalize_text(normalize_text(x)) == normalize_text(x).
    """
    if any(ch in text for ch in _LINE_BREAK_CHARS):
        text = _LINE_BREAK_RE.sub("\n", text)
    if "\x1b" in text:
        text = _TERMINAL_ESCAPE_RE.sub("", text)
    repair = _needs_ftfy(text)
    if repair:  # before cleaning, which would take soft hyphens and NBSPs out of mojibake
        text = ftfy.fix_text(text, _FTFY_CONFIG)
    cleaned = _clean(text)
    if not repair and cleaned == text:
        return text  # unchanged, so the check above still holds: skip the second (costly) look for mojibake
    text = cleaned
    # Cleaning can bring the halves of a mojibake sequence together (junk removed from between them),
    # so repair and clean again until nothing changes; ftfy converges in a round or two.
    for _ in range(4):
        if not _needs_ftfy(text):
            break
        repaired = _clean(ftfy.fix_text(text, _FTFY_CONFIG))
        if repaired == text:
            break
        text = repaired
    return text


def _needs_ftfy(text: str) -> bool:
    """Whether ftfy could change the text: C1 controls, surrogates, or what looks like mojibake."""
    if text.isascii():
        return False
    suspect = "\n".join(text[max(0, m.start() - 2) : m.end() + 2] for m in _SUSPECT_RE.finditer(text))
    return bool(suspect) and (_FTFY_CLUE_RE.search(suspect) is not None or is_bad(suspect))


def _clean(text: str) -> str:
    text = _JUNK_RE.sub("", text)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return _tidy_whitespace(text)


def _tidy_whitespace(text: str) -> str:
    """Trailing whitespace stripped per line, runs of spaces inside a line collapsed (indentation kept,
    for code), at most one blank line in a row, no leading or trailing blank space."""
    if "  " in text:
        text = _SPACE_RUN_RE.sub(lambda m: _collapse_spaces(text, m), text)
    text = "\n".join(map(str.rstrip, text.split("\n")))
    if "\n\n\n" in text:
        text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip()


def _collapse_spaces(text: str, match: re.Match[str]) -> str:
    start = match.start()
    return match.group() if start == 0 or text[start - 1].isspace() else " "
