"""domain_adapted_checkpoint: the pretrained model adapted to one domain, evaluated before and after.

One MLflow parent run per materialization, a nested run per strategy tried; the published strategy's
checkpoint is registered as a new version of `fm-pipeline-<domain>`.
"""

from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg

from fm_pipeline.adaptation.config import STRATEGIES, AdaptConfig
from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import checkpoint_metadata
from fm_pipeline.defs.mlflow_logger import MlflowLogger, log_adaptation_run
from fm_pipeline.defs.partitions import domain_partitions
from fm_pipeline.defs.policies import ADAPTATION, training_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.downstream.task_config import STRATEGIES as TASK_STRATEGIES
from fm_pipeline.downstream.task_config import TaskTrainConfig
from fm_pipeline.downstream.tasks import TASK_OF_DOMAIN, TASK_ROOT, task_path
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.lineage import data_versions, input_entries
from fm_pipeline.lake.parquet_io import list_shards, read_docs
from fm_pipeline.lake.paths import DOMAINS
from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS
from fm_pipeline.training.callbacks import LogCallback

TABLE_COLUMNS = ["strategy", "trainable_params", "trainable_share", "domain_ppl", "domain_bpb", "general_ppl",
                 "probe_accuracy", "wall_s"]
MAX_GENERAL_PPL_RISE = 0.10
DOWNSTREAM_COLUMNS = ["task", "strategy", "checkpoint", "f1", "change", "wall_s"]
CODE_VERSION = "2"
"""Bump when a change to the adaptation strategies or their evaluation changes the checkpoint."""


class DomainAdaptedCheckpointConfig(dg.Config):
    profile: str = "cpu_small"
    """"cpu_small" (about a minute per strategy and domain on two CPU cores) or "full" (the seed's settings:
    lr 1e-5, 1,000 warmup steps, 50,000 steps)."""
    strategy: str = "dapt"
    """The published strategy: dapt, vocab_expansion, lora, gradual_unfreezing or discriminative_lr."""
    compare: list[str] = []
    """Further strategies run and evaluated beside it, for the comparison table (not published)."""
    steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    replay_share: float | None = None
    """Share of each batch drawn from balanced_shards/train, against forgetting."""
    device: str | None = None
    downstream_strategies: list[str] = ["discriminative_lr"]
    """Task-adaptive fine-tuning strategies scored on the domain's labelled task, on the pretrained checkpoint
    (baseline) and the adapted one: full, gradual_unfreezing, discriminative_lr, knowledge_distillation,
    multi_task_learning (the first one listed gives the flat `downstream/<task>/f1_*` keys); [] skips it."""
    downstream_epochs: int = TaskTrainConfig().epochs
    """Passes over the task's training examples per fine-tune."""
    downstream_task_root: str | None = None
    """A folder of labelled task files (`<domain>/<task>.jsonl`); default: the ones shipped with the package."""


def _downstream(config: DomainAdaptedCheckpointConfig, domain: str, pretrained: Path, tokenizer: Path,
                published: Any) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The domain's task fine-tuned and scored before and after adaptation: flat metrics and table rows."""
    if not config.downstream_strategies or domain not in TASK_OF_DOMAIN:
        return {}, []
    from fm_pipeline.downstream.evaluate import (
        AFTER,
        BEFORE,
        downstream_metrics,
        downstream_rows,
        evaluate_downstream,
    )

    root = Path(config.downstream_task_root) if config.downstream_task_root else TASK_ROOT
    scores = evaluate_downstream({BEFORE: (pretrained, tokenizer), AFTER: (published.checkpoint, published.tokenizer)},
                                 [TASK_OF_DOMAIN[domain]], config.downstream_strategies,
                                 TaskTrainConfig(epochs=config.downstream_epochs),
                                 task_root=root)
    return downstream_metrics(scores, config.downstream_strategies[0]), downstream_rows(scores)


def _probe_docs(lake: LakeResource) -> dict[str, list[str]] | None:
    """Texts of every domain materialized so far, for the domain probe; None with fewer than two."""
    docs = {d: [t for folder in ("train", "val") if list_shards(lake.path("domain_corpus", d) / folder)
                for _, t in read_docs(lake.path("domain_corpus", d) / folder)] for d in DOMAINS}
    docs = {d: texts for d, texts in docs.items() if texts}
    return docs if len(docs) >= 2 else None


