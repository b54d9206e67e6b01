"""`benchmarks.curation` on a sliver of the public corpora: ours and datatrove on the same shards, every
document accounted for on both sides, and a clear note instead of a failure when datatrove is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import curation, datatrove_peer


@pytest.fixture(scope="module")
def report(shared_corpora: Path) -> dict[str, Any]:
    if datatrove_peer.missing():
        pytest.skip(f"datatrove peer not installed ({datatrove_peer.missing()}): pip install -e '.[peers]'")
    return curation.benchmark(shared_corpora, 0.06, 0.02, peer="datatrove")


@pytest.mark.slow
def test_ours_and_datatrove_read_the_same_documents(report: dict[str, Any]) -> None:
    docs = report["corpus"]["docs"]
    assert report["corpus"]["raw_shards"] >= 2
    peer = report["peers"]["datatrove"]
    for processes in (1, 2):
        ours = report["filter_stage"][f"processes_{processes}"]
        assert ours["kept"] + ours["rejected"] == docs
        theirs = peer[f"filter_processes_{processes}"]
        assert theirs["kept"] + sum(theirs["removed_by_filter"].values()) == docs
        assert theirs["ours_over_datatrove_mb_per_s"] == round(ours["mb_per_s"] / theirs["mb_per_s"], 2)
        minhash = peer[f"minhash_processes_{processes}"]
        assert minhash["kept"] + minhash["removed"] == docs
        assert set(minhash["seconds"]) == {"signatures", "buckets", "clusters", "filter"}
    # the same cascade on 1 and 2 processes keeps the same documents
    assert peer["filter_processes_1"]["kept"] == peer["filter_processes_2"]["kept"]
    assert peer["minhash_config"] == "5ng_14bs_8hs_HashConfig(precision=64, hash_fc=xxhash)"


def test_without_datatrove_the_report_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(datatrove_peer, "missing", lambda: ["datatrove", "spacy"])
    result = curation.datatrove_side_by_side(tmp_path, tmp_path, 1.0, 1, {}, {})
    assert result == {"skipped": "datatrove not run: datatrove, spacy not installed (pip install -e '.[peers]')"}
