"""pretrained_checkpoint: a graph-backed asset whose steps are ops: prepare data -> train (pool `gpu`) -> evaluate.

Training runs in-process on one device; with `devices > 1` the train op launches the same entry point
under `torchrun` (DDP) as a Dagster Pipes subprocess that streams its progress into the op's log and logs
into the op's MLflow run. Architectures in `compare` then train the same way at equal compute, each in a nested
MLflow run (`defs.architecture_comparison`).
"""

import math
import os
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import dagster as dg
import sentencepiece as spm

from fm_pipeline.defs.architecture_comparison import comparison_metadata, train_compared
from fm_pipeline.defs.configs import config_fields, library_config
from fm_pipeline.defs.metadata import checkpoint_metadata, lake_path, plot
from fm_pipeline.defs.mlflow_logger import MlflowLogger
from fm_pipeline.defs.policies import (
    GPU_POOL,
    IO_RETRY,
    OWNERS,
    PRETRAINING,
    RERUN_ON_CHANGE,
    TRAINING_MAX_RUNTIME_S,
    TRAINING_OP_TAGS,
    TRAINING_RETRY,
    TRAINING_TAGS,
)
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.sizing_metadata import sizing_metadata
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.downstream.task_config import TaskTrainConfig
from fm_pipeline.evaluation import plots
from fm_pipeline.evaluation.baselines import token_counts, unigram_entropy
from fm_pipeline.lake.fingerprint import data_files
from fm_pipeline.lake.layout import LINEAGE_RECORD, TOKENIZER_MODEL
from fm_pipeline.lake.lineage import input_entries, read_stage_record
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.selection import Decision, Requirements, decide_architecture
from fm_pipeline.modeling.sizing import memory_estimate
from fm_pipeline.tokenization.packed import PackedTokens, header_path, tokenizer_checksum
from fm_pipeline.training.callbacks import Deadline, EvalHistory, LogCallback, TrainingTimeout
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.equal_compute import compared_variants
from fm_pipeline.training.step_checkpoints import state_dir

PROMPTS = ("The library opened its doors", "El mercado del pueblo", "오늘 아침에", "今天的天气", "La ville de")
REGISTERED_MODEL = "fm-pipeline-pretrained"
CODE_VERSION = "1"
"""Bump when a change to the model, the training loop or the evaluation changes the checkpoint."""
LOSS_PLOT = "_plots/loss_curve.png"
BEAT_UNIGRAM_BY = 0.1
"""Nats per token by which the val loss must be below the val tokens' unigram entropy for the checkpoint check
to pass: a model that learned only token frequencies (or nothing, or diverged) stops here."""
INPUT_ASSETS = ("tokenized_corpus", "tokenizer", "balanced_shards")
"""The stages whose files training reads: token files, the tokenizer, and balanced_shards/val for evaluation."""


