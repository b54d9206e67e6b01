"""Encode corpus shards with the SentencePiece tokenizer and pack them into flat token arrays per split.

Shards are the unit of parallel work, as in every stage: every shard of every split is one job for `map_shards`,
so both splits share one pool. A job encodes its shard in batches (long documents cut at spaces where that
provably changes no id, see `Encoder`) and streams the ids to a part file; the parts are then concatenated
in shard order, so the output does not depend on the number of processes and reruns are byte-identical.
"""

from __future__ import annotations

import hashlib
import re
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from fm_pipeline.lake.parallel import map_shards
from fm_pipeline.lake.parquet_io import iter_rows
from fm_pipeline.lake.staging import staged_dir
from fm_pipeline.tokenization.packed import (
    LENGTHS_DTYPE,
    TokenizerMismatchError,
    pack_parts,
    token_dtype,
    tokenizer_checksum,
)
from fm_pipeline.tokenization.spm_model import BPE, parse_model

BATCH_DOCS = 1024
BATCH_BYTES = 4 * 1024 * 1024
CACHE_WORDS = 200_000
MAX_WORD_CHARS = 64
CHUNK_WORDS = 128
"""New words are encoded this many at a time, joined by spaces: one SentencePiece call per word costs about
twice the encoding itself."""
WS = "\u2581"  # SentencePiece's whitespace mark
_SPANS_CUT = re.compile(f"[^{WS}]{WS}")  # a piece holding this could span a cut
# A space after a non-space character; found from the space (a pattern that opens with a lookbehind is tried
# at every position, 1.6x slower).
_CUT_SPACE = re.compile(r" (?<=\S )")
_NOT_PLAIN = re.compile(f"[ {WS}]")  # a word holding one is not encoded in a chunk of words
_MARKS = f" {WS}"  # characters that normalize to `▁`
_MARK_CUT = f"{WS} "  # a typed `▁`, then a cut: the word before it would end with `▁`


@dataclass(frozen=True)
class ShardJob:
    model_path: Path
    checksum: str
    dtype: str
    shard: Path
    tokens_out: Path
    lengths_out: Path


@dataclass
class ShardPart:
    """What one encoded shard adds to its split; the ids themselves are in `tokens_out`."""

    text_bytes: int = 0
    tokens_by_lang: Counter[str] = field(default_factory=Counter)
    bytes_by_lang: Counter[str] = field(default_factory=Counter)
    documents_by_lang: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"text_bytes": self.text_bytes, "tokens_by_lang": dict(self.tokens_by_lang),
                "bytes_by_lang": dict(self.bytes_by_lang), "documents_by_lang": dict(self.documents_by_lang)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardPart:
        return cls(data["text_bytes"], Counter(data["tokens_by_lang"]), Counter(data["bytes_by_lang"]),
                   Counter(data["documents_by_lang"]))


