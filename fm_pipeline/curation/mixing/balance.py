"""The balance stage: deduplicated shards in, train/val shards in the planned language mix out.

`balance` streams the documents once: val documents (`split.val_ids`) go to val as they are; every other
document gets its language's rate of training copies (`sampling.copies_of`), and one that gets none goes to
the dropped folder with the reason `"downsampled:<lang>"` (REJECTED_SCHEMA). So every input document leaves
exactly once, in train (once or as several copies), in val, or in dropped, and
`documents_in == train_originals + val_documents + dropped`, which `audit.audit_balance` recounts from
disk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fm_pipeline.curation.mixing.plan import MixConfig, MixPlan, plan_mix
from fm_pipeline.curation.mixing.sampling import (
    DEFAULT_SHUFFLE_BUFFER_DOCS,
    ShuffleBuffer,
    copies_of,
    keyed_unit,
)
from fm_pipeline.curation.mixing.split import (
    DEFAULT_MIN_DOCS_FOR_VAL,
    DEFAULT_MIN_VAL_DOCS,
    DEFAULT_VAL_FRACTION,
    survey,
)
from fm_pipeline.curation.words import split_words
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REJECTED_SCHEMA
from fm_pipeline.lake.layout import DROPPED, REPEAT_MARK, TRAIN, VAL
from fm_pipeline.lake.parquet_io import DEFAULT_SHARD_BYTES, ShardWriter, iter_rows
from fm_pipeline.lake.staging import staged_dir

OUTPUT_FOLDERS = (TRAIN, VAL, DROPPED)
_CELL_COUNTS = ("documents_in", "bytes_in", "train_documents", "train_bytes", "val_documents", "val_bytes",
                "dropped", "dropped_bytes")
"""The counts of one (language, source) row of `BalanceStats.by_lang_source`."""


@dataclass
class BalanceStats:
    """What `balance` read and wrote; `documents_in == train_originals + val_documents + dropped` always.
    `train_documents` counts copies, `train_originals` the documents they are copies of, and `repeated` the
    documents trained on more than once."""

    documents_in: int
    train_documents: int
    train_originals: int
    val_documents: int
    dropped: int
    repeated: int
    seed: int
    val_fraction: float
    min_val_docs: int
    min_docs_for_val: int
    val_documents_by_lang: dict[str, int]
    max_copies: int
    bytes_in: int
    train_bytes: int
    val_bytes: int
    dropped_bytes: int
    train_shards: int
    val_shards: int
    dropped_shards: int
    shuffle_buffer_docs: int
    plan: dict[str, Any]
    """`MixPlan.as_dict()` of the plan applied."""
    by_lang_source: list[dict[str, Any]]
    """Per (language, source): `lang`, `source` and the counts named in `_CELL_COUNTS`."""
    bytes_by_lang: dict[str, dict[str, int]]
    """Per language: text bytes `in` and in `train` (copies included)."""
    share: dict[str, dict[str, float]]
    """Per language: the `target`, `achievable` and `achieved` share of training bytes."""
    entropy_bits: dict[str, float]
    """Entropy of the language distribution of bytes, `before` (input) and `after` (train)."""
    distinct_4gram_share: dict[str, float | None]
    """Distinct word 4-grams among all, `before` and `after`, on a `sample_fraction` of the documents."""


def _entropy_bits(counts: Mapping[str, float]) -> float:
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c > 0) if total else 0.0


class _Diversity:
    """Share of distinct word 4-grams among all 4-grams: repeated documents add 4-grams but no new ones."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, ...]] = set()
        self.total = 0

    def add(self, text: str, times: int = 1) -> None:
        words = split_words(text.lower())
        grams = list(zip(words, words[1:], words[2:], words[3:], strict=False))
        self.total += times * len(grams)
        if times:
            self.seen.update(grams)

    def share(self) -> float | None:
        return len(self.seen) / self.total if self.total else None