class PretrainedCheckpointConfig(dg.Config):
    profile: str = "cpu_small"
    """"cpu_small" (a few minutes on two CPU cores on the sample corpus) or "gpu" (GPT-2 small on one H100)."""
    architecture: str = "decoder_only"
    """decoder_only, encoder_only, encoder_decoder, or "auto": decided from `task`, the shape (block_size,
    `output_tokens`, `bidirectional`) and compute (`compute_budget_flops`, `latency_critical`,
    `memory_budget_mb`) by `modeling.selection.decide_architecture`; the metadata records why."""
    task: str = "language_modeling"
    """For `architecture: auto`: a task type of `modeling.selection.TASK_ARCHITECTURES`."""
    output_tokens: int | None = None
    """For `auto`: tokens generated per example (0: a label or embedding); unset: as the task implies."""
    bidirectional: bool | None = None
    """For `auto`: whether positions need context from both sides; unset: as the task implies."""
    latency_critical: bool = False
    """For `auto`: inference latency matters more than training cost."""
    memory_budget_mb: float | None = None
    """For `auto`: memory for one sequence's KV cache at inference (16-bit)."""
    moe_experts: int | None = None
    """Switch-style sparse feed-forward with this many experts per block (unset or 0: dense, the default)."""
    moe_capacity_factor: float | None = None
    moe_aux_loss_weight: float | None = None
    compare: list[str] = []
    """Architectures trained beside the published one at equal compute, for the `comparison` table (not
    published): `dense`, or `moe_<N>` (N experts of the dense MLP's width, top-1), on the same token files for the
    same steps, scored on the same val text. Their checkpoints: `pretrained_checkpoint.candidates/<name>/`."""
    n_layer: int | None = None
    n_head: int | None = None
    d_model: int | None = None
    block_size: int | None = None
    compute_budget_flops: float | None = None
    """When set, the model is sized Chinchilla-optimally for this many FLOPs instead of by shape."""
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    checkpoint_every: int | None = None
    """Steps between resumable checkpoints: the most work a killed or retried step repeats."""
    resume: str = "auto"
    """"auto" continues the newest step checkpoint of the same run (same training config, tokenizer and token
    files), so a retry or a rerun after a killed step picks up where it stopped, and clears the state of any
    other run; "never" starts over; "must" fails unless there is a state of this run to continue."""
    device: str = "auto"
    """"auto" picks CUDA when present."""
    devices: int = 1
    """More than one launches torchrun with this many processes (DDP)."""
    max_runtime_s: float = TRAINING_MAX_RUNTIME_S
    """Training stops with a failure (not retried) past this many seconds."""


@dg.op(ins={"start_after": dg.In(dg.Nothing)}, out=dg.Out(dict), retry_policy=IO_RETRY)
def prepare_pretraining(config: PretrainedCheckpointConfig, lake: LakeResource) -> dict:
    """The full TrainConfig, after checking that the token files were made by the current tokenizer; and the
    lineage of what training will read: every input file's hash and each input stage's data version."""
    tokenizer = lake.path("tokenizer") / TOKENIZER_MODEL
    token_dir = lake.path("tokenized_corpus")
    for split in ("train", "val"):
        PackedTokens.open(token_dir, split, expected_checksum=tokenizer_checksum(tokenizer))
    val_dir = lake.path("balanced_shards") / "val"
    inputs = input_entries([*data_files(token_dir), tokenizer, *list_shards(val_dir)], lake.base())
    versions = {asset: read_stage_record(lake.path(asset))["data_version"] for asset in INPUT_ASSETS
                if (lake.path(asset) / LINEAGE_RECORD).is_file()}
    base = TrainConfig.profile(config.profile).model
    shape = config_fields(config, type(base), only_set=True)  # the architecture, and any shape field set
    # n_kv_head and d_ff are derived from the shape unless given, so a new shape recomputes them
    derived = {"n_kv_head", "d_ff"} if shape.keys() - {"architecture", *type(base).MOE_FIELDS} else set()
    fields = {k: v for k, v in base.to_dict().items() if k not in derived}
    decision = None
    if config.architecture == "auto":
        decoder = type(base).from_dict({**fields, **shape, "architecture": "decoder_only"})
        decision = _decide_architecture(config, decoder)
        shape["architecture"] = decision.architecture
    model = type(base).from_dict({**fields, **shape})
    try:
        compare = compared_variants(model, config.compare)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    budget = None
    if config.compute_budget_flops:
        budget = {"compute": config.compute_budget_flops, "block_size": model.block_size,
                  "architecture": model.architecture}
    train_config = library_config(
        config, TrainConfig, make=partial(TrainConfig.profile, config.profile), only_set=True, model=model,
        budget=budget, token_dir=str(token_dir), tokenizer_path=str(tokenizer), val_docs_dir=str(val_dir),
        out_dir=str(lake.path("pretrained_checkpoint")), code_version=CODE_VERSION,
    )
    return {"train_config": train_config.to_dict(), "devices": config.devices, "max_runtime_s": config.max_runtime_s,
            "compare": compare,
            "lineage": {"inputs": inputs, "input_versions": versions},
            "architecture_decision": asdict(decision) if decision else None}


