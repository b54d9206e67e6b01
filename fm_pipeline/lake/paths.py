"""Where the pipeline reads and writes, resolved from the environment (`FM_PIPELINE_HOME`, `FM_RAW_CORPUS`,
`FM_DOMAIN_CORPUS`, `MLFLOW_TRACKING_URI`; README, "Configuration")."""

from __future__ import annotations

import os
from pathlib import Path

SOURCES: tuple[str, ...] = (
    "common_crawl", "books", "academic_papers", "code_repositories", "reference_data", "conversations",
)
DOMAINS: tuple[str, ...] = ("biomedical", "legal", "financial", "scientific")

_SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


def pipeline_home() -> Path:
    """`FM_PIPELINE_HOME`, or `.fm_pipeline` in the working directory."""
    return Path(os.environ.get("FM_PIPELINE_HOME") or Path.cwd() / ".fm_pipeline").resolve()


def lake_root() -> Path:
    return pipeline_home() / "lake"


def raw_corpus_root() -> Path:
    """`FM_RAW_CORPUS` (one sub-folder per source), or the sample corpus shipped in the package."""
    env = os.environ.get("FM_RAW_CORPUS")
    return Path(env).resolve() if env else _SAMPLE_DATA / "raw"


def domain_corpus_root() -> Path:
    """`FM_DOMAIN_CORPUS` (one sub-folder per domain), or the sample domain corpus shipped in the package."""
    env = os.environ.get("FM_DOMAIN_CORPUS")
    return Path(env).resolve() if env else _SAMPLE_DATA / "domain"


def mlflow_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, or a SQLite store under `FM_PIPELINE_HOME/mlflow`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{pipeline_home() / 'mlflow' / 'mlflow.db'}"


def mlflow_artifact_root() -> Path:
    return pipeline_home() / "mlflow" / "artifacts"
