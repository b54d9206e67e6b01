"""language_adapted_checkpoint: the pretrained model adapted to one language, every language measured before and
after (forgetting).

Partitioned by language with dynamic partitions that `balanced_shards` registers for the languages it holds.
One MLflow parent run per materialization, a nested run per strategy tried; the published strategy's checkpoint
lands in `lake/language_adapted_checkpoint/<lang>/`, the compared ones under `_candidates/<lang>/<strategy>/`, and
is registered as a new version of `fm-pipeline-lang-<lang>` (beside the domains' `fm-pipeline-<domain>`; the
prefix keeps a language code from ever meaning a domain's model).
"""

from functools import partial
from typing import TYPE_CHECKING

import dagster as dg

from fm_pipeline.adaptation.language_config import LANGUAGE_STRATEGIES, SHARED_WEIGHT_STRATEGIES, LanguageAdaptConfig
from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import checkpoint_metadata
from fm_pipeline.defs.mlflow_logger import MlflowLogger, log_adaptation_run
from fm_pipeline.defs.partitions import language_partitions
from fm_pipeline.defs.policies import ADAPTATION, training_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.layout import LINEAGE_RECORD, TOKENIZER_MODEL
from fm_pipeline.lake.lineage import data_versions, input_entries
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS
from fm_pipeline.training.callbacks import LogCallback

if TYPE_CHECKING:
    from fm_pipeline.adaptation.language import LanguageAdaptResult

TABLE_COLUMNS = ["strategy", "trainable_params", "trainable_share", "lang_ppl", "lang_bpb", "others_ppl",
                 "max_forgetting", "retrieval", "wall_s"]
FORGETTING_COLUMNS = ["lang", "ppl_before", "ppl_after", "ppl_change", "bpb_before", "bpb_after"]
MAX_FORGETTING = 0.10
"""The most any other language's perplexity may rise under a strategy that changes shared weights."""
CODE_VERSION = "1"
"""Bump when a change to the language strategies or their evaluation changes the checkpoint."""


class LanguageAdaptedCheckpointConfig(dg.Config):
    profile: str = "cpu_small"
    """"cpu_small" (well under a minute per strategy and language on two CPU cores) or "full" (the seed's
    continued-pretraining settings)."""
    strategy: str = "continual"
    """The published strategy: continual, adapter, lora, output_head or alignment."""
    compare: list[str] = []
    """Further strategies run and evaluated beside it, for the comparison table (not published)."""
    steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    replay_share: float | None = None
    """Share of each batch drawn from the other languages' training text, against forgetting."""
    device: str | None = None


def _passed(result: "LanguageAdaptResult") -> tuple[bool, dict[str, float | bool]]:
    """The target language's bits per byte went down; a strategy that changes shared weights kept every other
    language's perplexity within `MAX_FORGETTING`; alignment did not lose retrieval accuracy."""
    m = result.metrics()
    shared = result.strategy in SHARED_WEIGHT_STRATEGIES
    improved = m["eval/lang_bpb_after"] < m["eval/lang_bpb_before"]
    kept = not shared or m["eval/max_forgetting"] < MAX_FORGETTING
    aligned = result.strategy != "alignment" or (
        m["eval/retrieval_accuracy_after"] >= m["eval/retrieval_accuracy_before"])
    return improved and kept and aligned, {
        "lang_bpb_before": m["eval/lang_bpb_before"], "lang_bpb_after": m["eval/lang_bpb_after"],
        "max_forgetting": m["eval/max_forgetting"], "shared_weights": shared}