def _decide_architecture(config: PretrainedCheckpointConfig, decoder: ModelConfig) -> Decision:
    """`architecture: auto`: the task, the model's context as the input length, and the KV cache per token of
    a 16-bit decoder of this shape for the memory budget."""
    kv_per_token = memory_estimate(decoder, bits=16, batch_size=1, seq_len=1)["kv_cache"]
    budget = config.memory_budget_mb * 2**20 if config.memory_budget_mb is not None else None
    requirements = Requirements(task=config.task, seq_len=decoder.block_size, output_tokens=config.output_tokens,
                                bidirectional=config.bidirectional, compute_budget_flops=config.compute_budget_flops,
                                latency_critical=config.latency_critical, kv_cache_bytes_per_token=kv_per_token,
                                memory_budget_bytes=budget)
    return decide_architecture(requirements)


@dg.op(pool=GPU_POOL, out=dg.Out(dict), retry_policy=TRAINING_RETRY, tags=TRAINING_OP_TAGS)
def train_model(context: dg.OpExecutionContext, plan: dict, mlflow_tracking: MlflowTracking) -> dict:
    """Train, logging params, per-step metrics, eval metrics and the checkpoint to one MLflow run, then the
    architectures of the plan's `compare` list, each into a nested run. Claims the `gpu` pool (one training op
    per GPU), is retried with backoff when it fails (a lost node, the MLflow server), and stops, without a retry,
    past the plan's maximum runtime. With `resume="auto"` a retry, or a rerun after the step's process was
    killed, continues from the newest step checkpoint of the same run."""
    import mlflow

    config = TrainConfig.from_dict(plan["train_config"])
    deadline = Deadline(float(plan["max_runtime_s"] if plan.get("max_runtime_s") is not None
                              else TRAINING_MAX_RUNTIME_S))
    train_one = partial(_train_once, context, devices=plan["devices"], tracking=mlflow_tracking, deadline=deadline)
    with mlflow_tracking.start_run(context, run_name="pretrained_checkpoint") as run:
        versions = plan.get("lineage", {}).get("input_versions", {})
        mlflow.set_tags({f"fm.input_version.{asset}": version for asset, version in versions.items()})
        try:
            result = train_one(config, run.info.run_id, registered_model=REGISTERED_MODEL)
            result["comparison"] = train_compared(context, config, result, plan.get("compare", []), run,
                                                  partial(train_one, registered_model=None))
        except TrainingTimeout as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc
        except Exception as exc:
            if plan["devices"] > 1 and deadline.remaining() < 0:  # torchrun's rank 0 timed out
                raise dg.Failure(f"torchrun stopped past the maximum runtime of {deadline.max_seconds:.0f} s",
                                 allow_retries=False) from exc
            raise
        result["mlflow_run_id"] = run.info.run_id
    result["lineage"] = plan.get("lineage", {})
    result["architecture_decision"] = plan.get("architecture_decision")
    return result


def _train_once(context: dg.OpExecutionContext, config: TrainConfig, run_id: str, *, registered_model: str | None,
                devices: int, tracking: MlflowTracking, deadline: Deadline) -> dict:
    """One training run into the MLflow run `run_id` (active here): in this process, or under torchrun with more
    than one device; the result as a dict. The checkpoint becomes a version of `registered_model` unless None."""
    if devices > 1:
        return _train_distributed(context, config, devices, run_id, tracking, deadline.remaining(), registered_model)
    from fm_pipeline.training.loop import train

    evals = EvalHistory()
    trained = train(config, [LogCallback(context.log), MlflowLogger(registered_model), evals, deadline])
    return {**asdict(trained), "checkpoint": str(trained.checkpoint), "evals": evals.evals}


