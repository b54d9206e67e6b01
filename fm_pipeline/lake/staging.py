"""Publishing a stage's output folder in one atomic step.

A stage writes its whole output, every sub-folder of it (`kept/` and `rejected/`, `train/`, `val/` and
`dropped/`, ...), into one hidden sibling `.<name>.staging-<hex>`, and `staged_dir` puts it in place of
`<name>` with one atomic operation, so at every instant `<name>` is the previous output whole or the new one
whole, never a mix and (where the kernel allows) never absent:

* `<name>` exists: Linux `renameat2(RENAME_EXCHANGE)` swaps the two folders in one system call; the old
  output, now at the staging name, is deleted afterwards.
* `<name>` does not exist: a plain `rename`, atomic on POSIX.
* RENAME_EXCHANGE unsupported (EINVAL from the file system, ENOSYS before Linux 3.15, no `renameat2` in the C
  library, not Linux): two renames, `<name>` -> `.<name>.old-<hex>`, then staging -> `<name>`. A kill
  between them leaves `<name>` absent (never mixed) with the previous output whole at the `.old-` name, and
  the next `staged_dir` on `<name>` renames it back before anything else, so a reader finds nothing there
  for that moment and the previous output afterwards.

Why exchange rather than a `CURRENT` pointer file naming the live version: readers address the lake by plain
paths (`lake/filtered_corpus/<source>/kept/*.parquet`), so a pointer would have to be resolved by
every reader, Dagster UI link and user script, while the exchange keeps those paths as they are.

Leftovers of a killed run are hidden dot-folders, which readers never list (`list_shards`, `data_files` and
the lineage index skip dot-names); the next run on the same folder removes them (or restores, see above)
before it stages. A run holds an exclusive lock on `.<name>.lock` (flock, released by the kernel when the
process dies) from that clean-up to its swap, so two runs on one folder take turns instead of deleting each
other's staging folder. Inside an unpublished staging folder (a stage built of stages, as `domain_corpus`)
there is no lock or clean-up: the outer stage holds the lock and nobody else sees the folder.

What this does not give: a reader that lists a folder and opens its files later may straddle a swap (open
files stay readable after the swap; paths then name the new output); a power failure may lose writes that
were not yet flushed (files are not fsynced).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import glob
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_STAGING = re.compile(r"^\.(?P<name>.+)\.staging-[0-9a-f]{32}$")


def _load_renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    func = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc >= 2.28, musl >= 1.2.2
    if func is not None:
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()

test_hook: Callable[[str], object] | None = None
"""Fault injection for the kill tests (`fm_pipeline_tests/curation/test_staging_kill.py`): when set, called
with "staged" (staging folder made, nothing written), "before-swap" (staging complete), "between-renames"
(two-rename fallback only: `<name>` moved aside, staging not yet in place) and "after-swap" (new output in
place, old not yet deleted)."""


def _reach(point: str) -> None:
    if test_hook is not None:
        test_hook(point)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False when this system cannot (the caller falls back)."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def published_path(path: Path) -> Path:
    """Where `path`, inside a staging folder, will be once its stage is published (itself if not staged):
    for names that must not depend on the staging folder's random name."""
    return Path(*(m["name"] if (m := _STAGING.match(part)) else part for part in Path(path).parts))


def leftovers(final: Path) -> list[Path]:
    """What runs on `final` left beside it: `.old-` folders first (at most one, as every run recovers before
    it swaps), then staging folders."""
    pattern = f".{glob.escape(final.name)}"
    return [*sorted(final.parent.glob(f"{pattern}.old-*")), *sorted(final.parent.glob(f"{pattern}.staging-*"))]


def recover(final: Path) -> None:
    """Undo what a killed run left beside `final`: put back a previous output that the two-rename fallback
    moved aside when `final` is missing, then delete staging and old folders. Call it holding the lock."""
    left = leftovers(final)
    if left and ".old-" in left[0].name and not final.exists():
        os.rename(left.pop(0), final)
    for path in left:
        shutil.rmtree(path)


def swap_in(staging: Path, final: Path) -> Path | None:
    """Put the complete folder `staging` at `final` in one atomic step (see the module docstring); returns
    where the previous `final` now is, hidden, for the caller to delete (None when there was none)."""
    _reach("before-swap")
    if not final.exists():
        os.rename(staging, final)
        _reach("after-swap")
        return None
    if exchange(staging, final):
        old = staging
    else:
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
        os.rename(final, old)
        _reach("between-renames")
        os.rename(staging, final)
    _reach("after-swap")
    return old


def staging_sibling(final: Path) -> Path:
    """A fresh hidden name beside `final` for building its next version; `recover` removes it if left."""
    return final.with_name(f".{final.name}.staging-{uuid.uuid4().hex}")


@contextmanager
def _lock(final: Path) -> Iterator[None]:
    if any(_STAGING.match(part) for part in final.parent.parts):
        yield
        return
    fd = os.open(final.with_name(f".{final.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        recover(final)
        yield
    finally:
        os.close(fd)


@contextmanager
def swapped_dir(final: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `final`; when the block succeeds it replaces `final` in one
    atomic step (see the module docstring), when it fails it is removed and `final` is left as it was.
    Neither locks nor recovers: for a caller that owns `final` or already holds its lock (`staged_dir`)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_sibling(final)
    staging.mkdir()
    _reach("staged")
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if (old := swap_in(staging, final)) is not None:
        shutil.rmtree(old, ignore_errors=True)  # published already; what stays is hidden, the next run retries


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """`swapped_dir` holding the lock on `final`, after undoing what a killed run left beside it: how a stage
    publishes its output folder."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _lock(final), swapped_dir(final) as staging:
        yield staging


def carry(src: Path, dst: Path) -> None:
    """Bring a file of the published output (a cache) into the staging folder: a hard link, so nothing is
    copied and the published file is untouched when the new one is rewritten (writers replace, never edit);
    a copy where links are not supported. Nothing when `src` does not exist or `dst` already does."""
    if not src.is_file() or dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
