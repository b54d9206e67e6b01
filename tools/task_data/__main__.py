"""`python -m tools.task_data`: rewrite the built task files (see the package docstring)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tools.corpora import SHARED_CORPORA
from tools.task_data import HERE, TASKS
from tools.task_data.clauses import clauses
from tools.task_data.ner import read_mentions, tag_document

TEST_EVERY = 4
"""Every 4th abstract, contract or example (in file order) is the test split."""


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _split(i: int) -> str:
    return "test" if i % TEST_EVERY == TEST_EVERY - 1 else "train"


def build_ner() -> list[dict]:
    mentions = read_mentions(HERE / "ncbi_disease_devel_mentions.tsv")
    abstracts = _read_jsonl(SHARED_CORPORA / "domain" / "biomedical.jsonl")
    texts = {d["id"].removeprefix("pubmed-"): d["text"] for d in abstracts}
    rows = []
    for i, pmid in enumerate(sorted(mentions)):
        rows += [{**r, "split": _split(i), "pmid": pmid} for r in tag_document(pmid, texts[pmid], mentions[pmid])]
    return rows


def build_scicite() -> list[dict]:
    return [{"id": f"scicite-dev-{i:03d}", "text": r["text"], "label": r["label"], "split": _split(i)}
            for i, r in enumerate(_read_jsonl(HERE / "scicite_dev_head.jsonl"))]


def build_clauses() -> list[dict]:
    rows = []
    for i, doc in enumerate(_read_jsonl(SHARED_CORPORA / "domain" / "legal.jsonl")):
        for k, (label, text) in enumerate(clauses(doc["text"])):
            rows.append({"id": f"cuad-{i:02d}-{k:02d}", "text": text, "label": label, "split": _split(i),
                         "contract": doc["id"]})
    return rows


def build_financial() -> list[dict]:
    lines = (HERE / "financial_sentiment.tsv").read_text(encoding="utf-8").splitlines()
    return [{"id": f"fin-sent-{i:03d}", "text": text, "label": label, "split": _split(i)}
            for i, (label, text) in enumerate(line.split("\t") for line in lines)]


def main() -> None:
    for domain, name, rows in (("biomedical", "ncbi_disease", build_ner()), ("scientific", "scicite", build_scicite()),
                               ("legal", "cuad_clauses", build_clauses()),
                               ("financial", "financial_sentiment", build_financial())):
        (TASKS / domain).mkdir(parents=True, exist_ok=True)
        _write_jsonl(TASKS / domain / f"{name}.jsonl", rows)
        labels = Counter(t for r in rows for t in r.get("tags", [r.get("label")]))
        print(name, len(rows), Counter(r["split"] for r in rows), dict(labels))


if __name__ == "__main__":
    main()