def _train_distributed(context: dg.OpExecutionContext, config: TrainConfig, devices: int, run_id: str,
                       tracking: MlflowTracking, max_runtime_s: float | None = None,
                       registered_model: str | None = REGISTERED_MODEL) -> dict:
    """torchrun as a Dagster Pipes subprocess: rank 0 streams progress into this op's log and reports the
    result as a Pipes message; it logs into this op's MLflow run."""
    from fm_pipeline.training.run import RESULT_FILE

    out = Path(config.out_dir)
    states = state_dir(out)  # not out_dir: publishing replaces that folder whole
    states.mkdir(parents=True, exist_ok=True)
    config_path = states / "launch_config.json"
    config.to_json(config_path)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
               "-m", "fm_pipeline.defs.train_launch", "--config", str(config_path), "--mlflow-run-id", run_id,
               "--registered-model", registered_model or ""]
    if max_runtime_s is not None:
        command += ["--max-runtime-s", str(max_runtime_s)]
    context.log.info("launching " + " ".join(command))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.resolved_uri()}
    invocation = dg.PipesSubprocessClient().run(context=context, command=command, env=env)
    messages = invocation.get_custom_messages()
    if not messages:
        raise dg.Failure(f"torchrun finished without reporting a result; see {out / RESULT_FILE}")
    return messages[-1]


@dg.op(out=dg.Out(dg.Nothing), retry_policy=IO_RETRY)
def evaluate_model(context: dg.OpExecutionContext, result: dict, lake: LakeResource,
                   mlflow_tracking: MlflowTracking) -> None:
    """Publish the evaluation as the asset's metadata, with sampled continuations in several languages, the
    loss curve, and the lineage record (`_lineage.json` in the checkpoint folder: the data versions and file
    hashes of the inputs), which MLflow also keeps."""
    from fm_pipeline.downstream.crosslingual import crosslingual_transfer, sample_parallel_set
    from fm_pipeline.evaluation.sampling import sample
    from fm_pipeline.modeling.checkpoint import load_checkpoint
    from fm_pipeline.training.loop import TRAIN_CONFIG

    out = lake.path("pretrained_checkpoint")
    model, model_config = load_checkpoint(out)
    sp = spm.SentencePieceProcessor(model_file=str(lake.path("tokenizer") / TOKENIZER_MODEL))
    samples = sample(model, sp, PROMPTS, max_new_tokens=32)
    transfer = [asdict(score) for score in crosslingual_transfer(
        out, lake.path("tokenizer") / TOKENIZER_MODEL, sample_parallel_set(), TaskTrainConfig())]
    metrics = result["eval_metrics"]
    by_lang = metrics.get("by_lang", {})
    lines = ["| prompt | continuation |", "| --- | --- |"] + [
        f"| {p} | {' '.join(s.split()).replace('|', '/')} |" for p, s in zip(PROMPTS, samples, strict=True)]
    lineage = result.get("lineage") or {}
    versions = lineage.get("input_versions", {})
    trained_with = next((i["sha256"] for i in lineage.get("inputs", []) if i["path"].endswith("/" + TOKENIZER_MODEL)),
                        tokenizer_checksum(lake.path("tokenizer") / TOKENIZER_MODEL))
    curve = plots.loss_curve([(h["step"], h["loss"]) for h in result.get("history", [])], out / LOSS_PLOT,
                             val=[(e["step"], e["val_loss"]) for e in result.get("evals", []) if "val_loss" in e],
                             title="pretrained_checkpoint loss")
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=lineage.get("inputs", []), code_version=CODE_VERSION,
        outputs=[out / WEIGHTS, out / CONFIG], input_versions=versions, run_id=result["mlflow_run_id"],
        extra={"mlflow_run_id": result["mlflow_run_id"], "val_loss": float(metrics["val_loss"]),
               "tokenizer_sha256": trained_with},
        artifacts=[curve],
    )
    input_rows = [{"asset": asset, "data_version": version} for asset, version in sorted(versions.items())]
    trained = TrainConfig.from_json(out / TRAIN_CONFIG)
    context.add_output_metadata({
        **checkpoint_metadata(out / WEIGHTS),
        "eval/val_loss": float(metrics["val_loss"]),
        "eval/val_ppl": float(metrics["val_ppl"]),
        "eval/val_bpb": float(metrics["val_bpb"]),
        "eval/val_bpb_by_lang": dg.MetadataValue.json({k: v.get("val_bpb") for k, v in by_lang.items()}),
        "train/tokens_per_s": float(result["tokens_per_s"]),
        "train/tokens_seen": int(result["tokens_seen"]),
        "train/resumed_from_step": int(result["resumed_from_step"]),
        "train/final_loss": float(result["train_loss"]),
        "parameters": int(result["n_params"]),
        "architecture": model_config.architecture,
        **sizing_metadata(model_config, trained.batch_size, int(result["tokens_seen"]), result.get("history", []),
                          result.get("architecture_decision")),
        "samples": dg.MetadataValue.md("\n".join(lines)),
        # a head trained on the English passages of the sample's translated articles, scored on every language
        # (English on its own training passages; the others zero-shot, one article each in the sample)
        "crosslingual": dg.MetadataValue.md(markdown_table(transfer, ["lang", "passages", "accuracy", "macro_f1"])),
        **{f"crosslingual/{row['lang']}/accuracy": float(row["accuracy"]) for row in transfer},
        **comparison_metadata(result.get("comparison")),
        "loss_curve": plot(curve, "training and validation loss by step"),
        "lineage/tokenizer_sha256": stage.record["extra"]["tokenizer_sha256"],
        "lineage/inputs": dg.MetadataValue.md(markdown_table(input_rows, ["asset", "data_version"])),
        "lineage/record": lake_path(out / LINEAGE_RECORD),
        **stage.metadata(out, with_data_version=False),
    })


