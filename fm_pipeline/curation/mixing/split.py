"""The train/val split, stratified by language: which documents are held out for validation.

Each language with at least `min_docs_for_val` documents gives val `val_count(n)` of its n documents,
`val_fraction * n` rounded half up but at least `min_val_docs`, namely those whose keyed hash of the original
id alone (the key `split_of` compares with `val_fraction`) ranks lowest, ties broken by id; smaller languages
keep every document for training. So every language large enough to measure has val documents (a hash
threshold alone left a 5% split of a small multilingual corpus all English), val never shares a document
with train, is never repeated or downsampled, and stays the same whatever the mix or seed.

Choosing the lowest ranks needs each language's size first, so a pre-pass (`survey`) reads the `id` and
`lang` columns (and the text lengths when the plan is to be computed: the same read that counts bytes per
language) and holds ids and hashes only, never texts. The domain corpus splits by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fm_pipeline.curation.mixing.plan import add_lang_bytes
from fm_pipeline.curation.mixing.sampling import keyed_unit

# 5% rather than the usual 1%: the corpora this pipeline runs on by default are small (thousands of
# documents), and 1% would leave a validation set of a few dozen documents, too few for per-language loss.
DEFAULT_VAL_FRACTION = 0.05
# Every language with at least 4 documents gets a val document, even where 5% rounds to none; a language with
# 1-3 documents keeps them all for training, where they do more good than as a 1-document evaluation.
DEFAULT_MIN_VAL_DOCS = 1
DEFAULT_MIN_DOCS_FOR_VAL = 4


def _split_key(doc_id: str) -> float:
    """The keyed hash of an original id that decides the split: uniform in [0, 1), independent of the seed."""
    return keyed_unit("split", doc_id)


def split_of(doc_id: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """Per document, without stratification: "val" when the id's split key is below `val_fraction`, else
    "train". `balance` uses the stratified `val_ids` instead, which ranks documents by the same key."""
    return "val" if _split_key(doc_id) < val_fraction else "train"


def val_count(
    n_docs: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    min_val_docs: int = DEFAULT_MIN_VAL_DOCS,
    min_docs_for_val: int = DEFAULT_MIN_DOCS_FOR_VAL,
) -> int:
    """How many of a language's `n_docs` documents go to val: none when `n_docs < min_docs_for_val`, else
    `val_fraction * n_docs` rounded half up, at least `min_val_docs` and at most `n_docs`."""
    if not 0 <= val_fraction <= 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if min_val_docs < 0 or min_docs_for_val < 0:
        raise ValueError("min_val_docs and min_docs_for_val must not be negative")
    if n_docs < min_docs_for_val:
        return 0
    return min(n_docs, max(min_val_docs, math.floor(val_fraction * n_docs + 0.5)))


def survey(
    shards: Sequence[Path],
    val_fraction: float,
    min_val_docs: int,
    min_docs_for_val: int,
    count_bytes: bool,
) -> tuple[dict[str, int], set[str]]:
    """One pass over the `id` and `lang` columns (and `text`, for its byte length, when `count_bytes`):
    bytes per language (empty unless `count_bytes`) and the val ids (see `val_ids`).
    Holds ids, languages and split keys, columnar, never texts; the val ids become a Python set."""
    totals: dict[str, int] = {}
    parts = []
    for shard in shards:
        table = pq.read_table(shard, columns=["id", "lang", "text"] if count_bytes else ["id", "lang"])
        if count_bytes:
            add_lang_bytes(totals, table)
        ids = table.column("id").cast(pa.large_string())
        keys = pa.array([_split_key(doc_id) for doc_id in ids.to_pylist()], pa.float64())
        parts.append(pa.table({"lang": table.column("lang").cast(pa.large_string()), "key": keys, "id": ids}))
    if not parts:
        return totals, set()
    table = pa.concat_tables(parts).combine_chunks()
    docs = {row["lang"]: row["lang_count"] for row in table.group_by("lang").aggregate([("lang", "count")]).to_pylist()}
    # Sorted by language (UTF-8 byte order, which is code point order, as `sorted` gives), then key, then id:
    # each language is one run of rows, its lowest keys first.
    order = pc.sort_indices(table, sort_keys=[("lang", "ascending"), ("key", "ascending"), ("id", "ascending")])
    chosen: set[str] = set()
    start = 0
    for lang in sorted(docs):
        k = val_count(docs[lang], val_fraction, min_val_docs, min_docs_for_val)
        chosen.update(table.column("id").take(order.slice(start, k)).to_pylist())
        start += docs[lang]
    return dict(sorted(totals.items())), chosen


def val_ids(
    shards: Sequence[Path],
    val_fraction: float = DEFAULT_VAL_FRACTION,
    min_val_docs: int = DEFAULT_MIN_VAL_DOCS,
    min_docs_for_val: int = DEFAULT_MIN_DOCS_FOR_VAL,
) -> set[str]:
    """The ids `balance` puts in val: per language, the `val_count(n)` documents whose split key (keyed hash
    of the id) is lowest, ties broken by id. Reads only the `id` and `lang` columns."""
    return survey(shards, val_fraction, min_val_docs, min_docs_for_val, count_bytes=False)[1]
