"""Shared fixtures: the public corpora beside the repo (skipped when absent), an isolated pipeline home, and
the tiny corpus (tokenizer and token files) that tests training models use."""

from __future__ import annotations

from pathlib import Path

import pytest

from fm_pipeline_tests.training.tiny_corpus import one_thread, tiny_corpus
from tools.corpora import SHARED_CORPORA

__all__ = ["one_thread", "tiny_corpus"]



@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """`../shared/corpora`: real public text. Users clone the project without it, so tests skip then."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"public corpora not found at {SHARED_CORPORA} (set FM_SHARED_CORPORA to run these tests)")
    return SHARED_CORPORA


@pytest.fixture()
def fm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FM_PIPELINE_HOME with a file MLflow store, so tests never touch the user's lake."""
    home = tmp_path / "fm_home"
    monkeypatch.setenv("FM_PIPELINE_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("FM_RAW_CORPUS", raising=False)
    monkeypatch.delenv("FM_DOMAIN_CORPUS", raising=False)
    return home
