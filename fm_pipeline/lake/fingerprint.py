"""Data versions from files: a fingerprint is the sorted list of (relative name, size, sha256) of a set of files,
and a data version is a short hash of a fingerprint (plus anything else the data depends on, such as a code
version or a config).

Two folders with the same files, byte for byte, under the same names, have the same version, wherever they
live; adding, removing, renaming or editing one file changes it. Hashing reads every byte, so a `HashCache`
can remember content hashes by (path, size, mtime): the folder sensor uses one and re-reads only files whose
size or modification time changed; the nightly observation hashes everything from scratch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fm_pipeline.lake.atomic import atomic_write_text

VERSION_CHARS = 16
"""A data version is the first 16 hex digits (64 bits) of a sha256: readable in the UI, and collisions are
irrelevant at the scale of one asset's history."""


@dataclass(frozen=True, order=True)
class FileFingerprint:
    path: str
    """Relative to the fingerprinted root, with forward slashes."""
    size: int
    sha256: str

    def to_dict(self) -> dict[str, str | int]:
        return asdict(self)


def iter_input_files(root: Path) -> list[Path]:
    """Every file under `root`, recursively, in a stable order; hidden files and folders are skipped. A
    `root` that is a file is that one file."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class HashCache:
    """Content hashes by absolute path, trusted while the file's size and mtime (ns) are unchanged.

    Saved as JSON (atomically) when `path` is given; a missing or damaged file starts an empty cache.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, list] = {}
        self.hits = 0
        self.misses = 0
        if self.path and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
                self.entries = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 3}
            except (OSError, ValueError):
                self.entries = {}

    def sha256(self, path: Path) -> tuple[int, str]:
        """(size, sha256) of `path`, from the cache when its size and mtime match."""
        st = path.stat()
        key = str(path.resolve())
        cached = self.entries.get(key)
        if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            self.hits += 1
            return st.st_size, cached[2]
        self.misses += 1
        sha = file_sha256(path)
        self.entries[key] = [st.st_size, st.st_mtime_ns, sha]
        return st.st_size, sha

    def save(self) -> None:
        if not self.path:
            return
        atomic_write_text(self.path, json.dumps(self.entries, sort_keys=True))


def fingerprint_files(files: Iterable[Path], root: Path, cache: HashCache | None = None) -> list[FileFingerprint]:
    """Fingerprints of `files`, named relative to `root` (a file outside `root` keeps its absolute path)."""
    root = Path(root)
    out = []
    for path in files:
        path = Path(path)
        if cache is not None:
            size, sha = cache.sha256(path)
        else:
            size, sha = path.stat().st_size, file_sha256(path)
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            name = path.resolve().as_posix()
        out.append(FileFingerprint(name or path.name, size, sha))
    return sorted(out)


def fingerprint_inputs(root: Path, cache: HashCache | None = None) -> list[FileFingerprint]:
    """The input files of one source or domain folder, exactly the files ingestion reads (hidden ones are
    skipped); `root` may be a single file. A missing folder has no files."""
    root = Path(root)
    files = iter_input_files(root)
    return fingerprint_files(files, root.parent if root.is_file() else root, cache)


def data_files(folder: Path) -> list[Path]:
    """The data files of a stage's output folder, recursively: everything except hidden files and names that
    start with `_` (manifests, lineage records, plots), which describe the data rather than being it."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def version_of(fingerprints: Sequence[FileFingerprint], *extra: str) -> str:
    """The data version of a fingerprint: a hash of every (name, size, sha256) in order, then `extra`."""
    digest = hashlib.sha256()
    for fp in sorted(fingerprints):
        digest.update(f"{fp.path}\t{fp.size}\t{fp.sha256}\n".encode("utf-8", "surrogateescape"))
    for item in extra:
        digest.update(b"\x00" + item.encode())
    return digest.hexdigest()[:VERSION_CHARS]


def input_version(root: Path, cache: HashCache | None = None) -> tuple[str, list[FileFingerprint]]:
    """(data version, fingerprints) of one source or domain folder's input files."""
    fingerprints = fingerprint_inputs(root, cache)
    return version_of(fingerprints), fingerprints
