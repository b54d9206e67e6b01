"""The labelled task sets shipped with the sample domain corpus (`sample_data/domain/tasks/<domain>/<task>.jsonl`;
sources and licences in that folder's README) and their reader.

A classification row is `{"id", "text", "label", "split"}`; a tagging row is `{"id", "tokens", "tags", "split"}`
with BIO tags. `split` is "train" or "test", fixed in the file so every run scores the same examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TASK_ROOT = Path(__file__).resolve().parents[1] / "sample_data" / "domain" / "tasks"
TAGGING, CLASSIFICATION = "tagging", "classification"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    domain: str
    kind: str
    """TAGGING (token labels, span F1) or CLASSIFICATION (one label per text, macro F1)."""


TASKS: dict[str, TaskSpec] = {
    "ncbi_disease": TaskSpec("ncbi_disease", "biomedical", TAGGING),
    "scicite": TaskSpec("scicite", "scientific", CLASSIFICATION),
    "cuad_clauses": TaskSpec("cuad_clauses", "legal", CLASSIFICATION),
    "financial_sentiment": TaskSpec("financial_sentiment", "financial", CLASSIFICATION),
}
TASK_OF_DOMAIN: dict[str, str] = {spec.domain: name for name, spec in TASKS.items()}


@dataclass(frozen=True)
class Example:
    id: str
    text: str = ""
    label: str = ""
    tokens: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskData:
    spec: TaskSpec
    labels: tuple[str, ...]
    """Class labels, or tags with "O" first; index = head output."""
    train: list[Example]
    test: list[Example]

    @property
    def name(self) -> str:
        return self.spec.name


def task_path(name: str, root: Path = TASK_ROOT) -> Path:
    spec = TASKS[name]
    return Path(root) / spec.domain / f"{name}.jsonl"


def read_task(name: str, root: Path = TASK_ROOT) -> TaskData:
    """Train and test examples of task `name` under `root`, labels sorted (tags: "O" first, then sorted)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    spec = TASKS[name]
    splits: dict[str, list[Example]] = {"train": [], "test": []}
    for line in task_path(name, root).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if spec.kind == TAGGING:
            if len(row["tokens"]) != len(row["tags"]):
                raise ValueError(f"{row['id']}: {len(row['tokens'])} tokens but {len(row['tags'])} tags")
            example = Example(row["id"], tokens=tuple(row["tokens"]), tags=tuple(row["tags"]))
        else:
            example = Example(row["id"], text=row["text"], label=row["label"])
        splits[row["split"]].append(example)
    if spec.kind == TAGGING:
        found = {t for e in splits["train"] + splits["test"] for t in e.tags}
        labels = ("O", *sorted(found - {"O"}))
    else:
        labels = tuple(sorted({e.label for e in splits["train"] + splits["test"]}))
    return TaskData(spec, labels, splits["train"], splits["test"])
