"""Language balancing: how much of each language the training set sees, and the train/val split.

Two ways to set the mix, both over **bytes** of UTF-8 text per language (bytes, not documents, because
documents vary in length by orders of magnitude across sources, and bytes are what the model trains on;
tokens would need the tokenizer, which is trained after this stage):

- target weights (`DEFAULT_WEIGHTS`): named languages get their share; `"*"` is split among every other
  language in proportion to its bytes, so the long tail keeps its relative sizes instead of being
  upsampled equally. Languages named but absent from the data are dropped and the targets renormalized
  over the languages present.
- temperature sampling (XLM-R, mT5): p_l proportional to n_l^alpha, alpha = 0.3.

A plan turns targets into per-language sampling rates. The largest language (with a positive target)
keeps its data exactly (rate 1); every other rate follows from the targets, capped at `max_repeats`
copies of a document. A capped language cannot reach its target, so the plan reports the achievable share
beside the target; `balance` then reports the share it achieved.

Rates are applied per document and deterministically: a rate of 2.3 gives every document 2 copies and a
third one when a hash of (id, copy index, seed) falls below 0.3. Copies after the first get the id
`"<id>#rep<k>"` (k = 1, 2, ...), so ids stay unique in the output; the original id is everything before
`#rep`.

The validation split is stratified by language (`val_ids`): each language with at least `min_docs_for_val`
documents gives val `val_count(n)` of its n documents, `val_fraction * n` rounded half up but at least
`min_val_docs`, namely those whose keyed hash of the original id alone (the key `split_of` compares with
`val_fraction`) ranks lowest, ties broken by id; smaller languages keep every document for training. So
every language large enough to measure has val documents (a hash threshold alone left a 5% split of a small
multilingual corpus all English), val never shares a document with train, is never repeated or downsampled,
and stays the same whatever the mix or seed. Choosing the lowest ranks needs each language's size first, so
a pre-pass reads the `id` and `lang` columns (and the text lengths when the plan is to be computed: the same
read that counts bytes per language) and holds ids and hashes only, never texts.

Every input document leaves `balance` exactly once: in train (once or as several copies), in val, or in the
dropped folder with the reason `"downsampled:<lang>"` (REJECTED_SCHEMA), so `docs_in == train_originals +
val_docs + docs_dropped`; `audit_balance` recounts this from disk. The training stream is shuffled through a
bounded buffer (`_ShuffleBuffer`), so a document's copies do not sit next to each other in train.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fm_pipeline.curation.words import split_words
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REJECTED_SCHEMA
from fm_pipeline.lake.parquet_io import DEFAULT_SHARD_BYTES, ShardWriter, iter_rows, list_shards
from fm_pipeline.lake.staging import staged_dir

DEFAULT_WEIGHTS: dict[str, float] = {
    "en": 0.30,
    "zh": 0.15,
    "es": 0.10,
    "ar": 0.08,
    "hi": 0.07,
    "ko": 0.05,
    "*": 0.25,
}
DEFAULT_ALPHA = 0.3
# 5% rather than the usual 1%: the corpora this pipeline runs on by default are small (thousands of
# documents), and 1% would leave a validation set of a few dozen documents, too few for per-language loss.
DEFAULT_VAL_FRACTION = 0.05
# Every language with at least 4 documents gets a val document, even where 5% rounds to none; a language with
# 1-3 documents keeps them all for training, where they do more good than as a 1-document evaluation.
DEFAULT_MIN_VAL_DOCS = 1
DEFAULT_MIN_DOCS_FOR_VAL = 4
REPEAT_SEPARATOR = "#rep"
# Copies of a document enter the buffer together and leave after about this many documents each, so they end
# up thousands of documents apart; 10,000 documents of a few KB is tens of MB of memory.
DEFAULT_SHUFFLE_BUFFER_DOCS = 10_000
OUTPUT_FOLDERS = ("train", "val", "dropped")
_COPY_SUFFIX = REPEAT_SEPARATOR + r"\d+$"  # an RE2 pattern (pyarrow.compute): the `#rep<k>` of a copy


@dataclass(frozen=True)
class MixConfig:
    """How to mix: target `weights`, or temperature `alpha`; weights are the default when neither is set."""

    weights: Mapping[str, float] | None = None
    alpha: float | None = None
    max_repeats: float = 4.0


@dataclass
class MixPlan:
    """Per-language sampling rates (expected training copies per document) and the shares they give."""

    rates: dict[str, float]
    bytes_in: dict[str, int]
    target: dict[str, float]
    achievable: dict[str, float]
    max_repeats: float
    method: str
    alpha: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "alpha": self.alpha,
            "max_repeats": self.max_repeats,
            "languages": {
                lang: {
                    "bytes_in": self.bytes_in[lang],
                    "rate": self.rates[lang],
                    "target": self.target[lang],
                    "achievable": self.achievable[lang],
                }
                for lang in sorted(self.rates)
            },
        }


def target_shares(
    counts_by_lang_bytes: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    alpha: float | None = None,
) -> dict[str, float]:
    """Target share of training bytes per language with data (the shares sum to 1)."""
    present = {lang: n for lang, n in counts_by_lang_bytes.items() if n > 0}
    if alpha is not None:
        if weights is not None:
            raise ValueError("give target weights or a temperature alpha, not both")
        raw = {lang: n**alpha for lang, n in present.items()}
    else:
        weights = DEFAULT_WEIGHTS if weights is None else weights
        named = {lang: float(w) for lang, w in weights.items() if lang != "*" and lang in present}
        others = {lang: n for lang, n in present.items() if lang not in named}
        rest = float(weights.get("*", 0.0))
        others_total = sum(others.values())
        raw = {**named, **{lang: rest * n / others_total for lang, n in others.items()}}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("the targets give no language with data a positive share")
    return {lang: raw[lang] / total for lang in sorted(raw)}


def plan_mix(
    counts_by_lang_bytes: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    alpha: float | None = None,
    max_repeats: float = 4.0,
) -> MixPlan:
    """Sampling rates that reach the target shares as closely as `max_repeats` allows, keeping the
    largest language's data as it is (rate 1). A language listed with 0 bytes gets rate 1 and share 0."""
    if max_repeats < 1:
        raise ValueError("max_repeats must be at least 1")
    shares = target_shares(counts_by_lang_bytes, weights, alpha)
    bytes_in = {lang: int(n) for lang, n in sorted(counts_by_lang_bytes.items())}
    target = {lang: shares.get(lang, 0.0) for lang in bytes_in}
    anchor = min((lang for lang in shares if shares[lang] > 0), key=lambda lang: (-bytes_in[lang], lang))
    total_out = bytes_in[anchor] / target[anchor]
    rates = {lang: min(max_repeats, target[lang] * total_out / n) if n else 1.0 for lang, n in bytes_in.items()}
    rates[anchor] = 1.0
    out = {lang: rates[lang] * bytes_in[lang] for lang in bytes_in}
    achievable = {lang: out[lang] / sum(out.values()) for lang in bytes_in}
    return MixPlan(
        rates=rates,
        bytes_in=bytes_in,
        target=target,
        achievable=achievable,
        max_repeats=max_repeats,
        method="temperature" if alpha is not None else "weights",
        alpha=alpha,
    )