@dg.asset(
    partitions_def=domain_partitions,
    deps=["domain_corpus", "pretrained_checkpoint", "balanced_shards", "tokenizer"],
    **training_asset_args(ADAPTATION),
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec(
        "domain_improved_general_kept", asset="domain_adapted_checkpoint", blocking=True,
        description=f"domain bits per byte went down and general perplexity rose by less than "
                    f"{MAX_GENERAL_PPL_RISE:.0%}")],
)
def domain_adapted_checkpoint(context: dg.AssetExecutionContext, config: DomainAdaptedCheckpointConfig,
                              lake: LakeResource, mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """The pretrained model adapted to one domain by the configured strategy, with domain and general
    perplexity before and after, a domain probe, and a table comparing the strategies tried. Its
    `_lineage.json` names the pretrained checkpoint and the domain corpus it was made from, by data version."""
    import mlflow

    from fm_pipeline.adaptation.adapt import adapt

    domain = context.partition_key
    for name in [config.strategy, *config.compare]:
        if name not in STRATEGIES:
            raise dg.Failure(f"unknown strategy {name!r}; choose from {STRATEGIES}", allow_retries=False)
    for name in config.downstream_strategies:
        if name not in TASK_STRATEGIES:
            raise dg.Failure(f"unknown downstream strategy {name!r}; choose from {TASK_STRATEGIES}",
                             allow_retries=False)
    domain_dir = lake.path("domain_corpus", domain)
    probe_docs = _probe_docs(lake)
    shards = lake.path("balanced_shards")
    inputs = dict(checkpoint_dir=lake.path("pretrained_checkpoint"),
                  tokenizer_path=lake.path("tokenizer") / TOKENIZER_MODEL, domain_train=domain_dir / "train",
                  domain_val=domain_dir / "val", general_val=shards / "val", general_train=shards / "train",
                  probe_docs=probe_docs)
    out = lake.path("domain_adapted_checkpoint", domain)
    pretrained = lake.path("pretrained_checkpoint")
    task_file = task_path(TASK_OF_DOMAIN[domain], Path(config.downstream_task_root or TASK_ROOT))
    read = [pretrained / WEIGHTS, pretrained / CONFIG, inputs["tokenizer_path"],
            *list_shards(domain_dir / "train"), *list_shards(domain_dir / "val"),
            *([task_file] if config.downstream_strategies and task_file.is_file() else [])]
    lineage_inputs = input_entries(read, lake.base())
    versions = data_versions({"pretrained_checkpoint": pretrained, "domain_corpus": domain_dir})
    results, published, version = [], None, None
    with mlflow_tracking.start_run(context, run_name=f"domain_adapted_checkpoint[{domain}]") as parent:
        mlflow.set_tag("adapt.strategy", config.strategy)
        for name in dict.fromkeys([*config.compare, config.strategy]):  # the published one last: its files stay
            adapt_config = library_config(config, AdaptConfig, make=partial(AdaptConfig.profile, config.profile),
                                          only_set=True, strategy=name)
            is_published = name == config.strategy
            target = out if is_published else lake.path("domain_adapted_checkpoint") / "_candidates" / domain / name
            context.log.info(f"{domain}: adapting with {name} ({adapt_config.steps} steps)")
            with mlflow.start_run(run_name=name, nested=True, experiment_id=parent.info.experiment_id,
                                  tags={"dagster.run_id": context.run_id, "dagster.partition": domain}):
                result = adapt(**inputs, out_dir=target, config=adapt_config,
                               callbacks=[LogCallback(context.log), MlflowLogger(None)])
                tokenizer = [] if result.tokenizer.parent == Path(result.checkpoint) else [result.tokenizer]
                registered = log_adaptation_run(result, adapt_config, f"fm-pipeline-{domain}" if is_published
                                                else None, extra_files=tokenizer)
            results.append(result)
            if is_published:
                published, version = result, registered
        context.log.info(f"{domain}: downstream task with {config.downstream_strategies}")
        scores, downstream_table = _downstream(config, domain, pretrained, inputs["tokenizer_path"], published)
        metrics = {**published.metrics(), **scores}
        stage = finish_stage(
            context, lake, mlflow_tracking, out=out, inputs=lineage_inputs, code_version=CODE_VERSION,
            outputs=[p for p in (out / WEIGHTS, out / CONFIG, out / TOKENIZER_MODEL) if p.is_file()],
            input_versions=versions, run_id=parent.info.run_id,
            extra={"mlflow_run_id": parent.info.run_id, "strategy": config.strategy},
            metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        )

    table = markdown_table([r.row() for r in results], TABLE_COLUMNS)
    domain_better = metrics["eval/domain_bpb_after"] < metrics["eval/domain_bpb_before"]
    rise = metrics["eval/general_ppl_after"] / metrics["eval/general_ppl_before"] - 1
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str))},
            "comparison": dg.MetadataValue.md(table),
            **({"downstream": dg.MetadataValue.md(markdown_table(downstream_table, DOWNSTREAM_COLUMNS))}
               if downstream_table else {}),
            "registered_model_version": version or "",
            **checkpoint_metadata(out / WEIGHTS),
            **stage.metadata(out),
        },
        check_results=[dg.AssetCheckResult(
            check_name="domain_improved_general_kept", passed=domain_better and rise < MAX_GENERAL_PPL_RISE,
            metadata={"domain_bpb_before": metrics["eval/domain_bpb_before"],
                      "domain_bpb_after": metrics["eval/domain_bpb_after"], "general_ppl_rise": rise})],
    )