class Encoder:
    """SentencePiece encoding, word by word through a cache, with exactly the ids `sp.encode` gives.

    SentencePiece's BPE keeps a priority queue over the whole input, so long documents encode slowly, and
    every occurrence of a frequent word is merged again. A document is cut at each space that follows a
    non-space character; the space is dropped, the next word's dummy prefix `▁` standing in for it. For a BPE
    model (merges compare piece scores, never sums of them) this changes no id when (1) no vocabulary piece
    holds a `▁` right after another character than `▁`, so no merge can span such a cut (checked once per
    model; true of SentencePiece BPE, whose training splits words there, with or without whitespace-only
    pieces), and (2) the normalized words, joined, equal the normalized document, each word after the first
    starting with `▁` and each before the last not ending with one (checked per document, cheap next to
    encoding). Words then encode independently, so each distinct word is encoded once and its ids cached, as
    GPT-2-style tokenizers do. Other models, and documents failing (2), are encoded whole.
    """

    def __init__(self, proto: bytes, cache_words: int = CACHE_WORDS) -> None:
        self.sp = spm.SentencePieceProcessor(model_proto=proto)
        model = parse_model(proto)
        self.cuttable = model.trainer.model_type == BPE and not any(
            _SPANS_CUT.search(piece.piece) for piece in model.pieces
        )
        spec = model.normalizer
        # Normalizing maps each character on its own (no character map, no whitespace folding): then
        # normalizing the words and joining them gives the normalized document, which needs no check.
        self.local_normalization = (
            not spec.precompiled_charsmap and spec.add_dummy_prefix and spec.escape_whitespaces
            and not spec.remove_extra_whitespaces and not model.trainer.treat_whitespace_as_suffix
        )
        self.cache_words = cache_words
        self.dtype = token_dtype(self.sp.get_piece_size())
        # ids to bytes through `array` (several times cheaper than NumPy for a few ids); its items are native
        code = {2: "H", 4: "I"}[self.dtype.itemsize]
        self._typecode = code if sys.byteorder == "little" and array(code).itemsize == self.dtype.itemsize else None
        self._ids: dict[str, bytes] = {}
        """Each cached word's ids, as the raw bytes of the packed dtype: a document is one `bytes.join`."""
        self._norm: dict[str, str] = {}
        self._alone: set[str] = set()
        """Cached words whose normalized form is empty, lacks the leading `▁` or ends with one: a document
        holding one is encoded whole (kept for models whose normalization is not character by character)."""
        self._added: list[str] = []
        """The words the last batch added to the cache (the only ones `_trim` may have to drop)."""
        self._opens = np.array([self.sp.id_to_piece(i).startswith(WS) for i in range(self.sp.get_piece_size())])
        """Per id: its piece starts with `▁`, so it opens a word."""

    @property
    def cached_words(self) -> int:
        return len(self._ids)

    def _cache(self, words: set[str]) -> None:
        """Encode the words not cached yet. Words longer than MAX_WORD_CHARS are kept for this batch only,
        and a cache that would overflow is emptied first, so memory stays bounded whatever the corpus."""
        missing = list(words.difference(self._ids))
        if len(self._ids) + len(missing) > self.cache_words:
            self._ids, self._norm, self._alone = {}, {}, set()
            missing = list(words)
        self._added = missing
        if self.local_normalization:  # normalized: `▁` + the word with spaces as `▁`
            self._ids.update(self._encode_words(missing))
            return
        for word, ids in zip(missing, self.sp.encode(missing, out_type=int, num_threads=1), strict=True):
            self._ids[word] = self._pack(ids)
            norm = self._norm[word] = self.sp.normalize(word)
            if not norm.startswith(WS) or norm.endswith(WS):
                self._alone.add(word)

    def _encode_words(self, words: list[str]) -> Iterable[tuple[str, bytes]]:
        """(word, packed ids) for a model whose normalization maps characters one by one.

        Words without spaces or `▁` are encoded CHUNK_WORDS at a time, joined by single spaces: that text is
        cut at exactly those spaces, so its ids are each word's ids in turn (the class's argument), each run
        opening with the one piece that holds the word's `▁` prefix. The ids are split before every piece
        starting with `▁`; unless that gives one run per word in every chunk, each word is encoded alone."""
        other = list(filter(_NOT_PLAIN.search, words))
        if "" in words:
            other.append("")
        plain = list(set(words).difference(other)) if other else words
        chunks = [" ".join(plain[i : i + CHUNK_WORDS]) for i in range(0, len(plain), CHUNK_WORDS)]
        encoded = self.sp.encode(chunks, out_type=int, num_threads=1)
        flat = np.fromiter(chain.from_iterable(encoded), dtype=np.int64)
        firsts = np.cumsum([0, *map(len, encoded)])[:-1]
        opens = self._opens[flat]
        sizes = np.diff([*range(0, len(plain), CHUNK_WORDS), len(plain)])
        if len(plain) and not (opens[firsts].all() and np.array_equal(np.add.reduceat(opens, firsts), sizes)):
            other, plain, slices = words, [], []
        else:
            packed = flat.astype(self.dtype).tobytes()
            bounds = [*(np.flatnonzero(opens) * self.dtype.itemsize).tolist(), len(packed)]
            slices = [packed[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        alone = map(self._pack, self.sp.encode(other, out_type=int, num_threads=1))
        return chain(zip(plain, slices, strict=True), zip(other, alone, strict=True))

    def _pack(self, ids: list[int]) -> bytes:
        if self._typecode is None:
            return np.array(ids, dtype=self.dtype).tobytes()
        return array(self._typecode, ids).tobytes()

    def _trim(self) -> None:
        """After a batch: drop the long words it added, and everything when a batch alone overfilled the cache."""
        if len(self._ids) > self.cache_words:
            self._ids, self._norm, self._alone = {}, {}, set()
            return
        for word in self._added:
            if len(word) > MAX_WORD_CHARS:
                del self._ids[word]
                self._norm.pop(word, None)
                self._alone.discard(word)

    def encode_bytes(self, texts: list[str]) -> list[bytes]:
        """Token ids per text, without BOS/EOS, as raw bytes of `self.dtype`: exactly the ids `sp.encode`
        gives."""
        if not self.cuttable:
            return [self._pack(ids) for ids in self.sp.encode(texts, out_type=int)]
        splits = [_CUT_SPACE.split(text) if "  " in text or text[:1] == " " else text.split(" ") for text in texts]
        words = set().union(*(w for w in splits if len(w) > 1))
        self._cache(words)
        ids_of, norm_of, alone, normalize = self._ids, self._norm, self._alone, self.sp.normalize
        local = self.local_normalization
        out: list[bytes] = []
        whole: list[int] = []
        for i, (text, split) in enumerate(zip(texts, splits, strict=True)):
            # Words after the first start with `▁` and words before the last do not end with one (`alone`
            # is stricter: no cached word may), and the words joined give the document: checked in C calls.
            # Normalized character by character, a word ends with `▁` when the text ends with a space or `▁`
            # (the cuts follow non-spaces) or has a typed `▁` before a cut.
            if len(split) > 1 and (
                text[-1] not in _MARKS and _MARK_CUT not in text if local
                else alone.isdisjoint(split) and "".join(map(norm_of.__getitem__, split)) == normalize(text)
            ):
                out.append(b"".join(map(ids_of.__getitem__, split)))
            else:
                out.append(b"")
                whole.append(i)
        self._trim()
        for i, ids in zip(whole, self.sp.encode([texts[i] for i in whole], out_type=int, num_threads=1), strict=True):
            out[i] = self._pack(ids)
        return out

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, without BOS/EOS, exactly as `sp.encode(texts)` gives them."""
        return [np.frombuffer(b, dtype=self.dtype).tolist() for b in self.encode_bytes(texts)]


_ENCODERS: dict[str, Encoder] = {}


def _encoder(model_path: Path, checksum: str) -> Encoder:
    """The tokenizer, loaded once per process; refuses a model file that changed since the run began, so the
    checksum written in the header is the one of the model that produced every id."""
    proto = Path(model_path).read_bytes()
    actual = hashlib.sha256(proto).hexdigest()
    if actual != checksum:
        raise TokenizerMismatchError(f"{model_path} changed during encoding: sha256 {actual}, expected {checksum}")
    if checksum not in _ENCODERS:
        _ENCODERS[checksum] = Encoder(proto)
    return _ENCODERS[checksum]


def _batches(shard: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(texts, langs) in batches bounded by documents and bytes, so a worker's memory stays small."""
    texts: list[str] = []
    langs: list[str] = []
    size = 0
    for row in iter_rows([shard], columns=["text", "lang"]):
        texts.append(row["text"])
        langs.append(row["lang"])
        size += len(row["text"])
        if len(texts) >= BATCH_DOCS or size >= BATCH_BYTES:
            yield texts, langs
            texts, langs, size = [], [], 0
    if texts:
        yield texts, langs


def encode_shard(job: ShardJob) -> ShardPart:
    """Encode one shard, each document framed by BOS ... EOS, into a raw token file and a raw lengths file.

    One thread per worker: parallelism comes from shards, so `processes` is the number of cores used.
    """
    encoder = _encoder(job.model_path, job.checksum)
    dtype = np.dtype(job.dtype)
    if dtype != encoder.dtype:
        raise ValueError(f"{job.model_path} packs ids as {encoder.dtype}, the job asks for {dtype}")
    bos, eos = (np.array([i], dtype=dtype).tobytes() for i in (encoder.sp.bos_id(), encoder.sp.eos_id()))
    part = ShardPart()
    with job.tokens_out.open("wb") as tokens_f, job.lengths_out.open("wb") as lengths_f:
        for texts, langs in _batches(job.shard):
            encoded = encoder.encode_bytes(texts)
            lengths = np.fromiter((len(b) // dtype.itemsize + 2 for b in encoded), dtype=LENGTHS_DTYPE,
                                  count=len(encoded))
            tokens_f.write(b"".join(chain.from_iterable((bos, b, eos) for b in encoded)))
            lengths.tofile(lengths_f)
            for text, lang, length in zip(texts, langs, lengths.tolist(), strict=True):
                size = len(text.encode("utf-8"))
                part.tokens_by_lang[lang] += length
                part.bytes_by_lang[lang] += size
                part.documents_by_lang[lang] += 1
                part.text_bytes += size
    return part


def _bytes_per_token(text_bytes: int, tokens: int, documents: int) -> float:
    """UTF-8 bytes per text token: BOS/EOS are left out, so short documents do not skew the ratio."""
    text_tokens = tokens - 2 * documents
    return round(text_bytes / text_tokens, 4) if text_tokens else 0.0


def open_tokenizer(model_path: Path, checksum: str | None = None) -> tuple[str, spm.SentencePieceProcessor, np.dtype]:
    """(sha256, processor, token dtype) of a model that can frame documents; with `checksum`, refuses a model
    file that is not that one (it changed since encoding was planned)."""
    model_path = Path(model_path)
    checksum = checksum or tokenizer_checksum(model_path)
    sp = _encoder(model_path, checksum).sp
    if sp.bos_id() < 0 or sp.eos_id() < 0:
        raise ValueError(f"{model_path} has no BOS/EOS pieces to frame documents with")
    return checksum, sp, token_dtype(sp.get_piece_size())


def pack_split(folder: Path, split: str, files: Sequence[tuple[Path, Path]], parts: Sequence[ShardPart],
               sp: spm.SentencePieceProcessor, checksum: str) -> dict[str, Any]:
    """Pack one split's encoded shards (token file, lengths file), in order, into `folder` (`packed.pack_parts`)
    with their counts in the header; returns the split's stats (see `encode_corpus`)."""
    total = ShardPart()
    for part in parts:
        total.text_bytes += part.text_bytes
        total.tokens_by_lang.update(part.tokens_by_lang)
        total.bytes_by_lang.update(part.bytes_by_lang)
        total.documents_by_lang.update(part.documents_by_lang)
    header = pack_parts(folder, split, files, {
        "dtype": token_dtype(sp.get_piece_size()).name,
        "vocab_size": sp.get_piece_size(),
        "tokenizer_sha256": checksum,
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "text_bytes": total.text_bytes,
        "tokens_by_lang": dict(sorted(total.tokens_by_lang.items())),
        "bytes_by_lang": dict(sorted(total.bytes_by_lang.items())),
        "documents_by_lang": dict(sorted(total.documents_by_lang.items())),
    })
    return {
        "tokens": header["tokens"],
        "documents": header["documents"],
        "text_bytes": total.text_bytes,
        "bytes_per_token": _bytes_per_token(total.text_bytes, header["tokens"], header["documents"]),
        "tokens_by_lang": header["tokens_by_lang"],
        "bytes_per_token_by_lang": {
            lang: _bytes_per_token(total.bytes_by_lang[lang], n, total.documents_by_lang[lang])
            for lang, n in header["tokens_by_lang"].items()
        },
    }


def encode_corpus(
    model_path: Path, shards_by_split: dict[str, list[Path]], out_dir: Path, processes: int | None = None
) -> dict[str, Any]:
    """Tokenize every split's shards into `out_dir/<split>.{bin,idx.npy,json}` (see `packed`), in one step.

    `out_dir` is built in a staging folder and swapped in whole, so readers never see a half-written split.
    Returns per split: tokens, documents, text_bytes, bytes_per_token, tokens_by_lang and
    bytes_per_token_by_lang. `tokenization.encode_groups` runs the same stage as one step per group of shards.
    """
    model_path = Path(model_path)
    checksum, sp, dtype = open_tokenizer(model_path)
    stats: dict[str, Any] = {}
    with staged_dir(Path(out_dir)) as staging:
        work = staging / ".parts"
        work.mkdir()
        jobs_by_split = {
            split: [
                ShardJob(model_path, checksum, dtype.str, Path(shard), work / f"{s}-{i:05d}.bin",
                         work / f"{s}-{i:05d}.len")
                for i, shard in enumerate(shards)
            ]
            for s, (split, shards) in enumerate(shards_by_split.items())
        }
        results = iter(map_shards(encode_shard, [job for jobs in jobs_by_split.values() for job in jobs], processes))
        for split, split_jobs in jobs_by_split.items():
            parts = [next(results) for _ in split_jobs]
            files = [(job.tokens_out, job.lengths_out) for job in split_jobs]
            stats[split] = pack_split(staging, split, files, parts, sp, checksum)
            for job in split_jobs:
                job.tokens_out.unlink()
                job.lengths_out.unlink()
        work.rmdir()
    return stats
