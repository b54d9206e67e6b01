"""CUAD contract clauses labelled by their section heading.

A clause starts at a section heading that names a clause type: a section number (`12.`, `8.3`, optionally after
`Section`/`Article`) or a run of at least two spaces, then one of the headings in `HEADINGS`, then `.` or `:`. Its
text is what follows the heading up to the next numbered section start (a run of two or more spaces, a number such
as `9.` or `12.4`, a capital letter), cut at the last sentence end within `MAX_CHARS`. The heading is dropped, so
a model must tell the clause type from its wording."""

from __future__ import annotations

import re

HEADINGS: dict[str, str] = {
    "governing law": "governing_law", "applicable law": "governing_law", "choice of law": "governing_law",
    "termination": "termination",
    "confidentiality": "confidentiality", "confidential information": "confidentiality",
    "indemnification": "indemnification", "indemnity": "indemnification",
    "assignment": "assignment",
    "notices": "notices", "notice": "notices",
    "severability": "severability",
    "entire agreement": "entire_agreement",
    "counterparts": "counterparts",
    "force majeure": "force_majeure",
    "arbitration": "dispute_resolution", "dispute resolution": "dispute_resolution",
}
MIN_CHARS, MAX_CHARS = 80, 700
_NAMES = "|".join(sorted((re.escape(h) for h in HEADINGS), key=len, reverse=True))
HEADING = re.compile(r"(?:^|(?<=\s))(?:(?:Section|SECTION|Article|ARTICLE)\s+)?"
                     r"(?:\d{1,2}(?:\.\d{1,2})*\.?\s+|(?<=\s\s))"
                     rf"({_NAMES})\s*[.:]\s+", re.IGNORECASE)
NEXT_SECTION = re.compile(r"\s{2,}(?:(?:Section|SECTION|Article|ARTICLE)\s+)?\d{1,2}(?:\.\d{1,2})*\.?\s+[A-Z(]")
SENTENCE_END = re.compile(r"[.;](?=\s|$)")


def clauses(text: str) -> list[tuple[str, str]]:
    """(label, clause text) for every clause heading in one contract, in order; clauses shorter than
    `MIN_CHARS` are left out."""
    out = []
    for m in HEADING.finditer(text):
        body = text[m.end():]
        stop = NEXT_SECTION.search(body)
        body = body[: stop.start() if stop else len(body)]
        if len(body) > MAX_CHARS:
            ends = [e.end() for e in SENTENCE_END.finditer(body, 0, MAX_CHARS)]
            body = body[: ends[-1]] if ends else body[:MAX_CHARS]
        body = re.sub(r"\s+", " ", body).strip()
        if len(body) >= MIN_CHARS:
            out.append((HEADINGS[m.group(1).lower()], body))
    return out
