"""compressed_model: the domain-adapted model compressed every configured way, measured side by side, and
the one the selection rule picks within the quality budget (by default the smallest of those fast enough)
published and registered.

One MLflow parent run per materialization, a nested run per technique with its numbers.
"""

import math
from functools import partial

import dagster as dg

from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import checkpoint_metadata, plot
from fm_pipeline.defs.mlflow_logger import flatten, register_logged_checkpoint
from fm_pipeline.defs.partitions import domain_partitions
from fm_pipeline.defs.policies import COMPRESSION, training_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.lake.fingerprint import data_files
from fm_pipeline.lake.layout import LINEAGE_RECORD, TOKENIZER_MODEL
from fm_pipeline.lake.lineage import data_versions, input_entries
from fm_pipeline.lake.parquet_io import list_shards, read_docs
from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS

CODE_VERSION = "5"
"""Bump when a change to the techniques, their measurement or the selection changes the published model."""


class CompressedModelConfig(dg.Config):
    profile: str = "cpu_small"
    """"cpu_small" (every technique on the sample model in a few minutes) or "thorough"."""
    techniques: list[str] | None = None
    """A subset of the techniques, by name (e.g. ["lottery_ticket", "static_int8"]); the profile's when unset."""
    objective: str = "size_at_speed"
    """Within the budget, publish the smallest candidate at least `min_speedup` times faster than fp32 at batch 1,
    else the fastest ("size_at_speed"); or the smallest ("size"); or the fastest ("speed")."""
    min_speedup: float = 1.3
    max_ppl_ratio: float = 1.02
    """The quality budget: domain perplexity at most this multiple of the uncompressed model's."""
    prune_max_ppl_ratio: float | None = None
    """Structured pruning shrinks its fractions until the domain's training documents' perplexity is within this
    multiple of the adapted model's; unset: the profile's (1.015 in "cpu_small", none in "thorough")."""
    head_fraction: float | None = None
    mlp_fraction: float | None = None
    """Structured pruning's shares of each layer's head groups and MLP channels (the profile's when unset:
    0.5 and 0.625 in "cpu_small")."""
    reconstruct_batches: int | None = None
    """Batches of the domain's training text on which structured pruning refits the kept weights to the
    adapted model's block outputs (0: no refit; the profile's, 8, when unset)."""
    recovery_steps: int | None = None
    qat_steps: int | None = None
    distill_steps: int | None = None
    eval_max_docs: int | None = None
    temperature: float | None = None
    alpha: float | None = None
    hidden_weight: float | None = None
    """`distill`'s hidden-state MSE weight (0: logits only)."""
    attention_weight: float | None = None
    feature_weight: float | None = None
    """`distill_features`' weights of the attention-map KL and the hidden-state MSE (1.0 each by default)."""
    progressive_ratios: list[float] | None = None
    """`distill_progressive`'s intermediate sizes (shares of the teacher's parameters), before the student's."""
    lottery_rounds: int | None = None
    lottery_rate: float | None = None
    lottery_rewind_step: int | None = None
    tucker_rank_ratio: float | None = None
    lora_rank: int | None = None
    calibration_batches: int | None = None
    compile: bool | None = None
    """Time candidates compiled by Inductor (the fast path of torchao's int8 kernels on CPUs with AMX or VNNI);
    unset: the profile's choice (on in "thorough")."""


def _finite(metrics: dict) -> dict[str, float]:
    return {k.replace("/", "_") if k.startswith("distill/") else k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)}