def _add_lang_bytes(totals: dict[str, int], table: pa.Table) -> None:
    """Add the UTF-8 bytes of `table`'s text per language to `totals` (columnar)."""
    table = pa.table({"lang": table.column("lang"), "n": pc.binary_length(table.column("text"))})
    for row in table.group_by("lang").aggregate([("n", "sum")]).to_pylist():
        totals[row["lang"]] = totals.get(row["lang"], 0) + row["n_sum"]


def lang_bytes(shards: Sequence[Path]) -> dict[str, int]:
    """UTF-8 bytes of text per language over the shards (columnar: no Python object per document)."""
    totals: dict[str, int] = {}
    for shard in shards:
        _add_lang_bytes(totals, pq.read_table(shard, columns=["lang", "text"]))
    return dict(sorted(totals.items()))


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (blake2b, identical in every process and run)."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


def _split_key(doc_id: str) -> float:
    """The keyed hash of an original id that decides the split: uniform in [0, 1), independent of the seed."""
    return _unit("split", doc_id)


def split_of(doc_id: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """Per document, without stratification: "val" when the id's split key is below `val_fraction`, else
    "train". `balance` uses the stratified `val_ids` instead, which ranks documents by the same key."""
    return "val" if _split_key(doc_id) < val_fraction else "train"


def val_count(
    n_docs: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    min_val_docs: int = DEFAULT_MIN_VAL_DOCS,
    min_docs_for_val: int = DEFAULT_MIN_DOCS_FOR_VAL,
) -> int:
    """How many of a language's `n_docs` documents go to val: none when `n_docs < min_docs_for_val`, else
    `val_fraction * n_docs` rounded half up, at least `min_val_docs` and at most `n_docs`."""
    if not 0 <= val_fraction <= 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if min_val_docs < 0 or min_docs_for_val < 0:
        raise ValueError("min_val_docs and min_docs_for_val must not be negative")
    if n_docs < min_docs_for_val:
        return 0
    return min(n_docs, max(min_val_docs, math.floor(val_fraction * n_docs + 0.5)))


def _survey(
    shards: Sequence[Path],
    val_fraction: float,
    min_val_docs: int,
    min_docs_for_val: int,
    count_bytes: bool,
) -> tuple[dict[str, int], set[str]]:
    """One pass over the `id` and `lang` columns (and `text`, for its byte length, when `count_bytes`):
    bytes per language (empty unless `count_bytes`) and the val ids (see `val_ids`).
    Holds ids, languages and split keys, columnar, never texts; the val ids become a Python set."""
    totals: dict[str, int] = {}
    parts = []
    for shard in shards:
        table = pq.read_table(shard, columns=["id", "lang", "text"] if count_bytes else ["id", "lang"])
        if count_bytes:
            _add_lang_bytes(totals, table)
        ids = table.column("id").cast(pa.large_string())
        keys = pa.array([_split_key(doc_id) for doc_id in ids.to_pylist()], pa.float64())
        parts.append(pa.table({"lang": table.column("lang").cast(pa.large_string()), "key": keys, "id": ids}))
    if not parts:
        return totals, set()
    table = pa.concat_tables(parts).combine_chunks()
    docs = {row["lang"]: row["lang_count"] for row in table.group_by("lang").aggregate([("lang", "count")]).to_pylist()}
    # Sorted by language (UTF-8 byte order, which is code point order, as `sorted` gives), then key, then id:
    # each language is one run of rows, its lowest keys first.
    order = pc.sort_indices(table, sort_keys=[("lang", "ascending"), ("key", "ascending"), ("id", "ascending")])
    chosen: set[str] = set()
    start = 0
    for lang in sorted(docs):
        k = val_count(docs[lang], val_fraction, min_val_docs, min_docs_for_val)
        chosen.update(table.column("id").take(order.slice(start, k)).to_pylist())
        start += docs[lang]
    return dict(sorted(totals.items())), chosen


def val_ids(
    shards: Sequence[Path],
    val_fraction: float = DEFAULT_VAL_FRACTION,
    min_val_docs: int = DEFAULT_MIN_VAL_DOCS,
    min_docs_for_val: int = DEFAULT_MIN_DOCS_FOR_VAL,
) -> set[str]:
    """The ids `balance` puts in val: per language, the `val_count(n)` documents whose split key (keyed hash
    of the id) is lowest, ties broken by id. Reads only the `id` and `lang` columns."""
    return _survey(shards, val_fraction, min_val_docs, min_docs_for_val, count_bytes=False)[1]


def copies_of(doc_id: str, rate: float, seed: int) -> int:
    """Training copies of one document: floor(rate), plus one more when the hash of (id, copy index,
    seed) falls below the fractional part, so the expected count is exactly `rate`."""
    whole = math.floor(rate)
    return whole + (1 if _unit("copy", doc_id, whole, seed) < rate - whole else 0)


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


class _ShuffleBuffer:
    """A deterministic, memory-bounded shuffle: holds at most `size` rows. Once full, each incoming row takes
    the slot picked by its key (blake2b of id and seed) and the row there is emitted; the rows left at the end
    are emitted in key order. Each row stays about `size` rows on average, so neighbours in the input (the
    copies of one document) leave far apart, and the order depends only on the input, `size` and the seed."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("shuffle_buffer_docs must be at least 1")
        self.size = size
        self.seed = seed
        self.rows: list[dict[str, Any]] = []

    def _key(self, row: dict[str, Any]) -> float:
        return _unit("shuffle", row["id"], self.seed)

    def push(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """Add a row; once the buffer is full, return the row it displaces."""
        if len(self.rows) < self.size:
            self.rows.append(row)
            return None
        slot = int(self._key(row) * self.size)
        out, self.rows[slot] = self.rows[slot], row
        return out

    def drain(self) -> list[dict[str, Any]]:
        """The rows still held, in key order; the buffer is left empty."""
        rows, self.rows = sorted(self.rows, key=self._key), []
        return rows


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
) -> dict[str, Any]:
    """Stream the documents once into `out_dir/train/` and `out_dir/val/` shards (CORPUS_SCHEMA, about
    `shard_bytes` each), repeating or dropping training documents by their language's rate; dropped documents
    go to `out_dir/dropped/` (REJECTED_SCHEMA, reason `"downsampled:<lang>"`), so every input is accounted
    for: `docs_in == train_originals + val_docs + docs_dropped`. `out_dir` is replaced whole, the three
    folders together in one atomic step (`staged_dir`), and only on success; the same input, plan, seed and
    buffer size give byte-identical files.

    Training rows pass through a shuffle buffer of `shuffle_buffer_docs` documents (see `_ShuffleBuffer`),
    so the copies of a document are spread through train rather than adjacent; memory is bounded by the
    buffer. Val and dropped keep the input order.

    Val is stratified by language (`val_ids`, with `val_fraction`, `min_val_docs`, `min_docs_for_val`):
    a pre-pass over the `id` and `lang` columns picks it, and counts the bytes per language for the plan
    in the same read when `plan` is not a `MixPlan`. The report's `val_docs_by_lang` gives the result.

    Diversity (distinct word 4-grams) is measured on the documents whose id hash falls in a sample of
    about `diversity_sample_bytes`, so memory stays bounded whatever the corpus size.
    """
    shards = [Path(s) for s in shards]
    shuffle = _ShuffleBuffer(shuffle_buffer_docs, seed)
    bytes_in, val_set = _survey(
        shards, val_fraction, min_val_docs, min_docs_for_val, count_bytes=not isinstance(plan, MixPlan)
    )
    if not isinstance(plan, MixPlan):
        config = plan or MixConfig()
        plan = plan_mix(bytes_in, config.weights, config.alpha, config.max_repeats)
    sample_fraction = min(1.0, diversity_sample_bytes / max(1, sum(plan.bytes_in.values())))
    table: dict[tuple[str, str], dict[str, int]] = {}
    totals = dict.fromkeys(("docs_in", "train_docs", "train_originals", "val_docs", "docs_dropped", "docs_repeated"), 0)
    max_copies = 0
    before, after = _Diversity(), _Diversity()
    with staged_dir(Path(out_dir)) as staging:
        for split in OUTPUT_FOLDERS:
            (staging / split).mkdir()
        train = ShardWriter(staging / "train", CORPUS_SCHEMA, shard_bytes)
        val = ShardWriter(staging / "val", CORPUS_SCHEMA, shard_bytes)
        dropped = ShardWriter(staging / "dropped", REJECTED_SCHEMA, shard_bytes)
        for row in iter_rows(shards, columns=CORPUS_SCHEMA.names):
            lang, doc_id = row["lang"], row["id"]
            if lang not in plan.rates:
                raise ValueError(f"language {lang!r} of document {doc_id!r} is not in the mix plan")
            size = len(row["text"].encode("utf-8"))
            cell = table.setdefault(
                (lang, row["source"]),
                dict.fromkeys(
                    ("docs_in", "bytes_in", "train_docs", "train_bytes", "val_docs", "val_bytes",
                     "dropped_docs", "dropped_bytes"),
                    0,
                ),
            )
            cell["docs_in"] += 1
            cell["bytes_in"] += size
            totals["docs_in"] += 1
            sampled = _unit("diversity", doc_id) < sample_fraction
            if sampled:
                before.add(row["text"])
            if doc_id in val_set:
                val.write(row)
                cell["val_docs"] += 1
                cell["val_bytes"] += size
                totals["val_docs"] += 1
                continue
            n = copies_of(doc_id, plan.rates[lang], seed)
            if n == 0:
                dropped.write({**row, "reason": f"downsampled:{lang}"})
                cell["dropped_docs"] += 1
                cell["dropped_bytes"] += size
                totals["docs_dropped"] += 1
            for k in range(n):
                out = shuffle.push(row if k == 0 else {**row, "id": f"{doc_id}{REPEAT_SEPARATOR}{k}"})
                if out is not None:
                    train.write(out)
            cell["train_docs"] += n
            cell["train_bytes"] += n * size
            totals["train_docs"] += n
            totals["train_originals"] += int(n > 0)
            totals["docs_repeated"] += int(n > 1)
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
    return {
        **totals,
        "seed": seed,
        "val_fraction": val_fraction,
        "min_val_docs": min_val_docs,
        "min_docs_for_val": min_docs_for_val,
        "val_docs_by_lang": by_lang("val_docs"),
        "max_copies": max_copies,
        "bytes_in": sum(bytes_before.values()),
        "train_bytes": train_total,
        "val_bytes": sum(cell["val_bytes"] for cell in table.values()),
        "dropped_bytes": sum(cell["dropped_bytes"] for cell in table.values()),
        "train_shards": train_shards,
        "val_shards": val_shards,
        "dropped_shards": dropped_shards,
        "shuffle_buffer_docs": shuffle_buffer_docs,
        "plan": plan.as_dict(),
        "by_lang_source": [{"lang": lang, "source": source, **table[lang, source]} for lang, source in sorted(table)],
        "bytes_by_lang": {lang: {"in": bytes_before[lang], "train": bytes_train.get(lang, 0)} for lang in bytes_before},
        "share": {
            lang: {
                "target": plan.target.get(lang, 0.0),
                "achievable": plan.achievable.get(lang, 0.0),
                "achieved": bytes_train.get(lang, 0) / train_total if train_total else 0.0,
            }
            for lang in bytes_before
        },
        "entropy_bits": {"before": _entropy_bits(bytes_before), "after": _entropy_bits(bytes_train)},
        "distinct_4gram_share": {"before": before.share(), "after": after.share(), "sample_fraction": sample_fraction},
    }


def _ids(paths: Sequence[Path]) -> pa.Array:
    """The `id` column of the shards as one array: columnar, so compact even for millions of documents, and
    large_string, so more than 2 GiB of ids still fit in one array."""
    chunks = [c.cast(pa.large_string()) for p in paths for c in pq.read_table(p, columns=["id"]).column("id").chunks]
    return pa.concat_arrays(chunks) if chunks else pa.array([], pa.large_string())


def audit_balance(input_shards: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """Recount `balance`'s accounting from disk, independently of its counters, for an asset check.

    Train ids count once per original (the `#rep<k>` suffix stripped). Keys shared with `balance`'s report
    (`docs_in`, `train_docs`, `train_originals`, `val_docs`, `docs_dropped`) can be compared one to one;
    `train_val_overlap` counts originals in both train and val, `placed_twice` originals in more than one
    output (or twice in one), `missing` inputs in no output, `unknown` outputs that are no input, and
    `exactly_once` is true when the counts add up and those four are all zero.
    """
    inputs = _ids([Path(p) for p in input_shards])
    train = _ids(list_shards(Path(out_dir) / "train"))
    originals = pc.unique(pc.replace_substring_regex(train, pattern=_COPY_SUFFIX, replacement=""))
    val, dropped = _ids(list_shards(Path(out_dir) / "val")), _ids(list_shards(Path(out_dir) / "dropped"))
    placed = pa.concat_arrays([originals, val, dropped])
    counts = pc.value_counts(placed)
    distinct = counts.field("values")
    audit = {
        "docs_in": len(inputs),
        "train_docs": len(train),
        "train_originals": len(originals),
        "val_docs": len(val),
        "docs_dropped": len(dropped),
        "train_val_overlap": pc.sum(pc.is_in(originals, value_set=val)).as_py() or 0,
        "placed_twice": pc.sum(pc.greater(counts.field("counts"), 1)).as_py() or 0,
        "missing": pc.sum(pc.invert(pc.is_in(inputs, value_set=distinct))).as_py() or 0,
        "unknown": pc.sum(pc.invert(pc.is_in(distinct, value_set=inputs))).as_py() or 0,
    }
    adds_up = audit["docs_in"] == audit["train_originals"] + audit["val_docs"] + audit["docs_dropped"]
    problems = audit["train_val_overlap"] + audit["placed_twice"] + audit["missing"] + audit["unknown"]
    return {**audit, "exactly_once": adds_up and problems == 0}
