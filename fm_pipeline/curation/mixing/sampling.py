"""Deterministic draws: how many training copies a document gets, and the order train is written in.

Every choice that looks random (the split key, the copies, the shuffle, the diversity sample) is a keyed
blake2b hash (`keyed_unit`), so the balanced shards depend only on the input, the plan, the seed and the
buffer size, and are byte-identical in every process and run.

Rates are applied per document: a rate of 2.3 gives every document 2 copies and a third one when a hash of
(id, copy index, seed) falls below 0.3. Copies after the first get the id `"<id>#rep<k>"` (k = 1, 2, ...),
so ids stay unique in the output; the original id is everything before `#rep`. The training stream is
shuffled through a bounded buffer (`ShuffleBuffer`), so a document's copies do not sit next to each other.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

# Copies of a document enter the buffer together and leave after about this many documents each, so they end
# up thousands of documents apart; 10,000 documents of a few KB is tens of MB of memory.
DEFAULT_SHUFFLE_BUFFER_DOCS = 10_000


def keyed_unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (blake2b, identical in every process and run)."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


def copies_of(doc_id: str, rate: float, seed: int) -> int:
    """Training copies of one document: floor(rate), plus one more when the hash of (id, copy index,
    seed) falls below the fractional part, so the expected count is exactly `rate`."""
    whole = math.floor(rate)
    return whole + (1 if keyed_unit("copy", doc_id, whole, seed) < rate - whole else 0)


class ShuffleBuffer:
    """A deterministic, memory-bounded shuffle: holds at most `size` rows. Once full, each incoming row takes
    the slot picked by its key (blake2b of id and seed) and the row there is emitted; the rows left at the end
    are emitted in key order. Each row stays about `size` rows on average, so neighbours in the input (the
    copies of one document) leave far apart, and the order depends only on the input, `size` and the seed."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("shuffle_buffer_docs must be at least 1")
        self.size = size
        self.seed = seed
        self.rows: list[dict[str, Any]] = []

    def _key(self, row: dict[str, Any]) -> float:
        return keyed_unit("shuffle", row["id"], self.seed)

    def push(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """Add a row; once the buffer is full, return the row it displaces."""
        if len(self.rows) < self.size:
            self.rows.append(row)
            return None
        slot = int(self._key(row) * self.size)
        out, self.rows[slot] = self.rows[slot], row
        return out

    def drain(self) -> list[dict[str, Any]]:
        """The rows still held, in key order; the buffer is left empty."""
        rows, self.rows = sorted(self.rows, key=self._key), []
        return rows
