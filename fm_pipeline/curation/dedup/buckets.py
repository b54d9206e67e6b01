"""The bounded steps of the duplicate search, as in datatrove and NeMo Curator: sorted runs per signature file,
then one job per key range (exact keys) or per bucket (band hashes) merging the runs' slices for that range.
Each job reads only its slice of every run, so its memory follows its range's size, never the corpus's.

1. `write_exact_run(work, i)`: signature file `i`'s exact keys, sorted, one row group per key range.
2. `exact_groups(work, part)`: the key range's documents grouped by exact key; every member but the first
   (the group's representative) is written with its representative, sorted by member.
3. `write_band_run(work, i)`: the band hashes of file `i`'s representatives (exact copies never enter LSH),
   sorted by (band, hash, row), one row group per bucket; a bucket is a (band, hash) range.
4. `bucket_pairs(work, bucket)`: per band of the bucket, documents sharing a band hash are compared with
   greedy leader clustering (`_linked_pairs`) on their full signatures, read from the signature files by
   row; the pairs that reach `verify_threshold` are written.

Each job writes one file atomically, so it is complete or absent and can be rerun alone; `clusters` joins
the pairs. Global rows: see `plan`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fm_pipeline.curation.dedup.plan import DedupPlan, read_plan
from fm_pipeline.curation.dedup.signatures import fixed_binary, read_rows
from fm_pipeline.lake.atomic import atomic_path
from fm_pipeline.lake.parquet_io import write_table_atomic

_META_PARTS = b"fm_pipeline.parts"
_META_COMPARED = b"fm_pipeline.compared"
_U64 = np.uint64


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; sort-and-compare, several times faster than np.unique's hashing here."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _range_of(top: np.ndarray, space: int, parts: int) -> np.ndarray:
    """Which of `parts` equal ranges of [0, space) each value falls in (monotone, so sorted runs stay sorted)."""
    return (top.astype(_U64) * _U64(parts) // _U64(space)).astype(np.int64)


def exact_part(hi: np.ndarray, parts: int) -> np.ndarray:
    """Exact key range of each key (by its first 32 bits)."""
    return _range_of(hi >> _U64(32), 1 << 32, parts)


def bucket_of(band: np.ndarray, hashes: np.ndarray, bands: int, buckets: int) -> np.ndarray:
    """Bucket of each (band, hash): `buckets` equal ranges of the (band, first 32 hash bits) space, so a
    bucket is a range of bands when buckets <= bands and a hash range of one band when there are more."""
    top = (band.astype(_U64) << _U64(32)) | (hashes >> _U64(32))
    return _range_of(top, bands << 32, buckets)


def _write_run(table: pa.Table, parts: np.ndarray, path: Path) -> None:
    """Write `table` (sorted so that `parts` never decreases) with each part in row groups of its own and
    the parts listed in the metadata. Uncompressed: hashes and rows do not compress."""
    starts = np.flatnonzero(np.concatenate([[True], parts[1:] != parts[:-1]])) if len(parts) else np.zeros(0, int)
    ends = np.append(starts[1:], len(parts))[: len(starts)].astype(np.int64)  # no parts: no ends either
    listing = [[int(parts[s]), int(e - s)] for s, e in zip(starts, ends, strict=True)]
    schema = table.schema.with_metadata({_META_PARTS: json.dumps(listing).encode()})
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="none", use_dictionary=False) as out:
        for s, e in zip(starts, ends, strict=True):
            out.write_table(table.slice(s, e - s).replace_schema_metadata(schema.metadata), row_group_size=e - s)
        if not listing:
            out.write_table(table.replace_schema_metadata(schema.metadata))


def _read_part(path: Path, part: int) -> pa.Table | None:
    """One part of a run file: only its row groups are read."""
    pf = pq.ParquetFile(path)
    start = 0
    for p, n in json.loads(pf.schema_arrow.metadata[_META_PARTS]):
        if p == part:
            break
        start += n
    else:
        return None
    groups, pos = [], 0
    for g in range(pf.num_row_groups):
        if start <= pos < start + n:
            groups.append(g)
        pos += pf.metadata.row_group(g).num_rows
    return pf.read_row_groups(groups)


def write_exact_run(work: Path, i: int) -> int:
    """Step 1, per signature file: its exact keys sorted by (key, row), cut into the plan's key ranges.
    Returns the number of keys."""
    plan = read_plan(work)
    column = pq.read_table(plan.signature_files[i], columns=["exact_key"]).column("exact_key")
    keys = fixed_binary(column, 16).view("<u8").reshape(-1, 2)
    row = np.arange(len(keys), dtype=np.uint32)
    order = np.lexsort((row, keys[:, 1], keys[:, 0]))
    hi, lo = keys[order, 0], keys[order, 1]
    table = pa.table({"hi": hi, "lo": lo, "row": row[order]})
    _write_run(table, exact_part(hi, plan.exact_parts), plan.exact_run(i))
    return len(keys)


def exact_groups(work: Path, part: int) -> int:
    """Step 2, per exact key range: every document whose normalized text equals an earlier one's (in global
    row order), with that first one (its representative). Returns the number of such members."""
    plan = read_plan(work)
    offsets = plan.offsets
    his, los, docs = [], [], []
    for i in range(len(plan.signature_files)):
        table = _read_part(plan.exact_run(i), part)
        if table is not None:
            his.append(table.column("hi").to_numpy())
            los.append(table.column("lo").to_numpy())
            docs.append(table.column("row").to_numpy().astype(np.int64) + offsets[i])
    hi, lo, doc = (np.concatenate(x) if x else np.zeros(0, t) for x, t in ((his, _U64), (los, _U64), (docs, np.int64)))
    order = np.lexsort((doc, lo, hi))
    hi, lo, doc = hi[order], lo[order], doc[order]
    first = np.ones(len(doc), dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    rep = doc[first][np.cumsum(first) - 1]
    member, rep = doc[~first], rep[~first]
    by_member = np.argsort(member, kind="stable")
    write_table_atomic(pa.table({"member": member[by_member], "rep": rep[by_member]}), plan.exact_group(part))
    return len(member)


def exact_members(plan: DedupPlan, lo: int | None = None, hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(member, representative) of the exact groups, for members in global rows [lo, hi) (all by default);
    Parquet statistics skip the row groups outside the range."""
    filters = None if lo is None else [("member", ">=", lo), ("member", "<", hi)]
    members, reps = [], []
    for part in range(plan.exact_parts):
        table = pq.read_table(plan.exact_group(part), filters=filters)
        members.append(table.column("member").to_numpy())
        reps.append(table.column("rep").to_numpy())
    return np.concatenate(members).astype(np.int64), np.concatenate(reps).astype(np.int64)