@dg.graph_asset(
    group_name=PRETRAINING,
    owners=OWNERS[PRETRAINING],
    kinds={"pytorch", "mlflow"},
    code_version=CODE_VERSION,
    tags=TRAINING_TAGS,
    automation_condition=RERUN_ON_CHANGE,
    ins={"tokenized_corpus": dg.AssetIn(dagster_type=dg.Nothing)},
)
def pretrained_checkpoint(tokenized_corpus):  # a graph input that only orders the steps
    """A transformer pretrained on tokenized_corpus: model.safetensors + config.json in the lake, with
    `_lineage.json` naming the data versions and file hashes of the token files, tokenizer and val shards it
    read. Steps: prepare (config, lineage) -> train (pool `gpu`) -> evaluate."""
    return evaluate_model(train_model(prepare_pretraining(start_after=tokenized_corpus)))


@dg.asset_check(asset=pretrained_checkpoint, blocking=True,
                description=f"the published checkpoint loads, its val loss is at least {BEAT_UNIGRAM_BY} nats below "
                            "the unigram entropy of the val tokens (what a model that learned only token "
                            "frequencies scores: an untrained or diverged model stops here), it has a loss curve, "
                            "and its lineage names the tokenizer the token files were made with")
def checkpoint_sound(lake: LakeResource) -> dg.AssetCheckResult:
    from fm_pipeline.modeling.checkpoint import load_checkpoint

    out = lake.path("pretrained_checkpoint")
    problems = []
    _, model_config = load_checkpoint(out)
    record = read_stage_record(out)
    token_dir = lake.path("tokenized_corpus")
    token_header = PackedTokens.open(token_dir, "train").header
    if record["extra"]["tokenizer_sha256"] != token_header["tokenizer_sha256"]:
        problems.append("the token files were made by another tokenizer than the one recorded")
    if not (out / LOSS_PLOT).is_file():
        problems.append("no loss curve")
    split = "val" if header_path(token_dir, "val").is_file() else "train"
    baseline = unigram_entropy(token_counts(PackedTokens.open(token_dir, split).tokens, model_config.vocab_size))
    val_loss = record["extra"].get("val_loss")
    if val_loss is None or not math.isfinite(val_loss) or val_loss > baseline - BEAT_UNIGRAM_BY:
        problems.append(f"val loss {val_loss} is not {BEAT_UNIGRAM_BY} below the {split} tokens' unigram entropy "
                        f"{baseline:.3f}")
    return dg.AssetCheckResult(passed=not problems, metadata={
        "problems": dg.MetadataValue.json(problems), "val_loss": val_loss if val_loss is not None else float("nan"),
        "unigram_entropy": baseline, "required_gain": BEAT_UNIGRAM_BY, "baseline_split": split,
        "data_version": record["data_version"]})
