"""The one error every text converter raises (conversations, structured data, papers): readers turn it into
a quarantine record of its `kind`, so a malformed input is accounted for, never a crash."""

from __future__ import annotations


class ConversionError(ValueError):
    """Input that cannot become a document text; `kind` is the quarantine kind (snake_case)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