def write_band_run(work: Path, i: int) -> int:
    """Step 3, per signature file: the band hashes of its representatives sorted by (band, hash, row), cut
    into the plan's buckets. Needs every `exact_groups` job done. Returns the number of entries."""
    plan = read_plan(work)
    offsets = plan.offsets
    members, _ = exact_members(plan, int(offsets[i]), int(offsets[i + 1]))
    keep = np.ones(plan.rows[i], dtype=bool)
    keep[members - offsets[i]] = False
    rows = np.flatnonzero(keep).astype(np.uint32)
    names = [f"band_{b:02d}" for b in range(plan.bands)]
    table = pq.read_table(plan.signature_files[i], columns=names)
    hashes, ordered_rows = [], []
    for name in names:
        values = table.column(name).to_numpy()[rows]
        order = np.argsort(values, kind="stable")  # rows ascending within a hash
        hashes.append(values[order])
        ordered_rows.append(rows[order])
    del table
    band = np.repeat(np.arange(plan.bands, dtype=np.uint8), len(rows))
    hashes_all = np.concatenate(hashes) if hashes else np.zeros(0, _U64)
    run = pa.table({"band": band, "hash": hashes_all,
                    "row": np.concatenate(ordered_rows) if ordered_rows else np.zeros(0, np.uint32)})
    _write_run(run, bucket_of(band, hashes_all, plan.bands, plan.buckets), plan.band_run(i))
    return len(band)


