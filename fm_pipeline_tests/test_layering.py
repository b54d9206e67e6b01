"""The floors of the house (README, "Architecture"): each package imports only the packages listed for it, so
no arrow in the import graph points from a lower floor to a higher one and no two packages depend on each
other. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import fm_pipeline

_BASE = {"lake"}
ALLOWED: dict[str, set[str]] = {
    "lake": set(),
    "modeling": _BASE,
    "curation": _BASE,
    "tokenization": _BASE | {"curation"},
    "evaluation": _BASE | {"modeling", "tokenization"},
    "training": _BASE | {"modeling", "tokenization", "evaluation"},
    "adaptation": _BASE | {"modeling", "tokenization", "evaluation", "training"},
    "compression": _BASE | {"modeling", "tokenization", "evaluation", "training"},
    "downstream": _BASE | {"modeling", "tokenization", "evaluation", "training", "adaptation"},
}
"""What each library package may import from the project. The Dagster layer (`defs/`, `definitions.py`,
`materialize.py`) may import anything; nothing may import it."""
DAGSTER_LAYER = {"defs", "definitions", "materialize"}
ORCHESTRATION = ("dagster", "dagster_k8s", "dagster_webserver", "dagster_mlflow")


def _package(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import (the layering check reads absolute ones)")
            module = node.module or ""
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def layering_violations(root: Path) -> list[str]:
    """Every import in the package tree at `root` that breaks `ALLOWED`, as `file:line: a -> b` lines."""
    root = Path(root)
    bad = []
    for path in sorted(root.rglob("*.py")):
        if len(path.relative_to(root).parts) == 1 and path.name == "__init__.py":
            continue
        here = _package(path, root)
        for line, module in _imports(path):
            where = f"{path.relative_to(root)}:{line}"
            if here not in DAGSTER_LAYER and module.split(".")[0] in ORCHESTRATION:
                bad.append(f"{where}: {here} -> {module} (orchestration belongs to the Dagster layer)")
            parts = module.split(".")
            if parts[0] != root.name or len(parts) < 2:
                continue
            target = parts[1]
            if here in DAGSTER_LAYER or target == here:
                continue
            if target in DAGSTER_LAYER or target not in ALLOWED.get(here, set()):
                bad.append(f"{where}: {here} -> {target}")
    return bad


def test_the_project_keeps_its_floors():
    root = Path(fm_pipeline.__file__).parent
    assert {_package(p, root) for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()} <= (
        set(ALLOWED) | DAGSTER_LAYER
    ), "a new package needs its row in ALLOWED and in the README's Architecture table"
    assert layering_violations(root) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fm_pipeline"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_lower_floor_importing_a_higher_one_is_caught(tmp_path):
    root = _tree(tmp_path, {
        "lake/__init__.py": "",
        "lake/parquet_io.py": "def f():\n    from fm_pipeline.training.loop import train\n",
        "training/__init__.py": "",
        "training/loop.py": "from fm_pipeline.lake import parquet_io\n",
        "evaluation/perplexity.py": "import fm_pipeline.training.loop\n",
        "curation/filter_stage.py": "from fm_pipeline.defs import stages\nimport dagster\n",
    })
    assert layering_violations(root) == [
        "curation/filter_stage.py:1: curation -> defs",
        "curation/filter_stage.py:2: curation -> dagster (orchestration belongs to the Dagster layer)",
        "evaluation/perplexity.py:1: evaluation -> training",
        "lake/parquet_io.py:2: lake -> training",
    ]
