"""Exact and near-duplicate removal across all sources, shaped for fan-out like datatrove's MinHash.

The stage runs in four steps, each a plain function over paths so that a Dagster graph can fan the
per-shard ones out:

1. `compute_signatures` per corpus shard: an exact key and a MinHash signature per document, cut into
   LSH band hashes, written to a small signature file (cached by the shard's content hash).
2. per band, bucket documents by band hash (`find_duplicates` does this band by band, reading one band
   column at a time, so memory holds one band, not the signatures).
3. one global step over the candidate pairs only: verification, union-find, a survivor per cluster.
4. `apply_dedup`: a streaming pass writing kept rows, and removed rows with `duplicate_of`; it needs only
   the removed-id map, so a fan-out gives each step some shards and its own output folders.

MinHash: 112 permutations over word 5-grams (character 5-grams for space-less scripts), datasketch's
"affine32" scheme: a signature equals `datasketch.MinHash(num_perm=112, seed=1, hashfunc=shingle_hash32)`
fed with `shingles(text, lang)`, computed here with numpy over whole batches of documents because
datasketch's per-document Python calls are ~50x slower. Shingles are hashed with a polynomial rolling
hash over the normalized text's code points (mod 2^64, splitmix64 finalizer, top 32 bits): deterministic
in every process, unlike Python's `hash()`, and vectorized, unlike a cryptographic hash per shingle.

Bands: 28 bands x 4 rows by default, not datatrove's 14 x 8. Replacing 3% of a document's words at
random leaves a word-5-gram Jaccard of only ~0.73-0.78 (each changed word breaks 5 shingles), where
14 x 8 (collision probability 1 - (1 - J^8)^14, 50% at J ~ 0.74) finds ~80% of such copies; measured on
Botchan in 2 KB documents it missed 9 of 45. 28 x 4 finds a pair at J = 0.6 with probability 0.98 and
at J = 0.73 with probability > 0.9999, at the price of more candidates between loosely similar
documents (J = 0.4: 52%), which the verification below removes. `MinHashConfig(bands=14)` gives the
datatrove layout back.

Verification: every candidate pair is checked with the Jaccard similarity estimated from the full
112-value signatures and linked only when it reaches `verify_threshold` (0.6: the estimate's standard
error is ~0.04, so a true J of 0.73 passes with probability ~0.999, while the loose collisions that
4-row bands let through are rejected: J = 0.5 passes ~2% of the time, J = 0.4 almost never). The rule
is therefore "estimated Jaccard >= 0.6", with LSH providing the recall.
"""

from __future__ import annotations

import hashlib
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fm_pipeline.curation.words import is_spaceless
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REMOVED_SCHEMA
from fm_pipeline.lake.parallel import map_shards
from fm_pipeline.lake.parquet_io import (
    DEFAULT_SHARD_BYTES,
    ShardWriter,
    iter_rows,
    write_table_atomic,
)
from fm_pipeline.lake.staging import carry, published_path, staged_dir

# Survivor preference when a cluster spans sources: curated sources before scraped ones.
DEFAULT_SOURCE_PRIORITY = ("reference_data", "books", "academic_papers", "code_repositories", "common_crawl")
DEFAULT_VERIFY_THRESHOLD = 0.6
_META_SHARD = b"fm_pipeline.shard_sha256"
_META_CONFIG = b"fm_pipeline.minhash"
# How text is folded before shingling; signature files written under another rule are recomputed.
_META_FOLD = b"fm_pipeline.shingle_fold"
_FOLD = b"casefold,turkish-i"
_TEXT_HEAD_CHARS = 80
_BATCH_CHARS = 2_000_000  # normalized characters per vectorized batch: bounds the per-position arrays
_CHUNK_SHINGLES = 4096  # shingles per permutation block: a 4096 x 112 uint32 block stays in cache

_U64 = np.uint64
_POLY = _U64(0x9E3779B97F4A7C15)  # odd, so it has an inverse mod 2^64
_POLY_INV = _U64(pow(0x9E3779B97F4A7C15, -1, 1 << 64))


