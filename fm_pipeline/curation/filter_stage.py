"""filtered_corpus: normalization, language ID, quality rules, content filters and PII redaction.

Every document leaves exactly once: kept, or rejected with the first rule that dropped it as `reason`.
The work fans out over raw shards in a process pool; each worker writes its own output shards, named
after its input shard's position, so the result does not depend on scheduling and reruns are byte-identical.
`filter_source` runs the stage in one step; `plan_filter`, `filter_group` and `publish_filter` run it as one
step per group of shards (`lake.fanout`) with the same output, byte for byte.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fm_pipeline.curation.content import content_filters, detect_license, has_reservation_notice
from fm_pipeline.curation.conversations import strip_markers
from fm_pipeline.curation.langid.backends import get_detector
from fm_pipeline.curation.langid.segments import identify
from fm_pipeline.curation.normalize import normalize_text
from fm_pipeline.curation.pii.redact import redact_pii
from fm_pipeline.curation.pii_audit import REPORT_LIMIT, scan_shards
from fm_pipeline.curation.quality.profiles import (
    code_rules,
    conversation_rules,
    latex_rules,
    prose_rules,
    table_rules,
)
from fm_pipeline.curation.quality.rule import run_rules
from fm_pipeline.curation.quality.view import TextView
from fm_pipeline.curation.signals import quality_signals
from fm_pipeline.lake.atomic import atomic_write_bytes
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REJECTED_SCHEMA, Document
from fm_pipeline.lake.fanout import (
    WorkItem,
    WorkPlan,
    close_plan,
    completed,
    link_files,
    open_plan,
    run_group,
)
from fm_pipeline.lake.layout import KEPT, MANIFEST, REJECTED, SHARD_PREFIX
from fm_pipeline.lake.parallel import map_shards
from fm_pipeline.lake.parquet_io import (
    DEFAULT_SHARD_BYTES,
    ShardWriter,
    count_rows,
    iter_rows,
    list_shards,
)
from fm_pipeline.lake.staging import staged_dir

CODE_SOURCES = frozenset({"code_repositories"})
CONVERSATION_SOURCES = frozenset({"conversations"})
SAMPLES_PER_REASON = 3


@dataclass(frozen=True)
class FilterConfig:
    lang_backend: str = "fasttext"
    min_lang_score: float = 0.4
    """Prose below this language-ID confidence is dropped as `language:low_confidence`."""
    shard_bytes: int = DEFAULT_SHARD_BYTES
    processes: int = 0
    """Worker processes over shards; 0 means one per core."""


@dataclass
class FilterStats:
    """Counts for one source; `documents_in == kept + sum(rejected_by_reason)` always."""

    documents_in: int = 0
    kept: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    lang_histogram: dict[str, int] = field(default_factory=dict)
    redactions_by_type: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    code_switched: int = 0
    rejected_samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def merge(self, other: FilterStats) -> None:
        self.documents_in += other.documents_in
        self.kept += other.kept
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.code_switched += other.code_switched
        for mine, theirs in ((self.rejected_by_reason, other.rejected_by_reason),
                             (self.lang_histogram, other.lang_histogram),
                             (self.redactions_by_type, other.redactions_by_type)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        for reason, samples in other.rejected_samples.items():
            room = SAMPLES_PER_REASON - len(self.rejected_samples.setdefault(reason, []))
            self.rejected_samples[reason].extend(samples[:max(room, 0)])

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def source_profile(source: str) -> str:
    """`code`, `conversation` or `prose`: which rules judge a source's documents."""
    return "code" if source in CODE_SOURCES else "conversation" if source in CONVERSATION_SOURCES else "prose"


