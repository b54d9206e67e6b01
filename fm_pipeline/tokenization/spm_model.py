"""Read a SentencePiece `.model` file (a serialized `ModelProto`) without `sentencepiece_model_pb2`.

The generated module shipped with the sentencepiece wheel requires a newer protobuf runtime than the one
Dagster and MLflow pin, so importing it fails in this environment. The few fields the export and the vocab
file need are read here straight from the protobuf wire format (varints, 32-bit floats, length-delimited
fields), which has been stable since proto2; unknown fields are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any


class PieceType(IntEnum):
    """`ModelProto.SentencePiece.Type`."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


BPE = 2  # TrainerSpec.ModelType.BPE


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: PieceType


@dataclass(frozen=True)
class NormalizerSpec:
    """`NormalizerSpec`, with the proto's defaults for fields the model leaves unset."""

    name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


@dataclass(frozen=True)
class TrainerFlags:
    """The `TrainerSpec` fields that decide how text is encoded (proto defaults when unset)."""

    model_type: int = 1
    vocab_size: int = 8000
    treat_whitespace_as_suffix: bool = False
    allow_whitespace_only_pieces: bool = False
    byte_fallback: bool = False


@dataclass(frozen=True)
class SpmModel:
    pieces: list[Piece]
    normalizer: NormalizerSpec = field(default_factory=NormalizerSpec)
    trainer: TrainerFlags = field(default_factory=TrainerFlags)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) pairs of one message: ints for varints, floats for fixed32, bytes for LEN."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 5:
            yield number, struct.unpack_from("<f", buf, i)[0]
            i += 4
        elif wire == 1:
            i += 8
        elif wire == 2:
            size, i = _varint(buf, i)
            yield number, buf[i : i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in a SentencePiece model")


def parse_model(data: bytes) -> SpmModel:
    """The pieces, normalizer spec and encoding-relevant trainer flags of a serialized ModelProto."""
    pieces: list[Piece] = []
    normalizer = NormalizerSpec()
    trainer = TrainerFlags()
    for number, value in _fields(data):
        if number == 1:
            attrs = dict(_fields(value))
            pieces.append(Piece(attrs.get(1, b"").decode("utf-8"), float(attrs.get(2, 0.0)),
                                PieceType(attrs.get(3, PieceType.NORMAL))))
        elif number == 2:
            attrs = dict(_fields(value))
            trainer = TrainerFlags(
                model_type=int(attrs.get(3, 1)),
                vocab_size=int(attrs.get(4, 8000)),
                treat_whitespace_as_suffix=bool(attrs.get(24, False)),
                allow_whitespace_only_pieces=bool(attrs.get(26, False)),
                byte_fallback=bool(attrs.get(35, False)),
            )
        elif number == 3:
            attrs = dict(_fields(value))
            normalizer = NormalizerSpec(
                name=attrs.get(1, b"").decode("utf-8"),
                precompiled_charsmap=bytes(attrs.get(2, b"")),
                add_dummy_prefix=bool(attrs.get(3, True)),
                remove_extra_whitespaces=bool(attrs.get(4, True)),
                escape_whitespaces=bool(attrs.get(5, True)),
            )
    return SpmModel(pieces, normalizer, trainer)


def read_model(path: Path) -> SpmModel:
    return parse_model(Path(path).read_bytes())


_VOCAB_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def vocab_text(model: SpmModel) -> str:
    r"""The `.vocab` file: spm_train's layout, one `piece<TAB>score` line per id with the score as C++ prints a
    float (`%g`). Unlike spm_train, backslash, tab, CR and LF inside a piece are written as `\\`, `\t`, `\r`,
    `\n`: pieces here can hold line breaks, and raw ones would break the one-line-per-id reading."""
    return "".join(f"{p.piece.translate(_VOCAB_ESCAPES)}\t{p.score:g}\n" for p in model.pieces)
