"""balanced_shards: the deduplicated corpus resampled to a language mix, split into train and val."""

from collections import Counter

import dagster as dg
import pyarrow.parquet as pq

from fm_pipeline.curation.mixing.audit import audit_balance
from fm_pipeline.curation.mixing.balance import balance
from fm_pipeline.curation.mixing.plan import DEFAULT_ALPHA, MixConfig
from fm_pipeline.defs.configs import MB, library_config
from fm_pipeline.defs.metadata import count_table, parquet_metadata, plot
from fm_pipeline.defs.partitions import LANGUAGE_PARTITIONS, adaptable_languages
from fm_pipeline.defs.policies import CORPUS, stage_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.evaluation import plots
from fm_pipeline.lake.documents import CORPUS_SCHEMA
from fm_pipeline.lake.parquet_io import list_shards

CODE_VERSION = "1"
"""Bump when a change to the sampling or the split changes the output."""
PLOT = "_plots/language_mix.png"


class BalancedShardsConfig(dg.Config):
    method: str = "weights"
    """"weights" (per-language targets, `DEFAULT_WEIGHTS` unless `weights` is set) or "temperature"."""
    weights: dict[str, float] | None = None
    alpha: float = DEFAULT_ALPHA
    max_repeats: float = 4.0
    val_fraction: float = 0.05
    min_val_docs: int = 1
    """Val documents at least, per language with `min_docs_for_val` documents or more (stratified split)."""
    min_docs_for_val: int = 4
    seed: int = 0
    shard_mb: int = 64
    mix_tolerance: float = 0.03
    """The mix check passes when every language's achieved share is within this of its achievable share."""


@dg.asset(
    deps=["deduped_corpus"],
    **stage_asset_args(CORPUS, {"parquet", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec("accounting", asset="balanced_shards", blocking=True,
                          description="every document is in train, val or dropped, exactly once"),
        dg.AssetCheckSpec("train_val_disjoint", asset="balanced_shards", blocking=True,
                          description="no document is in both train and val"),
        dg.AssetCheckSpec("language_mix", asset="balanced_shards",
                          description="achieved language shares are within tolerance of the plan (a warning: "
                                      "a mix off target is worth a look, not a reason to stop training)"),
    ],
)
def balanced_shards(context: dg.AssetExecutionContext, config: BalancedShardsConfig, lake: LakeResource,
                    mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """Per-language up/down-sampling to the target mix (or temperature sampling), with a hash-based split.
    Its data version is the hash of the train, val and dropped shards."""
    if config.method not in ("weights", "temperature"):
        raise ValueError(f"method must be 'weights' or 'temperature', not {config.method!r}")
    mix = library_config(config, MixConfig, **({"alpha": None} if config.method == "weights" else {"weights": None}))
    inputs = list_shards(lake.path("deduped_corpus") / "kept")
    out = lake.path("balanced_shards")
    report = balance(inputs, out, mix, seed=config.seed, shard_bytes=config.shard_mb * MB,
                     val_fraction=config.val_fraction, min_val_docs=config.min_val_docs,
                     min_docs_for_val=config.min_docs_for_val)
    audit = audit_balance(inputs, out)
    shares = [{"lang": lang, **{k: round(v, 4) for k, v in s.items()}} for lang, s in report.share.items()]
    worst = max((abs(s["achieved"] - s["achievable"]) for s in shares), default=0.0)
    mix_png = plots.language_mix(
        {k: v["in"] for k, v in report.bytes_by_lang.items()},
        {k: v["train"] for k, v in report.bytes_by_lang.items()}, out / PLOT,
        target={k: v["target"] for k, v in report.share.items()}, title="Language mix before and after balancing")
    splits = {split: list_shards(out / split) for split in ("train", "val")}
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=inputs, code_version=CODE_VERSION, splits=splits,
        params=config.model_dump(), artifacts=[mix_png],
        metrics={k: getattr(report, k) for k in ("documents_in", "train_documents", "val_documents", "dropped",
                                                 "repeated", "train_bytes", "val_bytes")},
    )
    # Register the language partitions here rather than in a sensor: the keys exist the moment the shards do,
    # in any deployment, with or without a daemon (an in-process `make run` has none).
    languages = adaptable_languages({k: v["train"] for k, v in report.bytes_by_lang.items()},
                                    report.val_documents_by_lang)
    context.instance.add_dynamic_partitions(LANGUAGE_PARTITIONS, languages)
    dropped = Counter(r for shard in list_shards(out / "dropped")
                      for r in pq.read_table(shard, columns=["reason"]).column("reason").to_pylist())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **parquet_metadata(splits["train"] + splits["val"], CORPUS_SCHEMA),
            "documents_in": report.documents_in,
            "train_documents": report.train_documents,
            "val_documents": report.val_documents,
            "dropped": report.dropped,
            "repeated": report.repeated,
            "train_bytes": report.train_bytes,
            "val_bytes": report.val_bytes,
            "language_mix": dg.MetadataValue.md(markdown_table(shares, ["lang", "target", "achievable", "achieved"])),
            "lang_by_source": dg.MetadataValue.md(markdown_table(
                report.by_lang_source, ["lang", "source", "documents_in", "bytes_in", "train_documents",
                                        "train_bytes", "val_documents", "dropped"])),
            "bytes_by_lang": dg.MetadataValue.json(report.bytes_by_lang),
            "val_documents_by_lang": dg.MetadataValue.json(report.val_documents_by_lang),
            "language_entropy_bits": dg.MetadataValue.json(report.entropy_bits),
            "distinct_4gram_share": dg.MetadataValue.json(report.distinct_4gram_share),
            "plan": dg.MetadataValue.json(report.plan),
            "language_partitions": dg.MetadataValue.json(languages),
            "dropped_reasons": count_table(dict(dropped), "reason"),
            "language_mix_plot": plot(mix_png, "language mix before and after balancing"),
            **stage.metadata(out),
        },
        check_results=[
            dg.AssetCheckResult(check_name="accounting", passed=bool(audit["exactly_once"]),
                                metadata={k: v for k, v in audit.items() if isinstance(v, int | bool)}),
            dg.AssetCheckResult(check_name="train_val_disjoint", passed=audit["train_val_overlap"] == 0,
                                metadata={"overlap": audit["train_val_overlap"]}),
            dg.AssetCheckResult(check_name="language_mix", passed=worst <= config.mix_tolerance,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"max_abs_deviation": round(worst, 4), "tolerance": config.mix_tolerance}),
        ],
    )
