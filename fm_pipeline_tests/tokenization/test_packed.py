"""The packed token format on its own: parts concatenate in order with correct offsets, files open as memory
maps, ids above 65,535 survive in uint32 files, and a header from another tokenizer is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fm_pipeline.tokenization.packed import (
    PackedTokens,
    TokenizerMismatchError,
    bin_path,
    header_path,
    pack_parts,
    token_dtype,
    tokenizer_checksum,
)

SHA = "a" * 64


def _write_part(folder: Path, name: str, docs: list[list[int]], dtype: np.dtype) -> tuple[Path, Path]:
    tokens, lengths = folder / f"{name}.bin", folder / f"{name}.len"
    np.array([t for d in docs for t in d], dtype=dtype).tofile(tokens)
    np.array([len(d) for d in docs], dtype="<u8").tofile(lengths)
    return tokens, lengths


def _pack(folder: Path, parts_docs: list[list[list[int]]], vocab_size: int) -> dict:
    dtype = token_dtype(vocab_size)
    parts = [_write_part(folder, f"p{i}", docs, dtype) for i, docs in enumerate(parts_docs)]
    return pack_parts(
        folder / "out",
        "train",
        parts,
        {"dtype": dtype.name, "vocab_size": vocab_size, "tokenizer_sha256": SHA, "bos_id": 2, "eos_id": 3},
    )


def test_token_dtype_fits_the_vocabulary() -> None:
    assert token_dtype(800) == np.dtype("<u2")
    assert token_dtype(65536) == np.dtype("<u2")  # ids 0..65535
    assert token_dtype(65537) == np.dtype("<u4")
    assert token_dtype(256_000) == np.dtype("<u4")


def test_parts_concatenate_in_order_with_offsets(tmp_path: Path) -> None:
    docs = [[[2, 10, 11, 3], [2, 3]], [], [[2, 12, 13, 14, 3]]]
    header = _pack(tmp_path, docs, vocab_size=800)
    assert header["tokens"] == 11 and header["documents"] == 3 and header["dtype"] == "uint16"

    packed = PackedTokens.open(tmp_path / "out", "train")
    assert isinstance(packed.tokens, np.memmap) and isinstance(packed.offsets, np.memmap)
    assert packed.tokens.dtype == np.dtype("<u2") and packed.offsets.dtype == np.dtype("<u8")
    assert packed.offsets.tolist() == [0, 4, 6, 11]
    assert len(packed) == 3 and packed.num_tokens == 11
    flat = [d for part in docs for d in part]
    assert [packed.document(i).tolist() for i in range(len(packed))] == flat
    assert bin_path(tmp_path / "out", "train").stat().st_size == 11 * 2
    with pytest.raises(IndexError):
        packed.document(3)

    on_disk = json.loads(header_path(tmp_path / "out", "train").read_text())
    assert on_disk == header
    assert on_disk["format"] == "fm-pipeline-tokens" and on_disk["version"] == 1
    assert on_disk["offsets_file"] == "train.idx.npy"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_large_vocabulary_ids_survive_in_uint32(tmp_path: Path) -> None:
    docs = [[[2, 65535, 65536, 199_999, 3]]]
    _pack(tmp_path, docs, vocab_size=200_000)
    packed = PackedTokens.open(tmp_path / "out", "train")
    assert packed.header["dtype"] == "uint32" and packed.tokens.dtype == np.dtype("<u4")
    assert packed.document(0).tolist() == docs[0][0]


def test_empty_split_opens(tmp_path: Path) -> None:
    _pack(tmp_path, [], vocab_size=800)
    packed = PackedTokens.open(tmp_path / "out", "train")
    assert len(packed) == 0 and packed.num_tokens == 0 and packed.offsets.tolist() == [0]


def test_other_tokenizer_is_refused(tmp_path: Path) -> None:
    _pack(tmp_path, [[[2, 5, 3]]], vocab_size=800)
    PackedTokens.open(tmp_path / "out", "train", expected_checksum=SHA)
    with pytest.raises(TokenizerMismatchError) as err:
        PackedTokens.open(tmp_path / "out", "train", expected_checksum="b" * 64)
    assert SHA in str(err.value) and "b" * 64 in str(err.value)


def test_truncated_token_file_is_refused(tmp_path: Path) -> None:
    _pack(tmp_path, [[[2, 5, 6, 3]]], vocab_size=800)
    path = bin_path(tmp_path / "out", "train")
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match="header says 4 tokens"):
        PackedTokens.open(tmp_path / "out", "train")


def test_parts_whose_lengths_disagree_are_refused(tmp_path: Path) -> None:
    tokens, lengths = _write_part(tmp_path, "p0", [[2, 5, 3]], np.dtype("<u2"))
    np.array([4], dtype="<u8").tofile(lengths)
    with pytest.raises(ValueError, match="lengths sum"):
        pack_parts(tmp_path / "out", "train", [(tokens, lengths)], {"dtype": "uint16", "tokenizer_sha256": SHA})


def test_checksum_follows_the_model_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.model", tmp_path / "b.model"
    a.write_bytes(b"model one")
    b.write_bytes(b"model one")
    assert tokenizer_checksum(a) == tokenizer_checksum(b)
    b.write_bytes(b"model two")
    assert tokenizer_checksum(a) != tokenizer_checksum(b)
    assert tokenizer_checksum(a) == hashlib.sha256(b"model one").hexdigest()