@dataclass(frozen=True)
class MinHashConfig:
    """Signature parameters; a signature file records them, so a change invalidates the cache."""

    num_perm: int = 112
    bands: int = 28
    ngram: int = 5
    seed: int = 1

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands

    @property
    def threshold(self) -> float:
        """The classic LSH threshold (1/b)^(1/r): near the steepest point of the collision curve."""
        return (1 / self.bands) ** (1 / self.rows)

    def key(self) -> bytes:
        return f"num_perm={self.num_perm},bands={self.bands},ngram={self.ngram},seed={self.seed}".encode()


@dataclass
class DedupResult:
    """Which documents go, and why: removed id -> (survivor id, "exact" | "near")."""

    removed: dict[str, tuple[str, str]]
    docs: int
    exact_duplicates: int
    near_duplicates: int
    candidate_pairs: int
    verified_pairs: int
    cluster_sizes: dict[int, int] = field(default_factory=dict)
    examples: list[list[dict[str, str]]] = field(default_factory=list)


# --- normalization and shingles -------------------------------------------------------------------


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, int | None]:
    """Every Unicode punctuation or symbol code point maps to a space (built once, ~0.2 s). Turkish casing
    is folded too, which `casefold` leaves alone: dotless ı becomes i and the dot above that `"İ".casefold()`
    leaves goes, so "HAKKINI" and "hakkını" (or "İZMİR" and "izmir") give the same shingles."""
    table: dict[int, int | None] = {
        cp: 32 for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp))[0] in "PS"
    }
    table[ord("ı")] = ord("i")
    table[0x0307] = None
    return table


def exact_key(text: str) -> bytes:
    """16-byte key of the text lowercased with whitespace collapsed: equal keys are exact duplicates."""
    return hashlib.blake2b(" ".join(text.lower().split()).encode("utf-8"), digest_size=16).digest()


def _normalize(text: str, lang: str | None) -> tuple[str, bool]:
    """Case-folded words with punctuation removed: joined by single spaces, or by nothing for space-less
    scripts (whose shingles are characters). Returns the string and whether it is space-less. Case folding,
    not lowercasing, so a heading in capitals still matches: "STRASSE" and "Straße" fold to "strasse"."""
    words = text.casefold().translate(_fold_table()).split()
    spaceless = is_spaceless(text, lang)
    return ("" if spaceless else " ").join(words), spaceless


def shingles(text: str, lang: str | None = None, n: int = 5) -> set[str]:
    """Word n-grams (character n-grams for space-less scripts) of the normalized text; a document with
    fewer than n tokens is one shingle, so short documents still get a signature."""
    norm, spaceless = _normalize(text, lang)
    if spaceless:
        if len(norm) < n:
            return {norm}
        return {norm[i : i + n] for i in range(len(norm) - n + 1)}
    words = norm.split(" ") if norm else []
    if len(words) < n:
        return {norm}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: spreads the weak low bits of the polynomial hash over all 64 bits."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


