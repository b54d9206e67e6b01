"""Vocabulary expansion: frequent domain terms that the base tokenizer splits into many pieces become pieces
of their own, and the model grows an embedding (and output) row for each.

Terms are found by training a small SentencePiece model on the domain text: its word pieces are what the
domain uses often enough to merge; those the base tokenizer cuts into at least `min_base_pieces` pieces,
seen at least `min_term_count` times as whole words, ranked by the tokens they save (count × (pieces - 1)).

The new pieces are appended to a copy of the base model as USER_DEFINED pieces: SentencePiece matches those
before BPE merging, so a term encodes as one piece wherever a word starts with it, and no BPE merge path
(scores, intermediate pieces) is needed. Protobuf allows a repeated field's elements anywhere in a message,
so appending serialized pieces to the file's bytes keeps every old piece, id and setting untouched (the
generated `sentencepiece_model_pb2` cannot be imported beside the protobuf runtime Dagster pins).

A new row starts as the mean of the rows of the pieces the term used to split into, so the model's
first guess for a new token is what it made of the old pieces (Hewitt 2021; as in most vocabulary transfer).
"""

from __future__ import annotations

import io
import re
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.lake.atomic import atomic_write_bytes
from fm_pipeline.tokenization.spm_model import PieceType
from fm_pipeline.tokenization.train import sentences

WS = "\u2581"  # SentencePiece's whitespace mark
_WORD = re.compile(r"\w+(?:[-']\w+)*")
_WORD_AFTER_SPACE = re.compile(WS + r"(\w+(?:[-']\w+)*)")


@dataclass(frozen=True)
class Term:
    piece: str
    """The new piece, `▁` + the term as the base tokenizer normalizes it."""
    count: int
    """Whole-word occurrences in the domain text."""
    base_ids: tuple[int, ...]
    """The base tokenizer's pieces for the term, whose rows the new row averages."""

    @property
    def saved(self) -> int:
        """Tokens the term saves over the text it was counted on."""
        return self.count * (len(self.base_ids) - 1)


def train_domain_model(texts: Iterable[str], vocab_size: int) -> spm.SentencePieceProcessor:
    """A BPE SentencePiece model of the domain text (single-threaded, so deterministic); `vocab_size` is a soft
    limit, as a small corpus may not support it."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=(s for text in texts for s in sentences(text)), model_writer=buf, model_type="bpe",
        vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0, normalization_rule_name="identity",
        num_threads=1, minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=buf.getvalue())


def word_counts(base: spm.SentencePieceProcessor, texts: Iterable[str]) -> Counter[str]:
    """Words that start a piece sequence (after a space or at the text's start) in the base tokenizer's
    normalized text: where a `▁term` piece can match."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_WORD_AFTER_SPACE.findall(base.normalize(text)))
    return counts


def find_terms(
    base: spm.SentencePieceProcessor, texts: Sequence[str], max_terms: int = 500, min_count: int = 3,
    min_base_pieces: int = 3, domain_vocab_size: int = 4000,
) -> list[Term]:
    """The domain terms worth a piece, most tokens saved first (ties by piece, so the list is deterministic)."""
    if not any(text.strip() for text in texts):
        return []
    domain = train_domain_model(texts, domain_vocab_size)
    counts = word_counts(base, texts)
    terms: dict[str, Term] = {}
    for i in range(domain.get_piece_size()):
        body = domain.id_to_piece(i)
        if not body.startswith(WS) or not _WORD.fullmatch(body[1:]) or not any(c.isalpha() for c in body):
            continue
        piece = base.normalize(body[1:])
        if not piece.startswith(WS) or piece in terms or _in_vocab(base, piece):
            continue
        ids = tuple(base.encode(body[1:]))
        count = counts[piece[1:]]
        if count >= min_count and len(ids) >= min_base_pieces:
            terms[piece] = Term(piece, count, ids)
    return sorted(terms.values(), key=lambda t: (-t.saved, t.piece))[:max_terms]


def _in_vocab(sp: spm.SentencePieceProcessor, piece: str) -> bool:
    return sp.id_to_piece(sp.piece_to_id(piece)) == piece


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _piece_record(piece: str, score: float, kind: PieceType) -> bytes:
    """`ModelProto.pieces` (field 1) holding `SentencePiece{piece = 1, score = 2, type = 3}`."""
    text = piece.encode("utf-8")
    body = b"\x0a" + _varint(len(text)) + text + b"\x15" + struct.pack("<f", score) + b"\x18" + _varint(kind)
    return b"\x0a" + _varint(len(body)) + body


def extend_tokenizer(base_path: Path, pieces: Sequence[str], out_path: Path) -> spm.SentencePieceProcessor:
    """A copy of the tokenizer at `base_path` with `pieces` appended as USER_DEFINED pieces (ids from the old
    size up, in order), written atomically to `out_path`. Checks that every old id keeps its piece and that
    each new piece encodes as itself alone."""
    proto = Path(base_path).read_bytes()
    old = spm.SentencePieceProcessor(model_proto=proto)
    proto += b"".join(_piece_record(p, 0.0, PieceType.USER_DEFINED) for p in pieces)
    new = spm.SentencePieceProcessor(model_proto=proto)
    n = old.get_piece_size()
    if new.get_piece_size() != n + len(pieces):
        raise ValueError(f"expected {n + len(pieces)} pieces after expansion, got {new.get_piece_size()}")
    changed = [i for i in range(n) if new.id_to_piece(i) != old.id_to_piece(i)]
    if changed:
        raise ValueError(f"expansion changed old ids {changed[:5]}")
    for i, piece in enumerate(pieces, start=n):
        if new.encode(piece[1:] if piece.startswith(WS) else piece) != [i]:
            raise ValueError(f"new piece {piece!r} does not encode as id {i}")
    atomic_write_bytes(Path(out_path), proto)
    return new


def _grown(weight: torch.Tensor, sources: Sequence[Sequence[int]]) -> nn.Parameter:
    rows = [weight[list(ids)].mean(dim=0) for ids in sources]
    return nn.Parameter(torch.cat((weight.detach(), torch.stack(rows).to(weight.dtype))) if rows else weight.detach())


@torch.no_grad()
def grow_vocabulary(model: nn.Module, sources: Sequence[Sequence[int]]) -> None:
    """Append one token per entry of `sources` to the model's embedding and output matrices, in place: row i
    of the new tokens is the mean of the rows `sources[i]`, old rows are kept bit for bit, a tied output
    projection stays tied, and `model.config.vocab_size` follows."""
    tokens: nn.Embedding = model.embed.tokens
    weight = _grown(tokens.weight, sources)
    vocab, d = weight.shape
    embedding = nn.Embedding(vocab, d, device=weight.device, dtype=weight.dtype)
    embedding.weight = weight
    model.embed.tokens = embedding
    head = nn.Linear(d, vocab, bias=False, device=weight.device, dtype=weight.dtype)
    head.weight = weight if model.config.tie_embeddings else _grown(model.head.weight, sources)
    model.head = head
    model.config = replace(model.config, vocab_size=vocab)


def tokens_per_word(sp: spm.SentencePieceProcessor, texts: Iterable[str]) -> float:
    """Tokens over whitespace-separated words: the domain's fertility under `sp`."""
    tokens = words = 0
    for text in texts:
        tokens += len(sp.encode(text))
        words += len(text.split())
    return tokens / words if words else float("nan")