def balance(
    shards: Sequence[Path],
    out_dir: Path,
    plan: MixPlan | MixConfig | None = None,
    seed: int = 0,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    diversity_sample_bytes: int = 2_000_000,
    shuffle_buffer_docs: int = DEFAULT_SHUFFLE_BUFFER_DOCS,
    min_val_docs: int = DEFAULT_MIN_VAL_DOCS,
    min_docs_for_val: int = DEFAULT_MIN_DOCS_FOR_VAL,
) -> BalanceStats:
    """Stream the documents once into `out_dir/train/` and `out_dir/val/` shards (CORPUS_SCHEMA, about
    `shard_bytes` each), repeating or dropping training documents by their language's rate; dropped documents
    go to `out_dir/dropped/` (REJECTED_SCHEMA, reason `"downsampled:<lang>"`), so every input is accounted
    for: `documents_in == train_originals + val_documents + dropped`. `out_dir` is replaced whole, the three
    folders together in one atomic step (`staged_dir`), and only on success; the same input, plan, seed and
    buffer size give byte-identical files.

    Training rows pass through a shuffle buffer of `shuffle_buffer_docs` documents (see `ShuffleBuffer`),
    so the copies of a document are spread through train rather than adjacent; memory is bounded by the
    buffer. Val and dropped keep the input order.

    Val is stratified by language (`val_ids`, with `val_fraction`, `min_val_docs`, `min_docs_for_val`):
    a pre-pass over the `id` and `lang` columns picks it, and counts the bytes per language for the plan
    in the same read when `plan` is not a `MixPlan`. The result's `val_documents_by_lang` gives the split.

    Diversity (distinct word 4-grams) is measured on the documents whose id hash falls in a sample of
    about `diversity_sample_bytes`, so memory stays bounded whatever the corpus size.
    """
    shards = [Path(s) for s in shards]
    shuffle = ShuffleBuffer(shuffle_buffer_docs, seed)
    bytes_in, val_set = survey(
        shards, val_fraction, min_val_docs, min_docs_for_val, count_bytes=not isinstance(plan, MixPlan)
    )
    if not isinstance(plan, MixPlan):
        config = plan or MixConfig()
        plan = plan_mix(bytes_in, config.weights, config.alpha, config.max_repeats)
    sample_fraction = min(1.0, diversity_sample_bytes / max(1, sum(plan.bytes_in.values())))
    table: dict[tuple[str, str], dict[str, int]] = {}
    totals = dict.fromkeys(
        ("documents_in", "train_documents", "train_originals", "val_documents", "dropped", "repeated"), 0
    )
    max_copies = 0
    before, after = _Diversity(), _Diversity()
    with staged_dir(Path(out_dir)) as staging:
        for split in OUTPUT_FOLDERS:
            (staging / split).mkdir()
        train = ShardWriter(staging / TRAIN, CORPUS_SCHEMA, shard_bytes)
        val = ShardWriter(staging / VAL, CORPUS_SCHEMA, shard_bytes)
        dropped = ShardWriter(staging / DROPPED, REJECTED_SCHEMA, shard_bytes)
        for row in iter_rows(shards, columns=CORPUS_SCHEMA.names):
            lang, doc_id = row["lang"], row["id"]
            if lang not in plan.rates:
                raise ValueError(f"language {lang!r} of document {doc_id!r} is not in the mix plan")
            size = len(row["text"].encode("utf-8"))
            cell = table.setdefault((lang, row["source"]), dict.fromkeys(_CELL_COUNTS, 0))
            cell["documents_in"] += 1
            cell["bytes_in"] += size
            totals["documents_in"] += 1
            sampled = keyed_unit("diversity", doc_id) < sample_fraction
            if sampled:
                before.add(row["text"])
            if doc_id in val_set:
                val.write(row)
                cell["val_documents"] += 1
                cell["val_bytes"] += size
                totals["val_documents"] += 1
                continue
            n = copies_of(doc_id, plan.rates[lang], seed)
            if n == 0:
                dropped.write({**row, "reason": f"downsampled:{lang}"})
                cell["dropped"] += 1
                cell["dropped_bytes"] += size
                totals["dropped"] += 1
            for k in range(n):
                out = shuffle.push(row if k == 0 else {**row, "id": f"{doc_id}{REPEAT_MARK}{k}"})
                if out is not None:
                    train.write(out)
            cell["train_documents"] += n
            cell["train_bytes"] += n * size
            totals["train_documents"] += n
            totals["train_originals"] += int(n > 0)
            totals["repeated"] += int(n > 1)
            max_copies = max(max_copies, n)
            if sampled:
                after.add(row["text"], n)
        for out in shuffle.drain():
            train.write(out)
        train_shards, val_shards, dropped_shards = len(train.close()), len(val.close()), len(dropped.close())

    def by_lang(column: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for (lang, _), cell in table.items():
            out[lang] = out.get(lang, 0) + cell[column]
        return dict(sorted(out.items()))

    bytes_before, bytes_train = by_lang("bytes_in"), by_lang("train_bytes")
    train_total = sum(bytes_train.values())
    return BalanceStats(
        **totals,
        seed=seed,
        val_fraction=val_fraction,
        min_val_docs=min_val_docs,
        min_docs_for_val=min_docs_for_val,
        val_documents_by_lang=by_lang("val_documents"),
        max_copies=max_copies,
        bytes_in=sum(bytes_before.values()),
        train_bytes=train_total,
        val_bytes=sum(cell["val_bytes"] for cell in table.values()),
        dropped_bytes=sum(cell["dropped_bytes"] for cell in table.values()),
        train_shards=train_shards,
        val_shards=val_shards,
        dropped_shards=dropped_shards,
        shuffle_buffer_docs=shuffle_buffer_docs,
        plan=plan.as_dict(),
        by_lang_source=[{"lang": lang, "source": source, **table[lang, source]} for lang, source in sorted(table)],
        bytes_by_lang={lang: {"in": bytes_before[lang], "train": bytes_train.get(lang, 0)} for lang in bytes_before},
        share={
            lang: {
                "target": plan.target.get(lang, 0.0),
                "achievable": plan.achievable.get(lang, 0.0),
                "achieved": bytes_train.get(lang, 0) / train_total if train_total else 0.0,
            }
            for lang in bytes_before
        },
        entropy_bits={"before": _entropy_bits(bytes_before), "after": _entropy_bits(bytes_train)},
        distinct_4gram_share={"before": before.share(), "after": after.share(), "sample_fraction": sample_fraction},
    )
