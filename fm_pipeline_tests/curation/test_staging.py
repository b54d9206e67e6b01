"""staged_dir in one process: the exchange, the clean-up of what a killed run left, and the per-folder lock.
(The kill tests, with real SIGKILLs, are in test_staging_kill.py.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fm_pipeline.lake import staging
from fm_pipeline.lake.lineage import _index_records, write_stage_record
from fm_pipeline.lake.staging import leftovers, published_path, recover, staged_dir


def _publish(final: Path, text: str) -> None:
    with staged_dir(final) as stage:
        (stage / "kept").mkdir()
        (stage / "kept" / "a.txt").write_text(text)


def test_exchange_swaps_two_folders_here(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("from a")
    if not staging.exchange(a, b):
        pytest.skip("RENAME_EXCHANGE is not supported on this file system (the two-rename fallback runs)")
    assert (b / "x").read_text() == "from a" and not (a / "x").exists()


def test_a_rerun_replaces_the_folder_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    final = tmp_path / "out"
    _publish(final, "one")
    _publish(final, "two")
    assert (final / "kept" / "a.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_the_next_run_cleans_up_and_restores(tmp_path: Path) -> None:
    final = tmp_path / "out"
    _publish(final, "previous")
    # What a run killed between the fallback's two renames leaves: the output moved aside, a staging folder.
    final.rename(tmp_path / f".out.old-{'1' * 32}")
    (tmp_path / f".out.staging-{'2' * 32}" / "kept").mkdir(parents=True)
    assert len(leftovers(final)) == 2
    recover(final)
    assert (final / "kept" / "a.txt").read_text() == "previous" and leftovers(final) == []

    (tmp_path / f".out.old-{'3' * 32}").mkdir()  # killed after the second rename: the old copy is garbage
    _publish(final, "next")
    assert (final / "kept" / "a.txt").read_text() == "next" and leftovers(final) == []


def test_a_failed_run_keeps_the_previous_output(tmp_path: Path) -> None:
    final = tmp_path / "out"
    _publish(final, "previous")
    with pytest.raises(RuntimeError), staged_dir(final) as stage:
        (stage / "kept").mkdir()
        raise RuntimeError("the stage failed")
    assert (final / "kept" / "a.txt").read_text() == "previous" and leftovers(final) == []


def test_a_second_run_on_the_folder_waits_instead_of_deleting_the_first_ones_staging(tmp_path: Path) -> None:
    final = tmp_path / "out"
    writing, release, second_in = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with staged_dir(final) as stage:
            (stage / "kept").mkdir()
            (stage / "kept" / "a.txt").write_text("first")
            seen["first_staging"] = True
            writing.set()
            release.wait(60)
            seen["first_intact"] = (stage / "kept" / "a.txt").is_file()

    def second() -> None:
        with staged_dir(final) as stage:
            second_in.set()
            (stage / "kept").mkdir()
            (stage / "kept" / "a.txt").write_text("second")

    one = threading.Thread(target=first)
    one.start()
    assert writing.wait(60)
    two = threading.Thread(target=second)
    two.start()
    assert not second_in.wait(1.0)  # held off by the lock (never a false failure, at worst a late success)
    release.set()
    one.join(60)
    two.join(60)
    assert seen == {"first_staging": True, "first_intact": True}
    assert (final / "kept" / "a.txt").read_text() == "second" and leftovers(final) == []


def test_nested_stages_inside_a_staging_folder_take_no_lock(tmp_path: Path) -> None:
    final = tmp_path / "domain"
    with staged_dir(final) as stage:
        _publish(stage / "raw", "inner")
        assert published_path(stage / "raw" / "kept" / "a.txt") == final / "raw" / "kept" / "a.txt"
    assert sorted(p.name for p in final.iterdir()) == ["raw"]  # no .raw.lock published with it
    assert (final / "raw" / "kept" / "a.txt").read_text() == "inner"


def test_lineage_ignores_records_in_hidden_folders(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for folder in (lake / "deduped_corpus", lake / f".deduped_corpus.staging-{'4' * 32}"):
        (folder / "kept").mkdir(parents=True)
        (folder / "kept" / "part-00000.parquet").write_bytes(folder.name.encode())
        write_stage_record(folder, asset="deduped_corpus", lake_root=lake, inputs=[],
                           outputs=[folder / "kept" / "part-00000.parquet"])
    assert sorted(_index_records(lake)) == ["deduped_corpus/kept/part-00000.parquet"]
