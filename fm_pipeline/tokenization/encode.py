"""Encode corpus shards with the SentencePiece tokenizer and pack them into flat token arrays per split.

Shards are the unit of parallel work (DESIGN.md): every shard of every split is one job for `map_shards`,
so both splits share one pool. A job encodes its shard in batches (long documents cut at spaces where that
provably changes no id, see `Encoder`) and streams the ids to a part file; the parts are then concatenated
in shard order, so the output does not depend on the number of processes and reruns are byte-identical.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from fm_pipeline.curation.parallel import map_shards
from fm_pipeline.curation.parquet_io import iter_rows, staged_dir
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
CUT_CHARS = 2048
WS = "\u2581"  # SentencePiece's whitespace mark
_SPANS_CUT = re.compile(f"[^{WS}]{WS}")  # a piece holding this could span a cut
_CUT_SPACE = re.compile(r"(?<=\S) ")


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


class Encoder:
    """SentencePiece encoding, with long documents cut into pieces at spaces and encoded piece by piece.

    SentencePiece's BPE keeps a priority queue over the whole input, so a 1 MB book encodes 3x slower than the
    same text in 2 KB pieces. A document is cut at spaces that follow a non-space character; each space is
    dropped, the next piece's dummy prefix `▁` standing in for it. For a BPE model (merges compare piece
    scores, never sums of them) this changes no id when (1) no vocabulary piece holds a `▁` right after
    another character than `▁`, so no merge can span such a cut (checked once per model; true of SentencePiece
    BPE, whose training splits words there, with or without whitespace-only pieces), and (2) the normalized
    pieces, joined, equal the normalized document, each piece after the first starting with `▁` and each
    before the last not ending with one (checked per document, cheap next to encoding). Other models, and
    documents failing (2), are encoded whole.
    """

    def __init__(self, proto: bytes) -> None:
        self.sp = spm.SentencePieceProcessor(model_proto=proto)
        model = parse_model(proto)
        self.cuttable = model.trainer.model_type == BPE and not any(
            _SPANS_CUT.search(piece.piece) for piece in model.pieces
        )

    def cut(self, text: str) -> list[str]:
        """`text` in pieces of about CUT_CHARS characters (the spaces cut at left out), or whole where cutting
        could change an id."""
        if not self.cuttable or len(text) <= 2 * CUT_CHARS:
            return [text]
        pieces, start = [], 0
        while len(text) - start > 2 * CUT_CHARS:
            space = _CUT_SPACE.search(text, start + CUT_CHARS)
            if space is None:
                break
            pieces.append(text[start : space.start()])
            start = space.end()
        pieces.append(text[start:])
        normalized = [self.sp.normalize(p) for p in pieces]
        if (
            all(n.startswith(WS) for n in normalized[1:])
            and all(n and not n.endswith(WS) for n in normalized[:-1])
            and "".join(normalized) == self.sp.normalize(text)
        ):
            return pieces
        return [text]

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, without BOS/EOS, exactly as `sp.encode(texts)` gives them."""
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        for text in texts:
            text_pieces = self.cut(text)
            spans.append((len(pieces), len(pieces) + len(text_pieces)))
            pieces += text_pieces
        encoded = self.sp.encode(pieces, out_type=int, num_threads=1)
        return [encoded[lo] if hi == lo + 1 else list(chain.from_iterable(encoded[lo:hi])) for lo, hi in spans]


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
    framing = (encoder.sp.bos_id(),), (encoder.sp.eos_id(),)
    dtype = np.dtype(job.dtype)
    part = ShardPart()
    with job.tokens_out.open("wb") as tokens_f, job.lengths_out.open("wb") as lengths_f:
        for texts, langs in _batches(job.shard):
            encoded = encoder.encode(texts)
            lengths = np.fromiter((len(ids) + 2 for ids in encoded), dtype=LENGTHS_DTYPE, count=len(encoded))
            n = int(lengths.sum())
            framed = chain.from_iterable((framing[0], ids, framing[1]) for ids in encoded)
            np.fromiter(chain.from_iterable(framed), dtype=dtype, count=n).tofile(tokens_f)
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


def encode_corpus(
    model_path: Path, shards_by_split: dict[str, list[Path]], out_dir: Path, processes: int | None = None
) -> dict[str, Any]:
    """Tokenize every split's shards into `out_dir/<split>.{bin,idx.npy,json}` (see `packed`).

    `out_dir` is built in a staging folder and swapped in whole, so readers never see a half-written split.
    Returns per split: tokens, documents, text_bytes, bytes_per_token, tokens_by_lang and
    bytes_per_token_by_lang.
    """
    model_path = Path(model_path)
    checksum = tokenizer_checksum(model_path)
    sp = _encoder(model_path, checksum).sp
    if sp.bos_id() < 0 or sp.eos_id() < 0:
        raise ValueError(f"{model_path} has no BOS/EOS pieces to frame documents with")
    vocab_size = sp.get_piece_size()
    dtype = token_dtype(vocab_size)
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
            total = ShardPart()
            for part in parts:
                total.text_bytes += part.text_bytes
                total.tokens_by_lang.update(part.tokens_by_lang)
                total.bytes_by_lang.update(part.bytes_by_lang)
                total.documents_by_lang.update(part.documents_by_lang)
            header = pack_parts(
                staging,
                split,
                [(job.tokens_out, job.lengths_out) for job in split_jobs],
                {
                    "dtype": dtype.name,
                    "vocab_size": vocab_size,
                    "tokenizer_sha256": checksum,
                    "bos_id": sp.bos_id(),
                    "eos_id": sp.eos_id(),
                    "text_bytes": total.text_bytes,
                    "tokens_by_lang": dict(sorted(total.tokens_by_lang.items())),
                    "bytes_by_lang": dict(sorted(total.bytes_by_lang.items())),
                    "documents_by_lang": dict(sorted(total.documents_by_lang.items())),
                },
            )
            stats[split] = {
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
            for job in split_jobs:
                job.tokens_out.unlink()
                job.lengths_out.unlink()
        work.rmdir()
    return stats
