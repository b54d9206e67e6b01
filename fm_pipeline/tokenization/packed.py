"""The on-disk format of a tokenized split: flat token ids, document offsets and a small JSON header.

Per split, in one folder:

- `<split>.bin`: every document's token ids (framed by BOS ... EOS) back to back, raw little-endian,
  `uint16` when the vocabulary fits, `uint32` otherwise, so training can `numpy.memmap` it whatever its size;
- `<split>.idx.npy`: `uint64` document start offsets, `documents + 1` long, the last one the token count;
- `<split>.json`: the header (dtype, vocabulary size, counts, the tokenizer's checksum). Offsets live in the
  `.npy` rather than inline, so the header stays small for big corpora.

The tokenizer checksum in the header is what lets training refuse a token file made by another tokenizer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fm_pipeline.lake.atomic import atomic_path, atomic_write_bytes
from fm_pipeline.lake.fingerprint import file_sha256

FORMAT = "fm-pipeline-tokens"
VERSION = 1
LENGTHS_DTYPE = np.dtype("<u8")


class TokenizerMismatchError(ValueError):
    """A token file was made by a different tokenizer than the one the caller is using."""


def tokenizer_checksum(model_path: Path) -> str:
    """sha256 of the tokenizer.model bytes: any change to the tokenizer changes the token ids it produces."""
    return file_sha256(model_path)


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest little-endian unsigned dtype holding every id: half the disk and I/O for vocabularies
    up to 65,536."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def bin_path(folder: Path, split: str) -> Path:
    return Path(folder) / f"{split}.bin"


def offsets_path(folder: Path, split: str) -> Path:
    return Path(folder) / f"{split}.idx.npy"


def header_path(folder: Path, split: str) -> Path:
    return Path(folder) / f"{split}.json"


def pack_parts(folder: Path, split: str, parts: Sequence[tuple[Path, Path]], header: dict[str, Any]) -> dict[str, Any]:
    """Concatenate per-shard parts, in order, into `<split>.bin`, `<split>.idx.npy` and `<split>.json`.

    Each part is (raw token file in the split's dtype, raw `uint64` document lengths). Parts are streamed one
    at a time, so memory is bounded by the largest part's lengths, never the split. `header` carries the
    fields the encoder knows (dtype, vocab_size, tokenizer_sha256, bos_id, eos_id, per-language counts...);
    format, version, counts and the offsets file name are added here. Every file is written under a
    temporary name and renamed into place. Returns the header as written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(header["dtype"]).newbyteorder("<")
    documents = sum(lengths.stat().st_size // LENGTHS_DTYPE.itemsize for _, lengths in parts)

    offsets_final = offsets_path(folder, split)
    # the inner block exits first: the token file is renamed into place, then the offsets
    with atomic_path(offsets_final) as offsets_tmp, atomic_path(bin_path(folder, split)) as tokens_tmp:
        offsets = np.lib.format.open_memmap(offsets_tmp, mode="w+", dtype=LENGTHS_DTYPE, shape=(documents + 1,))
        offsets[0] = 0
        total, doc = 0, 0
        with tokens_tmp.open("wb") as out:
            for tokens_part, lengths_part in parts:
                lengths = np.fromfile(lengths_part, dtype=LENGTHS_DTYPE)
                part_tokens = tokens_part.stat().st_size // dtype.itemsize
                if int(lengths.sum()) != part_tokens:
                    raise ValueError(f"{tokens_part}: {part_tokens} tokens but its document lengths sum to "
                                     f"{lengths.sum()}")
                offsets[doc + 1 : doc + 1 + len(lengths)] = total + np.cumsum(lengths, dtype=LENGTHS_DTYPE)
                with tokens_part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
                total += part_tokens
                doc += len(lengths)
        offsets.flush()
        del offsets

    written = {
        **header,
        "format": FORMAT,
        "version": VERSION,
        "dtype": dtype.name,
        "tokens": total,
        "documents": documents,
        "offsets_file": offsets_final.name,
    }
    atomic_write_bytes(header_path(folder, split), (json.dumps(written, indent=2, sort_keys=True) + "\n").encode())
    return written


class PackedTokens:
    """A tokenized split opened read-only through memory maps: opening costs the header, not the tokens."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, header: dict[str, Any]) -> None:
        self.tokens = tokens
        self.offsets = offsets
        self.header = header

    @classmethod
    def open(cls, folder: Path, split: str, expected_checksum: str | None = None) -> PackedTokens:
        """Open `<folder>/<split>.*`; with `expected_checksum`, refuse a file made by another tokenizer."""
        folder = Path(folder)
        header = json.loads(header_path(folder, split).read_text(encoding="utf-8"))
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"{header_path(folder, split)}: not a {FORMAT} v{VERSION} header")
        if expected_checksum is not None and header["tokenizer_sha256"] != expected_checksum:
            raise TokenizerMismatchError(
                f"{folder / split}: tokens were made by tokenizer sha256 {header['tokenizer_sha256']}, "
                f"but the tokenizer in use has sha256 {expected_checksum}; re-tokenize the corpus"
            )
        dtype = np.dtype(header["dtype"]).newbyteorder("<")
        n = int(header["tokens"])
        path = bin_path(folder, split)
        if path.stat().st_size != n * dtype.itemsize:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, header says {n} tokens of {dtype.name}")
        # numpy cannot map an empty file; an empty split is an empty array.
        tokens = np.memmap(path, dtype=dtype, mode="r", shape=(n,)) if n else np.empty(0, dtype=dtype)
        offsets = np.load(folder / header["offsets_file"], mmap_mode="r")
        if offsets.shape != (int(header["documents"]) + 1,) or int(offsets[-1]) != n:
            raise ValueError(f"{folder / header['offsets_file']}: offsets do not match the header")
        return cls(tokens, offsets, header)

    @classmethod
    def from_documents(cls, documents: Sequence[Sequence[int]], vocab_size: int) -> PackedTokens:
        """A split held in memory, for text too small to be worth a file: each document's ids already framed
        by BOS ... EOS, as in a token file."""
        dtype = token_dtype(vocab_size)
        lengths = [len(d) for d in documents]
        offsets = np.zeros(len(documents) + 1, dtype=LENGTHS_DTYPE)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.fromiter((i for d in documents for i in d), dtype=dtype, count=int(offsets[-1]))
        header = {"format": FORMAT, "version": VERSION, "dtype": dtype.str, "vocab_size": vocab_size,
                  "tokens": int(offsets[-1]), "documents": len(documents)}
        return cls(tokens, offsets, header)

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def document(self, i: int) -> np.ndarray:
        """Document `i`'s token ids, BOS and EOS included (a view into the memory map)."""
        if not 0 <= i < len(self):
            raise IndexError(f"document {i} out of range for {len(self)} documents")
        return self.tokens[int(self.offsets[i]) : int(self.offsets[i + 1])]