def _band_buckets(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that share a band hash with another row, and their bucket numbers (grouped; within a bucket,
    rows keep their order, ascending)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    new = np.ones(len(v), dtype=bool)
    new[1:] = v[1:] != v[:-1]
    bucket = np.cumsum(new) - 1
    shared = np.bincount(bucket)[bucket] >= 2
    return rows[order][shared], bucket[shared]


def _linked_pairs(
    members: np.ndarray,
    bucket: np.ndarray,
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    threshold: float,
    max_rounds: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs of one band and whether each verified: each member is compared with its bucket's
    first member; members that fail form the rest of the bucket, whose first member is tried next
    (greedy leader clustering, vectorized by rounds). `max_rounds` bounds the work on buckets of mutually
    dissimilar documents (shared templates); such members can still meet in other bands."""
    compared, verified = [], []
    for _ in range(max_rounds):
        if len(members) == 0:
            break
        first = np.ones(len(bucket), dtype=bool)
        first[1:] = bucket[1:] != bucket[:-1]
        leader = members[first][np.cumsum(first) - 1]
        rest = ~first
        m, lead, b = members[rest], leader[rest], bucket[rest]
        ok = similarity(m, lead) >= threshold
        compared.append(np.stack([lead, m], axis=1))
        verified.append(ok)
        members, bucket = m[~ok], b[~ok]
        keep = np.bincount(bucket)[bucket] >= 2 if len(bucket) else np.zeros(0, dtype=bool)
        members, bucket = members[keep], bucket[keep]
    if not compared:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(compared), np.concatenate(verified)


def bucket_pairs(work: Path, bucket: int) -> int:
    """Step 4, per bucket: the verified candidate pairs (a < b, global rows, distinct) of the bucket's bands,
    with the number of comparisons in the metadata. Needs every `write_band_run` job done. Returns the
    number of pairs."""
    plan = read_plan(work)
    offsets = plan.offsets
    by_band: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for i in range(len(plan.signature_files)):
        table = _read_part(plan.band_run(i), bucket)
        if table is None:
            continue
        band = table.column("band").to_numpy()
        hashes = table.column("hash").to_numpy()
        doc = table.column("row").to_numpy().astype(np.int64) + offsets[i]
        cuts = np.flatnonzero(np.diff(band)) + 1
        for b, h, d in zip(band[np.concatenate([[0], cuts])], np.split(hashes, cuts), np.split(doc, cuts), strict=True):
            values, rows = by_band.setdefault(int(b), ([], []))
            values.append(h)
            rows.append(d)
    # Per band, shard pieces in file order: a stable sort by hash keeps rows ascending within a hash.
    buckets = [_band_buckets(np.concatenate(v), np.concatenate(r)) for _, (v, r) in sorted(by_band.items())]
    del by_band
    needed = sorted_unique(np.concatenate([m for m, _ in buckets])) if buckets else np.zeros(0, np.int64)
    sigs = np.zeros((0, plan.num_perm), np.uint32)
    if len(needed):
        column = read_rows(plan.signature_files, offsets, needed, ["signature"]).column("signature")
        sigs = fixed_binary(column, plan.num_perm * 4).view(np.uint32)

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (sigs[np.searchsorted(needed, a)] == sigs[np.searchsorted(needed, b)]).mean(axis=1)

    compared, linked = 0, []
    for members, groups in buckets:
        pairs, ok = _linked_pairs(members, groups, similarity, plan.verify_threshold, plan.max_rounds)
        compared += len(pairs)
        linked.append(pairs[ok])
    pairs = _unique_pairs(np.concatenate(linked) if linked else np.zeros((0, 2), np.int64), plan.documents)
    table = pa.table({"a": pairs[:, 0], "b": pairs[:, 1]})
    write_table_atomic(table.replace_schema_metadata({_META_COMPARED: str(compared).encode()}),
                       plan.bucket_pairs(bucket))
    return len(pairs)


def _unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Distinct (a, b) rows, sorted."""
    keys = sorted_unique(pairs.astype(np.int64) @ np.array([n, 1], dtype=np.int64))
    return np.stack([keys // max(n, 1), keys % max(n, 1)], axis=1)


def read_pairs(plan: DedupPlan) -> tuple[np.ndarray, int]:
    """Every verified pair of every bucket (distinct, sorted) and the number of comparisons made."""
    pairs, compared = [], 0
    for bucket in range(plan.buckets):
        table = pq.read_table(plan.bucket_pairs(bucket))
        compared += int(table.schema.metadata[_META_COMPARED])
        pairs.append(np.stack([table.column("a").to_numpy(), table.column("b").to_numpy()], axis=1))
    return _unique_pairs(np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64), plan.documents), compared
