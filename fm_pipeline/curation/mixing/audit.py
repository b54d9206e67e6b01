"""The recount of `balance`'s output for the asset check: read back from disk, never from its counters.

Kept apart from the stage so it shares none of the stage's bookkeeping: it reads the ids of the input shards
and of the train, val and dropped folders, and checks that every input document left exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fm_pipeline.lake.layout import DROPPED, REPEAT_MARK, TRAIN, VAL
from fm_pipeline.lake.parquet_io import list_shards

_COPY_SUFFIX = REPEAT_MARK + r"\d+$"  # an RE2 pattern (pyarrow.compute): the `#rep<k>` of a copy


def _ids(paths: Sequence[Path]) -> pa.Array:
    """The `id` column of the shards as one array: columnar, so compact even for millions of documents, and
    large_string, so more than 2 GiB of ids still fit in one array."""
    chunks = [c.cast(pa.large_string()) for p in paths for c in pq.read_table(p, columns=["id"]).column("id").chunks]
    return pa.concat_arrays(chunks) if chunks else pa.array([], pa.large_string())


def audit_balance(input_shards: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """Recount `balance`'s accounting from disk, independently of its counters, for an asset check.

    Train ids count once per original (the `#rep<k>` suffix stripped). Keys shared with `BalanceStats`
    (`documents_in`, `train_documents`, `train_originals`, `val_documents`, `dropped`) can be compared one to
    one; `train_val_overlap` counts originals in both train and val, `placed_twice` originals in more than one
    output (or twice in one), `missing` inputs in no output, `unknown` outputs that are no input, and
    `exactly_once` is true when the counts add up and those four are all zero.
    """
    inputs = _ids([Path(p) for p in input_shards])
    train = _ids(list_shards(Path(out_dir) / TRAIN))
    originals = pc.unique(pc.replace_substring_regex(train, pattern=_COPY_SUFFIX, replacement=""))
    val, dropped = _ids(list_shards(Path(out_dir) / VAL)), _ids(list_shards(Path(out_dir) / DROPPED))
    placed = pa.concat_arrays([originals, val, dropped])
    counts = pc.value_counts(placed)
    distinct = counts.field("values")
    audit = {
        "documents_in": len(inputs),
        "train_documents": len(train),
        "train_originals": len(originals),
        "val_documents": len(val),
        "dropped": len(dropped),
        "train_val_overlap": pc.sum(pc.is_in(originals, value_set=val)).as_py() or 0,
        "placed_twice": pc.sum(pc.greater(counts.field("counts"), 1)).as_py() or 0,
        "missing": pc.sum(pc.invert(pc.is_in(inputs, value_set=distinct))).as_py() or 0,
        "unknown": pc.sum(pc.invert(pc.is_in(distinct, value_set=inputs))).as_py() or 0,
    }
    adds_up = audit["documents_in"] == audit["train_originals"] + audit["val_documents"] + audit["dropped"]
    problems = audit["train_val_overlap"] + audit["placed_twice"] + audit["missing"] + audit["unknown"]
    return {**audit, "exactly_once": adds_up and problems == 0}
