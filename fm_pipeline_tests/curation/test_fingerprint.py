"""Data versions from files: the same files give the same version anywhere; any added, removed, renamed or
edited file changes it; the hash cache trusts size and mtime and nothing else."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from fm_pipeline.lake.fingerprint import (
    FileFingerprint,
    HashCache,
    data_files,
    fingerprint_files,
    fingerprint_inputs,
    input_version,
    version_of,
)


def folder_version(folder: Path) -> str:
    """The data version of a stage's output folder, from its `data_files`."""
    return version_of(fingerprint_files(data_files(folder), folder))


def _corpus(root: Path) -> Path:
    (root / "nested").mkdir(parents=True)
    (root / "a.jsonl").write_text('{"text": "one"}\n')
    (root / "nested" / "b.txt").write_text("two")
    (root / ".hidden").write_text("ignored, as ingestion ignores it")
    return root


def test_fingerprint_lists_names_sizes_and_content_hashes(tmp_path: Path):
    root = _corpus(tmp_path / "src")
    assert fingerprint_inputs(root) == [
        FileFingerprint("a.jsonl", 16, hashlib.sha256(b'{"text": "one"}\n').hexdigest()),
        FileFingerprint("nested/b.txt", 3, hashlib.sha256(b"two").hexdigest()),
    ]
    single = fingerprint_inputs(root / "a.jsonl")
    assert [fp.path for fp in single] == ["a.jsonl"]
    assert fingerprint_inputs(tmp_path / "missing") == []


def test_version_is_stable_and_changes_with_every_kind_of_edit(tmp_path: Path):
    root = _corpus(tmp_path / "src")
    version, _ = input_version(root)
    assert len(version) == 16 and int(version, 16) >= 0
    copy = tmp_path / "elsewhere"
    shutil.copytree(root, copy)
    assert input_version(copy)[0] == version, "same files, same names: same version wherever they live"
    (root / ".hidden").write_text("hidden files are not inputs")
    assert input_version(root)[0] == version

    seen = {version}
    (root / "new.jsonl").write_text('{"text": "three"}\n')
    seen.add(input_version(root)[0])
    (root / "new.jsonl").rename(root / "renamed.jsonl")
    seen.add(input_version(root)[0])
    (root / "renamed.jsonl").write_text('{"text": "thrEe"}\n')  # same size, new content
    seen.add(input_version(root)[0])
    (root / "renamed.jsonl").unlink()
    assert input_version(root)[0] == version, "back to the original files, back to the original version"
    assert len(seen) == 4
    assert version_of([], "code-1") != version_of([], "code-2")


def test_hash_cache_rehashes_only_changed_files_and_persists(tmp_path: Path):
    root = _corpus(tmp_path / "src")
    cache_file = tmp_path / "cache.json"
    cache = HashCache(cache_file)
    first = input_version(root, cache)[0]
    assert (cache.hits, cache.misses) == (0, 2)
    cache.save()

    cache = HashCache(cache_file)
    assert input_version(root, cache)[0] == first
    assert (cache.hits, cache.misses) == (2, 0)

    edited = root / "nested" / "b.txt"
    stat = edited.stat()
    edited.write_text("TWO")  # same size: only the mtime tells the cache
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = input_version(root, cache)[0]
    assert second != first and cache.misses == 1

    stat = edited.stat()
    edited.write_text("tw0")  # same size again, and the mtime put back: invisible to the cache
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert input_version(root, cache)[0] == second
    assert input_version(root)[0] not in (first, second), "a full hash (the nightly observation) sees it"

    (tmp_path / "broken.json").write_text("{not json")
    assert HashCache(tmp_path / "broken.json").entries == {}


def test_data_files_skip_manifests_records_and_plots(tmp_path: Path):
    out = tmp_path / "stage"
    (out / "kept").mkdir(parents=True)
    (out / "_plots").mkdir()
    (out / "kept" / "part-00000.parquet").write_bytes(b"rows")
    (out / "_manifest.json").write_text("{}")
    (out / "_lineage.json").write_text("{}")
    (out / "_plots" / "mix.png").write_bytes(b"png")
    (out / "kept" / ".part-00001.parquet.tmp").write_bytes(b"partial")
    assert data_files(out) == [out / "kept" / "part-00000.parquet"]
    before = folder_version(out)
    (out / "_manifest.json").write_text('{"more": "stats"}')
    assert folder_version(out) == before
    (out / "kept" / "part-00000.parquet").write_bytes(b"other rows")
    assert folder_version(out) != before