class _Powers:
    """POLY^i and POLY^-i mod 2^64 for i < len, grown on demand (cumprod wraps mod 2^64 as wanted)."""

    pow = np.ones(1, dtype=_U64)
    inv = np.ones(1, dtype=_U64)

    @classmethod
    def upto(cls, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(cls.pow) < n:
            size = max(n, 2 * len(cls.pow))
            with np.errstate(over="ignore"):
                cls.pow = np.concatenate([[_U64(1)], np.cumprod(np.full(size - 1, _POLY, dtype=_U64))])
                cls.inv = np.concatenate([[_U64(1)], np.cumprod(np.full(size - 1, _POLY_INV, dtype=_U64))])
        return cls.pow, cls.inv


def _span_hashes(buf: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """32-bit hashes of the substrings buf[s:e], all at once: a prefix sum of code point x POLY^i gives
    each span's polynomial, shifted back to position 0 so equal substrings hash equally anywhere."""
    codes = np.frombuffer(buf.encode("utf-32-le"), dtype=np.uint32).astype(_U64)
    powers, inverse = _Powers.upto(len(codes) + 1)
    prefix = np.zeros(len(codes) + 1, dtype=_U64)
    np.cumsum(codes * powers[: len(codes)], out=prefix[1:])
    return (_splitmix64((prefix[ends] - prefix[starts]) * inverse[starts]) >> _U64(32)).astype(np.uint32)


def shingle_hash32(shingle: str) -> int:
    """The 32-bit hash a signature uses for one shingle (a datasketch `hashfunc`)."""
    return int(_span_hashes(shingle, np.array([0]), np.array([len(shingle)]))[0])


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (its exact draws from `RandomState(seed)`), so
    signatures interoperate with `datasketch.MinHash(num_perm, seed)`; generated here rather than
    taken from a MinHash because importing datasketch (and scipy) costs every pool worker ~1 s."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch's affine32 scheme applies before permuting."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _shingle_spans(norms: list[str], spaceless: np.ndarray, n: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """All shingles of a batch as (start, end) spans into the concatenated normalized texts, with the
    document each belongs to, sorted by document. Tokens are words split by single spaces, or single
    characters in space-less documents."""
    lengths = np.fromiter(map(len, norms), dtype=np.int64, count=len(norms))
    doc_end = np.cumsum(lengths)
    doc_start = doc_end - lengths
    buf = "".join(norms)
    codes = np.frombuffer(buf.encode("utf-32-le"), dtype=np.uint32)
    doc_of = np.repeat(np.arange(len(norms)), lengths)
    chars_are_tokens = spaceless[doc_of]
    is_space = codes == 32
    nonempty = lengths > 0
    after_gap = np.ones(len(codes), dtype=bool)
    after_gap[1:] = is_space[:-1]
    after_gap[doc_start[nonempty]] = True
    before_gap = np.ones(len(codes), dtype=bool)
    before_gap[:-1] = is_space[1:]
    before_gap[doc_end[nonempty] - 1] = True
    tok_start = np.flatnonzero(chars_are_tokens | (~is_space & after_gap))
    tok_end = np.flatnonzero(chars_are_tokens | (~is_space & before_gap)) + 1
    tok_doc = doc_of[tok_start]
    m = len(tok_start) - n + 1
    if m > 0:
        same_doc = tok_doc[n - 1 :] == tok_doc[:m]
        starts, ends, docs = tok_start[:m][same_doc], tok_end[n - 1 :][same_doc], tok_doc[:m][same_doc]
    else:
        starts = ends = docs = np.zeros(0, dtype=np.int64)
    short = np.flatnonzero(np.bincount(tok_doc, minlength=len(norms)) < n)
    starts = np.concatenate([starts, doc_start[short]])
    ends = np.concatenate([ends, doc_end[short]])
    docs = np.concatenate([docs, short])
    order = np.argsort(docs, kind="stable")
    return buf, starts[order], ends[order], docs[order]


def minhash_signatures(
    texts: Sequence[str], langs: Sequence[str | None], config: MinHashConfig | None = None
) -> np.ndarray:
    """MinHash signatures (len(texts) x num_perm, uint32) of a batch of documents, vectorized over the
    whole batch: one prefix hash over all texts, then the permutations block by block."""
    cfg = config or MinHashConfig()
    normalized = [_normalize(t, lang) for t, lang in zip(texts, langs, strict=True)]
    norms = [s for s, _ in normalized]
    spaceless = np.array([sl for _, sl in normalized], dtype=bool)
    buf, starts, ends, docs = _shingle_spans(norms, spaceless, cfg.ngram)
    hv = _fmix32(_span_hashes(buf, starts, ends))
    a, b = _permutations(cfg.num_perm, cfg.seed)
    sig = np.full((len(texts), cfg.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    for lo in range(0, len(hv), _CHUNK_SHINGLES):
        chunk_docs = docs[lo : lo + _CHUNK_SHINGLES]
        permuted = hv[lo : lo + _CHUNK_SHINGLES, None] * a + b  # uint32 wraps: mod 2^32, as datasketch
        seg = np.flatnonzero(np.concatenate([[True], chunk_docs[1:] != chunk_docs[:-1]]))
        rows = chunk_docs[seg]
        sig[rows] = np.minimum(sig[rows], np.minimum.reduceat(permuted, seg, axis=0))
    return sig


def _band_hashes(sig: np.ndarray, cfg: MinHashConfig) -> np.ndarray:
    """One 64-bit hash per band (docs x bands): documents share a bucket when a whole band agrees."""
    bands = sig.reshape(len(sig), cfg.bands, cfg.rows).astype(_U64)
    h = np.zeros((len(sig), cfg.bands), dtype=_U64)
    for r in range(cfg.rows):
        h = _splitmix64(h + bands[:, :, r] + _POLY)
    return h


# --- step 1: signatures per shard -----------------------------------------------------------------


def signature_schema(cfg: MinHashConfig) -> pa.Schema:
    """Columns of a signature file: what the global step needs, never the text itself."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("text_len", pa.int64(), nullable=False),
            pa.field("exact_key", pa.binary(16), nullable=False),
            pa.field("text_head", pa.string(), nullable=False),
            pa.field("signature", pa.binary(cfg.num_perm * 4), nullable=False),
            *(pa.field(f"band_{i:02d}", pa.uint64(), nullable=False) for i in range(cfg.bands)),
        ]
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_current(out: Path, shard_sha: str, cfg: MinHashConfig) -> bool:
    if not out.exists():
        return False
    meta = pq.read_schema(out).metadata or {}
    return (
        meta.get(_META_SHARD) == shard_sha.encode()
        and meta.get(_META_CONFIG) == cfg.key()
        and meta.get(_META_FOLD) == _FOLD
    )


def _text_batches(shard: Path) -> Iterator[pa.RecordBatch]:
    """Record batches of about _BATCH_CHARS characters (one long document may exceed it alone)."""
    pf = pq.ParquetFile(shard)
    pending: list[pa.RecordBatch] = []
    chars = 0
    for batch in pf.iter_batches(batch_size=256, columns=["id", "text", "source", "lang"]):
        pending.append(batch)
        chars += pc.sum(pc.utf8_length(batch.column("text"))).as_py() or 0
        if chars >= _BATCH_CHARS:
            yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
            pending, chars = [], 0
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _compute_signatures(shard: Path, out: Path, cfg: MinHashConfig) -> bool:
    """Write the signature file unless an up-to-date one exists; returns whether it computed."""
    shard_sha = _file_sha256(shard)
    if _is_current(out, shard_sha, cfg):
        return False
    parts: list[pa.Table] = []
    for batch in _text_batches(shard):
        texts = batch.column("text").to_pylist()
        sig = minhash_signatures(texts, batch.column("lang").to_pylist(), cfg)
        bands = _band_hashes(sig, cfg)
        columns: dict[str, pa.Array] = {
            "id": batch.column("id"),
            "source": batch.column("source"),
            "text_len": pc.utf8_length(batch.column("text")).cast(pa.int64()),
            "exact_key": pa.array([exact_key(t) for t in texts], type=pa.binary(16)),
            "text_head": pa.array([t[:_TEXT_HEAD_CHARS] for t in texts], type=pa.string()),
            "signature": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(cfg.num_perm * 4), len(sig), [None, pa.py_buffer(sig.tobytes())]
            ),
        }
        for i in range(cfg.bands):
            columns[f"band_{i:02d}"] = pa.array(bands[:, i], type=pa.uint64())
        parts.append(pa.table(columns, schema=signature_schema(cfg)))
    table = pa.concat_tables(parts) if parts else signature_schema(cfg).empty_table()
    meta = {_META_SHARD: shard_sha.encode(), _META_CONFIG: cfg.key(), _META_FOLD: _FOLD}
    write_table_atomic(table.replace_schema_metadata(meta), out)
    return True


def compute_signatures(shard: Path, out: Path, config: MinHashConfig | None = None) -> Path:
    """Signature file of one corpus shard (the fan-out step). Skipped when `out` already records the
    same shard content hash and MinHash parameters, so a rerun only hashes the shards that changed."""
    _compute_signatures(Path(shard), Path(out), config or MinHashConfig())
    return Path(out)


def _signature_job(job: tuple[str, str, MinHashConfig]) -> bool:
    """Top-level (spawn-safe) pool task."""
    shard, out, cfg = job
    return _compute_signatures(Path(shard), Path(out), cfg)


# --- steps 2 and 3: buckets per band, verification, union-find, survivors -------------------------


def _read_config(signature_files: Sequence[Path]) -> MinHashConfig:
    keys = {(pq.read_schema(p).metadata or {}).get(_META_CONFIG) for p in signature_files}
    if len(keys) != 1 or None in keys:
        raise ValueError(f"signature files disagree on MinHash parameters: {sorted(map(str, keys))}")
    fields = dict(item.split("=") for item in next(iter(keys)).decode().split(","))
    return MinHashConfig(**{k: int(v) for k, v in fields.items()})


def _fixed_binary(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size binary column as an (n, width) uint8 array, without a Python object per row."""
    parts = [
        np.frombuffer(chunk.buffers()[1], dtype=np.uint8)[chunk.offset * width : (chunk.offset + len(chunk)) * width]
        for chunk in column.chunks
    ]
    return np.concatenate(parts).reshape(-1, width) if parts else np.zeros((0, width), dtype=np.uint8)


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; sort-and-compare, several times faster than np.unique's hashing here."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _exact_groups(keys: np.ndarray) -> np.ndarray:
    """For each row, the first row with the same exact key (its representative)."""
    k = keys.view("<u8").reshape(-1, 2)
    order = np.lexsort((k[:, 1], k[:, 0]))  # stable: within a group, rows stay in index order
    sk = k[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    group_first = order[new_group]
    rep = np.empty(len(order), dtype=np.int64)
    rep[order] = group_first[np.cumsum(new_group) - 1]
    return rep


def _band_buckets(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that share a band hash with another row, and their bucket numbers (grouped, stable)."""
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


def _load_signatures(signature_files: Sequence[Path], rows: np.ndarray, num_perm: int) -> np.ndarray:
    """Signatures of the given global rows only (sorted), read file by file to bound memory."""
    out = np.zeros((len(rows), num_perm), dtype=np.uint32)
    start = 0
    for p in signature_files:
        column = pq.read_table(p, columns=["signature"]).column("signature")
        lo, hi = np.searchsorted(rows, [start, start + len(column)])
        if hi > lo:
            sig = _fixed_binary(column, num_perm * 4).view(np.uint32)
            out[lo:hi] = sig[rows[lo:hi] - start]
        start += len(column)
    return out


class _UnionFind:
    """Union-find over the documents that appear in verified pairs (path halving, union by index)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_duplicates(
    signature_files: Sequence[Path],
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    max_rounds: int = 8,
) -> DedupResult:
    """Clusters of exact and near duplicates over all signature files, and one survivor per cluster.

    Exact groups come first (equal normalized text); only one representative per group enters LSH.
    The survivor is the document of the most trusted source (`source_priority`; unlisted sources come
    last), then the longer text, then the smallest id, so the choice never depends on file order. A
    removed document is "exact" when its normalized text equals the survivor's, else "near".
    """
    signature_files = [Path(p) for p in signature_files]
    if not signature_files:
        return DedupResult(
            removed={}, docs=0, exact_duplicates=0, near_duplicates=0, candidate_pairs=0, verified_pairs=0
        )
    cfg = _read_config(signature_files)
    meta = pa.concat_tables(
        [pq.read_table(p, columns=["id", "source", "text_len", "exact_key"]) for p in signature_files]
    )
    n = meta.num_rows
    ids = meta.column("id")
    if pc.count_distinct(ids).as_py() != n:
        raise ValueError("document ids are not unique across the signature files (DESIGN.md contract)")
    rep = _exact_groups(_fixed_binary(meta.column("exact_key"), 16))
    reps = np.flatnonzero(rep == np.arange(n))

    buckets = []
    for band in range(cfg.bands):
        name = f"band_{band:02d}"
        values = np.concatenate([pq.read_table(p, columns=[name]).column(name).to_numpy() for p in signature_files])
        buckets.append(_band_buckets(values[reps], reps))
    needed = _unique(np.concatenate([m for m, _ in buckets]))
    sigs = _load_signatures(signature_files, needed, cfg.num_perm)
    slot = np.zeros(n, dtype=np.int64)
    slot[needed] = np.arange(len(needed))

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (sigs[slot[a]] == sigs[slot[b]]).mean(axis=1)

    compared, verified = zip(
        *(_linked_pairs(members, bucket, similarity, verify_threshold, max_rounds) for members, bucket in buckets),
        strict=True,
    )
    pair_keys = np.concatenate(compared) @ np.array([n, 1], dtype=np.int64)  # (a, b) -> a * n + b, a < b
    candidates = len(_unique(pair_keys))
    linked = _unique(pair_keys[np.concatenate(verified)])
    pairs = np.stack([linked // n, linked % n], axis=1)

    uf = _UnionFind()
    for a, b in pairs.tolist():
        uf.union(a, b)
    root = np.arange(n)
    for x in list(uf.parent):
        root[x] = uf.find(x)
    label = root[rep]
    in_cluster = np.flatnonzero(np.bincount(label, minlength=n)[label] >= 2)

    rank = {s: i for i, s in enumerate(source_priority)}
    cl_ids = ids.take(in_cluster).to_pylist()
    cl_sources = meta.column("source").take(in_cluster).to_pylist()
    cl_lens = meta.column("text_len").take(in_cluster).to_pylist()
    order = sorted(
        range(len(in_cluster)),
        key=lambda i: (label[in_cluster[i]], rank.get(cl_sources[i], len(rank)), -cl_lens[i], cl_ids[i]),
    )
    removed: dict[str, tuple[str, str]] = {}
    clusters: list[list[int]] = []
    for i in order:
        if clusters and label[in_cluster[clusters[-1][0]]] == label[in_cluster[i]]:
            survivor = clusters[-1][0]
            same_text = rep[in_cluster[i]] == rep[in_cluster[survivor]]
            removed[cl_ids[i]] = (cl_ids[survivor], "exact" if same_text else "near")
            clusters[-1].append(i)
        else:
            clusters.append([i])
    sizes: dict[int, int] = {}
    for c in clusters:
        sizes[len(c)] = sizes.get(len(c), 0) + 1
    shown = sorted(clusters, key=lambda c: (-len(c), cl_ids[c[0]]))[:5]
    heads = _text_heads(signature_files, in_cluster[[i for c in shown for i in c]]) if shown else {}
    examples = [
        [
            {
                "id": cl_ids[i],
                "source": cl_sources[i],
                "role": "survivor" if i == c[0] else removed[cl_ids[i]][1],
                "text": heads[int(in_cluster[i])],
            }
            for i in c
        ]
        for c in shown
    ]
    exact = sum(1 for _, kind in removed.values() if kind == "exact")
    return DedupResult(
        removed=removed,
        docs=n,
        exact_duplicates=exact,
        near_duplicates=len(removed) - exact,
        candidate_pairs=candidates,
        verified_pairs=len(pairs),
        cluster_sizes=dict(sorted(sizes.items())),
        examples=examples,
    )


def _text_heads(signature_files: Sequence[Path], rows: np.ndarray) -> dict[int, str]:
    """The stored first characters of a few documents, by global row."""
    wanted = _unique(rows)
    heads: dict[int, str] = {}
    start = 0
    for p in signature_files:
        column = pq.read_table(p, columns=["text_head"]).column("text_head")
        lo, hi = np.searchsorted(wanted, [start, start + len(column)])
        local = wanted[lo:hi] - start
        heads.update(zip(wanted[lo:hi].tolist(), column.take(local).to_pylist(), strict=True))
        start += len(column)
    return heads


# --- step 4: filtering ----------------------------------------------------------------------------


def apply_dedup(
    shards: Sequence[Path],
    result: DedupResult,
    out_dir: Path,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> dict[str, int]:
    """Write every input row exactly once into a fresh `out_dir`: to `kept/`, or to `removed/` with
    `duplicate_of` (`dedup_corpus` publishes the folder whole)."""
    counts = {"docs_in": 0, "kept": 0, "removed": 0}
    kept_dir, removed_dir = Path(out_dir) / "kept", Path(out_dir) / "removed"
    kept_dir.mkdir(parents=True)
    removed_dir.mkdir()
    with ShardWriter(kept_dir, CORPUS_SCHEMA, shard_bytes) as kept, \
            ShardWriter(removed_dir, REMOVED_SCHEMA, shard_bytes) as gone:
        for row in iter_rows([Path(s) for s in shards], columns=CORPUS_SCHEMA.names):
            counts["docs_in"] += 1
            hit = result.removed.get(row["id"])
            if hit is None:
                kept.write(row)
                counts["kept"] += 1
            else:
                gone.write({**row, "duplicate_of": hit[0]})
                counts["removed"] += 1
    if counts["removed"] != len(result.removed):
        raise ValueError(
            f"{len(result.removed)} documents were marked as duplicates but {counts['removed']} "
            "were found: the shards are not the ones the signatures were computed from"
        )
    return counts


# --- the whole stage ------------------------------------------------------------------------------


def _signature_name(shard: Path) -> str:
    """Named by where the shard is published, so a shard read from inside a staging folder (as in
    `domain_corpus`) keeps its name, and its cached signatures, from run to run."""
    return f"{hashlib.blake2b(str(published_path(shard.resolve())).encode(), digest_size=8).hexdigest()}.parquet"


def dedup_corpus(
    input_shards: Sequence[Path],
    out_dir: Path,
    processes: int | None = None,
    config: MinHashConfig | None = None,
    source_priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    signature_cache: Path | None = None,
) -> dict[str, Any]:
    """Signatures (a spawn process pool over shards), then duplicates, then filtering, into `out_dir`:
    `kept/`, `removed/` and `signatures/`, published together in one atomic step (`staged_dir`).

    Signature files of the previous output (`signature_cache`, default `out_dir/signatures`) are carried
    into the new one by hard link and recomputed only where their shard or the MinHash parameters changed;
    those of shards that are no longer inputs are left behind. Returns the stage's statistics, with
    `signatures_computed` / `signatures_cached` telling what the cache saved."""
    cfg = config or MinHashConfig()
    shards = [Path(s) for s in input_shards]
    cache = Path(out_dir) / "signatures" if signature_cache is None else Path(signature_cache)
    with staged_dir(Path(out_dir)) as staging:
        sig_dir = staging / "signatures"
        sig_dir.mkdir()
        outs = [sig_dir / _signature_name(s) for s in shards]
        for out in outs:
            carry(cache / out.name, out)
        jobs = [(str(s), str(o), cfg) for s, o in zip(shards, outs, strict=True)]
        started = time.perf_counter()
        computed = map_shards(_signature_job, jobs, processes)
        signed = time.perf_counter()
        result = find_duplicates(outs, source_priority, verify_threshold)
        found = time.perf_counter()
        counts = apply_dedup(shards, result, staging, shard_bytes)
    return {
        "docs_in": counts["docs_in"],
        "exact_duplicates": result.exact_duplicates,
        "near_duplicates": result.near_duplicates,
        "kept": counts["kept"],
        "removed": counts["removed"],
        "candidate_pairs": result.candidate_pairs,
        "verified_pairs": result.verified_pairs,
        "cluster_sizes": result.cluster_sizes,
        "examples": result.examples,
        "signatures_computed": sum(computed),
        "signatures_cached": len(computed) - sum(computed),
        "minhash": {
            "num_perm": cfg.num_perm,
            "bands": cfg.bands,
            "rows": cfg.rows,
            "ngram": cfg.ngram,
            "lsh_threshold": cfg.threshold,
            "verify_threshold": verify_threshold,
        },
        "seconds": {
            "signatures": signed - started,
            "find_duplicates": found - signed,
            "apply": time.perf_counter() - found,
        },
    }