@dg.asset(
    partitions_def=language_partitions,
    deps=["balanced_shards", "pretrained_checkpoint", "tokenizer"],
    **training_asset_args(ADAPTATION),
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec(
        "language_improved_others_kept", asset="language_adapted_checkpoint", blocking=True,
        description=f"the language's bits per byte went down and, where shared weights changed, no other "
                    f"language's perplexity rose by {MAX_FORGETTING:.0%} or more")],
)
def language_adapted_checkpoint(context: dg.AssetExecutionContext, config: LanguageAdaptedCheckpointConfig,
                                lake: LakeResource, mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """The pretrained model adapted to one language by the configured strategy, with that language's perplexity
    before and after, a forgetting table over the other languages, and a table comparing the strategies tried.
    Its `_lineage.json` names the pretrained checkpoint and the balanced shards it was made from."""
    import mlflow

    from fm_pipeline.adaptation.alignment import lake_translation_pairs
    from fm_pipeline.adaptation.language import RESULT_FILE, LanguageAdaptResult, adapt_language

    lang = context.partition_key
    for name in [config.strategy, *config.compare]:
        if name not in LANGUAGE_STRATEGIES:
            raise dg.Failure(f"unknown strategy {name!r}; choose from {LANGUAGE_STRATEGIES}", allow_retries=False)
    shards, pretrained = lake.path("balanced_shards"), lake.path("pretrained_checkpoint")
    tokenizer = lake.path("tokenizer") / TOKENIZER_MODEL
    out = lake.path("language_adapted_checkpoint", lang)
    read = [pretrained / WEIGHTS, pretrained / CONFIG, tokenizer, *list_shards(shards / "train"),
            *list_shards(shards / "val")]
    versions = data_versions({"pretrained_checkpoint": pretrained, "balanced_shards": shards})
    make = partial(LanguageAdaptConfig.profile, config.profile)
    pivot = LanguageAdaptConfig().pivot
    has_pairs = lang != pivot and len(lake_translation_pairs([shards / "train", shards / "val"], lang, pivot)) >= 2
    if config.strategy == "alignment" and not has_pairs:
        raise dg.Failure(f"alignment needs parallel text: no {lang!r} document in balanced_shards translates a "
                         f"{pivot!r} one (meta.translation_of)", allow_retries=False)
    results: list[LanguageAdaptResult] = []
    published, version = None, None
    with mlflow_tracking.start_run(context, run_name=f"language_adapted_checkpoint[{lang}]") as parent:
        mlflow.set_tag("adapt.strategy", config.strategy)
        for name in dict.fromkeys([*config.compare, config.strategy]):  # the published one last: its files stay
            if name == "alignment" and not has_pairs:
                context.log.info(f"{lang}: no parallel text, alignment left out of the comparison")
                continue
            adapt_config = library_config(config, LanguageAdaptConfig, make=make, only_set=True, strategy=name)
            is_published = name == config.strategy
            target = out if is_published else lake.path("language_adapted_checkpoint") / "_candidates" / lang / name
            context.log.info(f"{lang}: adapting with {name} ({adapt_config.steps} steps)")
            with mlflow.start_run(run_name=name, nested=True, experiment_id=parent.info.experiment_id,
                                  tags={"dagster.run_id": context.run_id, "dagster.partition": lang}):
                result = adapt_language(pretrained, tokenizer, shards / "train", shards / "val", lang, target,
                                        adapt_config, callbacks=[LogCallback(context.log), MlflowLogger(None)])
                mlflow.log_dict({"forgetting": result.forgetting()}, "forgetting.json")
                registered = log_adaptation_run(result, adapt_config,
                                                f"fm-pipeline-lang-{lang}" if is_published else None)
            results.append(result)
            if is_published:
                published, version = result, registered
        metrics = published.metrics()
        stage = finish_stage(
            context, lake, mlflow_tracking, out=out, inputs=input_entries(read, lake.base()),
            code_version=CODE_VERSION,
            outputs=[p for p in sorted(out.iterdir()) if p.name not in (RESULT_FILE, LINEAGE_RECORD)],
            input_versions=versions, run_id=parent.info.run_id,
            extra={"mlflow_run_id": parent.info.run_id, "strategy": config.strategy, "language": lang},
            metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        )

    passed, check_metadata = _passed(published)
    forgetting = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                  for row in published.forgetting()]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str))},
            "forgetting": dg.MetadataValue.md(markdown_table(forgetting, FORGETTING_COLUMNS)),
            "comparison": dg.MetadataValue.md(markdown_table([r.row() for r in results], TABLE_COLUMNS)),
            "registered_model_version": version or "",
            **checkpoint_metadata(out / WEIGHTS),
            **stage.metadata(out),
        },
        check_results=[dg.AssetCheckResult(check_name="language_improved_others_kept", passed=passed,
                                           metadata=check_metadata)],
    )
