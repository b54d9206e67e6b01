"""MinHash maths: text normalization, shingles, their hashes, signatures and LSH band hashes.

Kept apart from file and cluster handling because it is pure numpy over strings: the part that must stay
bit-identical to datasketch, and the part the benchmarks time on its own.

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
documents (J = 0.4: 52%), which the verification in `clusters` removes. `MinHashConfig(bands=14)` gives
the datatrove layout back.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fm_pipeline.curation.words import is_spaceless

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


def band_hashes(sig: np.ndarray, cfg: MinHashConfig) -> np.ndarray:
    """One 64-bit hash per band (docs x bands): documents share a bucket when a whole band agrees."""
    bands = sig.reshape(len(sig), cfg.bands, cfg.rows).astype(_U64)
    h = np.zeros((len(sig), cfg.bands), dtype=_U64)
    for r in range(cfg.rows):
        h = _splitmix64(h + bands[:, :, r] + _POLY)
    return h
