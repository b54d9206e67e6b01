"""Writing one file atomically: under a hidden temporary name beside it, renamed into place when complete.

The temporary name is `.<name>.<32 hex>.tmp`, in the target's folder (same filesystem, so the rename is atomic
on POSIX), hidden so that readers never list it (`list_shards`, `data_files` and the lineage index skip
dot-names). A failed write removes it; a killed one leaves it hidden, and the folder it is in is replaced
whole by its stage (`staging.staged_dir`). Files are not fsynced (as in `staging`: a power failure may lose
writes not yet flushed). Whole folders are swapped by `staging`, not here.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_beside(path: Path) -> Path:
    """A fresh hidden name in `path`'s folder for writing its next version."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (its folder is created) for the block to write; when the block
    succeeds it is renamed to `path`, replacing what was there, when it fails it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        yield tmp
    except BaseException:
        remove_path(tmp)
        raise
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file under a temporary name in the same folder, then rename it into place."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """`atomic_write_bytes` of `text` encoded."""
    atomic_write_bytes(path, text.encode(encoding))


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree (a symlink is unlinked, never followed)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