class DocumentFilter:
    """The ordered decision for one document of one source profile (prose, conversation or code): language
    confidence, then the profile's quality rules and content filters as one rule list, the first failure giving
    the reason. Conversations are natural language: language ID (on the turns without their role markers) and
    the prose content filters apply to them."""

    def __init__(self, source: str, config: FilterConfig) -> None:
        self.profile = source_profile(source)
        self.config = config
        self.detector = get_detector(config.lang_backend)
        quality = {"code": code_rules, "conversation": conversation_rules, "prose": prose_rules}[self.profile]()
        self.rules = [*quality, *content_filters("code" if self.profile == "code" else "prose")]
        # Prose derived from structures the prose rules misjudge (`derived`): rule sets by the document's format.
        self.rules_by_format = {"table": [*table_rules(), *content_filters("prose")],
                                "latex": [*latex_rules(), *content_filters("prose")]} if self.profile == "prose" else {}

    def apply(self, doc: Document) -> tuple[Document, str | None, dict[str, int]]:
        """The normalized (and, when kept, PII-redacted) document, its drop reason or None, redactions."""
        doc.text = normalize_text(doc.text)
        if not doc.text:
            return doc, "normalize:empty", {}
        if self.profile != "code":
            found = identify(strip_markers(doc.text) if self.profile == "conversation" else doc.text,
                             self.detector)
            doc.lang, doc.lang_score = found.lang, round(found.score, 4)
            if found.segments:
                doc.meta["lang_segments"] = found.segments
        else:  # natural-language ID means nothing for source code; its language is in meta
            doc.lang, doc.lang_score = "und", 0.0
        view = TextView(doc.text, doc.lang, url=doc.url)
        doc.meta["quality"] = quality_signals(doc.text, doc.lang, view)
        if self.profile == "code":
            doc.meta["license"] = detect_license(doc.text)
        elif has_reservation_notice(doc.text, view.lowered):
            doc.meta["copyright_reserved"] = True
        reason = self._reason(doc, view)
        redacted, counts = redact_pii(doc.text)
        doc.text = redacted
        if counts:
            doc.meta["pii_redactions"] = counts
        return doc, reason, counts

    def _reason(self, doc: Document, view: TextView) -> str | None:
        if self.profile != "code" and (doc.lang == "und" or doc.lang_score < self.config.min_lang_score):
            return "language:low_confidence"
        rules = self.rules_by_format.get(doc.meta.get("format"), self.rules)
        return run_rules(rules, doc.text, doc.lang, view)


def _output_prefix(index: int) -> str:
    """The name prefix of the kept and rejected shards written from the input shard at position `index`."""
    return f"{SHARD_PREFIX}-{index:05d}"


def filter_shard(source: str, shard: Path, index: int, kept_dir: Path, rejected_dir: Path,
                 config: FilterConfig) -> FilterStats:
    """Filter one raw shard into `kept_dir` / `rejected_dir` shards named `part-<index>-<n>.parquet`."""
    decide = DocumentFilter(source, config)
    stats = FilterStats()
    langs: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    redactions: Counter[str] = Counter()
    prefix = _output_prefix(index)
    with ShardWriter(kept_dir, CORPUS_SCHEMA, config.shard_bytes, prefix=prefix) as kept, \
            ShardWriter(rejected_dir, REJECTED_SCHEMA, config.shard_bytes, prefix=prefix) as rejected:
        for row in iter_rows([shard]):
            doc = Document.from_row(row)
            stats.documents_in += 1
            stats.bytes_in += len(doc.text.encode("utf-8", "surrogatepass"))
            doc, reason, counts = decide.apply(doc)
            langs[doc.lang] += 1
            redactions.update(counts)
            stats.code_switched += "lang_segments" in doc.meta
            if reason is None:
                kept.write(doc.to_row())
                stats.kept += 1
                stats.bytes_out += len(doc.text.encode("utf-8", "surrogatepass"))
                continue
            rejected.write({**doc.to_row(), "reason": reason})
            reasons[reason] += 1
            samples = stats.rejected_samples.setdefault(reason, [])
            if len(samples) < SAMPLES_PER_REASON:
                samples.append({"id": doc.id, "lang": doc.lang, "text": doc.text[:160]})
    stats.rejected_by_reason = dict(reasons)
    stats.lang_histogram = dict(langs)
    stats.redactions_by_type = dict(redactions)
    return stats


def _filter_job(job: tuple[str, Path, int, Path, Path, FilterConfig, bool]) -> tuple[FilterStats, list[dict]]:
    source, shard, index, kept_dir, rejected_dir, config, audit = job
    stats = filter_shard(source, shard, index, kept_dir, rejected_dir, config)
    if not audit:
        return stats, []
    prefix = _output_prefix(index) + "-"
    return stats, scan_shards([p for p in list_shards(kept_dir) if p.name.startswith(prefix)])