@dg.asset(
    partitions_def=domain_partitions,
    deps=["domain_adapted_checkpoint", "tokenized_corpus", "domain_corpus", "balanced_shards"],
    **training_asset_args(COMPRESSION),
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec("within_budget", asset="compressed_model",
                                   description="the published model's perplexity ratio is within the budget")],
)
def compressed_model(context: dg.AssetExecutionContext, config: CompressedModelConfig, lake: LakeResource,
                     mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """The adapted model of one domain quantized, pruned, distilled and factorized; the best candidate within
    the perplexity budget is published with a generate CLI that needs no training code. Its `_lineage.json`
    names the adapted checkpoint it was made from, by data version."""
    import mlflow

    from fm_pipeline.compression.compress import compress
    from fm_pipeline.compression.config import TECHNIQUES, CompressConfig

    domain = context.partition_key
    for name in config.techniques or []:
        if name not in TECHNIQUES:
            raise dg.Failure(f"unknown technique {name!r}; choose from {TECHNIQUES}", allow_retries=False)
    adapted = lake.path("domain_adapted_checkpoint", domain)
    # A vocabulary-expanded checkpoint carries its own tokenizer; its old ids are unchanged, so the general
    # token files still feed the fine-tunes.
    tokenizer = adapted / TOKENIZER_MODEL
    if not tokenizer.is_file():
        tokenizer = lake.path("tokenizer") / TOKENIZER_MODEL
    out = lake.path("compressed_model", domain)
    token_dir = lake.path("tokenized_corpus")
    read = [adapted / WEIGHTS, adapted / CONFIG, tokenizer, *data_files(token_dir),
            *list_shards(lake.path("domain_corpus", domain) / "val"),
            *list_shards(lake.path("domain_corpus", domain) / "train"),
            *list_shards(lake.path("balanced_shards") / "val")]
    lineage_inputs = input_entries(read, lake.base())
    versions = data_versions({"domain_adapted_checkpoint": adapted, "tokenized_corpus": token_dir})
    compress_config = library_config(config, CompressConfig, make=partial(CompressConfig.profile, config.profile),
                                     only_set=True, techniques=tuple(config.techniques) if config.techniques else None)
    with mlflow_tracking.start_run(context, run_name=f"compressed_model[{domain}]") as parent:
        result = compress(adapted, tokenizer, token_dir,
                          list(read_docs(lake.path("domain_corpus", domain) / "val")),
                          list(read_docs(lake.path("balanced_shards") / "val")), compress_config, out,
                          log=context.log.info,
                          calibration_docs=list(read_docs(lake.path("domain_corpus", domain) / "train")))
        mlflow.log_params({k: str(v) for k, v in flatten({"compress": compress_config.to_dict()}).items()})
        for candidate in result.candidates:
            with mlflow.start_run(run_name=candidate.name, nested=True, experiment_id=parent.info.experiment_id,
                                  tags={"dagster.run_id": context.run_id, "dagster.partition": domain,
                                        "compression.method": candidate.name}):
                mlflow.log_metrics(_finite(candidate.metrics))
                mlflow.log_dict(candidate.details, "details.json")
        mlflow.set_tag("compression.method", result.chosen)
        stage = finish_stage(
            context, lake, mlflow_tracking, out=out, inputs=lineage_inputs, code_version=CODE_VERSION,
            outputs=[out / WEIGHTS, out / CONFIG], input_versions=versions, run_id=parent.info.run_id,
            extra={"mlflow_run_id": parent.info.run_id, "method": result.chosen},
            metrics={k: v for k, v in result.contract.items() if isinstance(v, (int, float))},
            artifacts=[result.plot_path],
            artifact_folders={"model": sorted({*(p for p in out.iterdir() if p.is_file()), out / LINEAGE_RECORD})},
        )
        name = f"fm-pipeline-{domain}-compressed"
        version = register_logged_checkpoint(name, "model")

    chosen = result.candidate(result.chosen).metrics
    metadata = {
        **result.contract,
        "compression/rule": result.rule,
        "compression/reason": result.reason,
        "compression/min_speedup": compress_config.min_speedup,
        "compression/domain_ppl": chosen["domain_ppl"],
        "compression/general_ppl_ratio": chosen["general_ppl_ratio"],
        "compression/size_bytes": chosen["size_bytes"],
        "compression/params": chosen["params"],
        "comparison": dg.MetadataValue.md(result.table_markdown),
        "size_vs_ppl": plot(result.plot_path, "size vs perplexity of every candidate"),
        "registered_model_version": f"{name}/{version}",
        **checkpoint_metadata(out / WEIGHTS),
        **stage.metadata(out),
        "generate": f"python -m fm_pipeline.compression.generate {out} --prompt '...'",
    }
    if result.distillation:
        metadata["distill/gap_recovery"] = result.distillation["gap_recovery"]
    for c in result.candidates:
        if c.name in ("distill", "distill_features", "distill_progressive"):
            metadata[f"{c.name}/loss_weights"] = dg.MetadataValue.json({k: c.details[k] for k in
                                                 ("temperature", "alpha", "hidden_weight", "attention_weight")
                                                 if k in c.details})
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="within_budget", passed=result.contract["compression/ppl_ratio"] <= config.max_ppl_ratio,
            metadata={"ppl_ratio": result.contract["compression/ppl_ratio"], "budget": config.max_ppl_ratio})],
    )
