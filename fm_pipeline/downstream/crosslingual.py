"""Cross-lingual transfer: a classification head trained on English passages only and scored zero-shot on the
same passages' translations.

The set is parallel, so every language has the same labels: a passage's label is the document it comes from (the
sample's reference articles and their translations: `meta.translation_of` names the English article; the UDHR's
eight blocks of articles, `udhr-<lang>-<k>` → k). Passages are a document's paragraphs (blank-line separated).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fm_pipeline.downstream.finetune import predict, train_task_model
from fm_pipeline.downstream.metrics import macro_f1
from fm_pipeline.downstream.task_config import TaskTrainConfig
from fm_pipeline.downstream.tasks import CLASSIFICATION, Example, TaskData, TaskSpec

SAMPLE_REFERENCE = Path(__file__).resolve().parents[1] / "sample_data" / "raw" / "reference_data"
MIN_PASSAGE_CHARS = 40
SPEC = TaskSpec("parallel_document", "multilingual", CLASSIFICATION)


@dataclass(frozen=True)
class Passage:
    lang: str
    label: str
    text: str


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) >= MIN_PASSAGE_CHARS]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_parallel_set(root: Path = SAMPLE_REFERENCE) -> list[Passage]:
    """The sample's translated reference articles and their English originals, labelled by English id. Each
    translation is one article, so a language other than English holds the passages of one label."""
    rows = _read_jsonl(root / "reference_en.jsonl") + _read_jsonl(root / "reference_multilingual.jsonl")
    english = {r["id"]: r for r in rows}
    pairs = [(r, r["meta"]["translation_of"]) for r in rows if (r.get("meta") or {}).get("translation_of")]
    out = []
    for row, source in sorted(pairs, key=lambda p: p[1]):
        out += [Passage("en", source, t) for t in _paragraphs(english[source]["text"])]
        lang = row["id"].split("-")[1]
        out += [Passage(lang, source, t) for t in _paragraphs(row["text"])]
    return out


def udhr_parallel_set(path: Path) -> list[Passage]:
    """UDHR documents `udhr-<code>-<k>` (`meta.gold_lang` the language): label k, one passage per paragraph."""
    return [Passage(r["meta"]["gold_lang"], r["id"].rsplit("-", 1)[1], t) for r in _read_jsonl(path)
            for t in _paragraphs(r["text"])]


@dataclass(frozen=True)
class LanguageScore:
    lang: str
    passages: int
    accuracy: float
    macro_f1: float


def crosslingual_transfer(checkpoint: Path, tokenizer: Path, passages: Iterable[Passage], config: TaskTrainConfig,
                          train_lang: str = "en") -> list[LanguageScore]:
    """Fine-tune (`full`) on the `train_lang` passages, then score every language, `train_lang` included (its
    score is on its own training passages: an upper bound, not a held-out figure)."""
    passages = list(passages)
    examples = [Example(f"{p.lang}-{i}", text=p.text, label=p.label) for i, p in enumerate(passages)]
    train = [e for e, p in zip(examples, passages, strict=True) if p.lang == train_lang]
    if not train:
        raise ValueError(f"no {train_lang!r} passages to train on")
    task = TaskData(SPEC, tuple(sorted({p.label for p in passages})), train, [])
    trained = train_task_model(checkpoint, tokenizer, [task], "full", config)
    by_lang: dict[str, list[Example]] = defaultdict(list)
    for e, p in zip(examples, passages, strict=True):
        by_lang[p.lang].append(e)
    scores = []
    for lang in sorted(by_lang):
        rows: Sequence[Example] = by_lang[lang]
        pred = predict(trained, task, rows, config)
        gold = [e.label for e in rows]
        scores.append(LanguageScore(lang, len(rows), sum(g == p for g, p in zip(gold, pred, strict=True)) / len(rows),
                                    macro_f1(gold, pred)))
    return scores