def _filter_shards(source: str, shards: Sequence[tuple[int, Path]], folder: Path, config: FilterConfig,
                   audit: bool = False) -> tuple[FilterStats, list[dict[str, str]]]:
    """Filter (position, shard) pairs into `folder/kept` and `folder/rejected`, in a pool; stats merged in order.
    With `audit`, each worker then reads back the kept shards it wrote and runs the independent PII detector
    (`pii_audit`) over them: what it found, in shard order, is the second item (at most `REPORT_LIMIT`)."""
    kept_dir, rejected_dir = folder / KEPT, folder / REJECTED
    kept_dir.mkdir()
    rejected_dir.mkdir()
    total, leaks = FilterStats(), []
    jobs = [(source, shard, i, kept_dir, rejected_dir, config, audit) for i, shard in shards]
    for stats, found in map_shards(_filter_job, jobs, config.processes or None):
        total.merge(stats)
        leaks += found
    return total, leaks[:REPORT_LIMIT]


def _write_manifest(folder: Path, total: FilterStats) -> None:
    """Sort the stats' tables (so the manifest does not depend on the order shards were merged in) and write
    them as `_manifest.json`."""
    total.rejected_by_reason = dict(sorted(total.rejected_by_reason.items()))
    total.lang_histogram = dict(sorted(total.lang_histogram.items(), key=lambda kv: (-kv[1], kv[0])))
    total.redactions_by_type = dict(sorted(total.redactions_by_type.items()))
    atomic_write_bytes(folder / MANIFEST, json.dumps(asdict(total), indent=2, sort_keys=True,
                                                     ensure_ascii=False).encode())


def filter_source(source: str, raw_shards: list[Path], output_dir: Path,
                  config: FilterConfig | None = None) -> FilterStats:
    """Filter every raw shard of one source into `output_dir/kept` and `output_dir/rejected`, staged and
    swapped in whole, with `_manifest.json` holding the stats: the whole stage in one step."""
    config = config or FilterConfig()
    with staged_dir(output_dir) as staging:
        total, _ = _filter_shards(source, list(enumerate(raw_shards)), staging, config)
        _write_manifest(staging, total)
    return total


def plan_filter(source: str, raw_shards: list[Path], output_dir: Path, config: FilterConfig, group_bytes: int,
                max_groups: int, version: str = "") -> WorkPlan:
    """The same stage fanned out (`lake.fanout`): groups of raw shards, each filtered by `filter_group` in its
    own step, then `publish_filter`. `version` (the asset's code version) keeps groups of older code from
    being reused; `processes` is left out of the plan, as it does not change the output."""
    settings = {"source": source, "config": {**asdict(config), "processes": 0}, "version": version}
    return open_plan(output_dir, raw_shards, group_bytes, max_groups, settings)


def filter_group(item: WorkItem, processes: int = 0) -> tuple[FilterStats, list[dict[str, str]], bool]:
    """Filter one group's raw shards into its folder of the work area, complete or absent, each worker auditing
    the kept shards it wrote with the independent PII detector: the audit scales out with the groups (and shares
    their pool) instead of reading the whole corpus in the publish step; published files are hard links of
    these, so it holds for them. (Its stats, the PII it found, whether a finished earlier run was reused.)"""
    config = replace(FilterConfig(**item.settings["config"]), processes=processes)

    def work(folder: Path) -> dict:
        stats, leaks = _filter_shards(item.settings["source"], item.group.items(), folder, config, audit=True)
        return {"stats": asdict(stats), "residual_pii": leaks}

    result, reused = run_group(item, work)
    return FilterStats(**result["stats"]), result["residual_pii"], reused


def publish_filter(plan: WorkPlan, output_dir: Path) -> FilterStats:
    """Every group's kept and rejected shards (hard links) and their stats, merged in shard order, into
    `output_dir`, swapped in whole: the same files, byte for byte, as `filter_source`. Removes the work area."""
    total = FilterStats()
    with staged_dir(output_dir) as staging:
        for _, folder, result in completed(plan):
            link_files(folder / KEPT, staging / KEPT)
            link_files(folder / REJECTED, staging / REJECTED)
            total.merge(FilterStats(**result["stats"]))
        _write_manifest(staging, total)
    close_plan(plan)
    return total


def audit_filter(raw_shards: list[Path], output_dir: Path) -> dict[str, int]:
    """Rows on disk, counted independently of the stage: raw in, kept and rejected out."""
    return {
        "documents_in": count_rows(raw_shards),
        "kept": count_rows(list_shards(output_dir / KEPT)),
        "rejected": count_rows(list_shards(output_dir / REJECTED)),
    }
