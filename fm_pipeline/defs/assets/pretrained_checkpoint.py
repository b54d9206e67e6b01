"""pretrained_checkpoint: a graph-backed asset whose steps are ops: prepare data -> train (pool `gpu`) -> evaluate.

Training runs in-process on one device; with `devices > 1` the train op launches the same entry point
under `torchrun` (DDP) as a Dagster Pipes subprocess that streams its progress into the op's log and logs
into the op's MLflow run.
"""

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import sentencepiece as spm

from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.evaluation import sample
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum
from fm_pipeline.tokenization.train import MODEL_FILE
from fm_pipeline.training.callbacks import LogCallback
from fm_pipeline.training.checkpoint import load_checkpoint
from fm_pipeline.training.config import TrainConfig
from fm_pipeline.training.loop import train
from fm_pipeline.training.mlflow_logger import MlflowLogger
from fm_pipeline.training.run import RESULT_FILE

PROMPTS = ("The library opened its doors", "El mercado del pueblo", "오늘 아침에", "今天的天气", "La ville de")
REGISTERED_MODEL = "fm-pipeline-pretrained"


class PretrainingConfig(dg.Config):
    profile: str = "cpu_small"
    """"cpu_small" (a few minutes on two CPU cores on the sample corpus) or "gpu" (GPT-2 small on one H100)."""
    architecture: str = "decoder_only"
    n_layer: int | None = None
    n_head: int | None = None
    d_model: int | None = None
    block_size: int | None = None
    compute_budget_flops: float | None = None
    """When set, the model is sized Chinchilla-optimally for this many FLOPs instead of by shape."""
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str = "auto"
    """"auto" picks CUDA when present."""
    devices: int = 1
    """More than one launches torchrun with this many processes (DDP)."""


@dg.op(ins={"start_after": dg.In(dg.Nothing)}, out=dg.Out(dict))
def prepare_pretraining(config: PretrainingConfig, lake: LakeResource) -> dict:
    """The full TrainConfig, after checking that the token files were made by the current tokenizer."""
    tokenizer = lake.path("tokenizer") / MODEL_FILE
    token_dir = lake.path("tokenized_corpus")
    for split in ("train", "val"):
        PackedTokens.open(token_dir, split, expected_checksum=tokenizer_checksum(tokenizer))
    base = TrainConfig.profile(config.profile)
    shape = {k: v for k, v in {"n_layer": config.n_layer, "n_head": config.n_head, "d_model": config.d_model,
                               "block_size": config.block_size}.items() if v is not None}
    # n_kv_head and d_ff are derived from the shape unless given, so a new shape recomputes them
    derived = {"n_kv_head", "d_ff"} if shape else set()
    kept = {k: v for k, v in base.model.to_dict().items() if k not in derived}
    model = type(base.model).from_dict({**kept, "architecture": config.architecture, **shape})
    overrides: dict[str, Any] = {k: v for k, v in {"steps": config.steps, "batch_size": config.batch_size,
                                                     "lr": config.lr}.items() if v is not None}
    budget = None
    if config.compute_budget_flops:
        budget = {"compute": config.compute_budget_flops, "block_size": model.block_size,
                  "architecture": config.architecture}
    train_config = TrainConfig.profile(
        config.profile, model=model, budget=budget, token_dir=str(token_dir), tokenizer_path=str(tokenizer),
        val_docs_dir=str(lake.path("balanced_shards") / "val"), out_dir=str(lake.path("pretrained_checkpoint")),
        device=config.device, **overrides,
    )
    return {"train_config": train_config.to_dict(), "devices": config.devices}


@dg.op(pool="gpu", out=dg.Out(dict))
def train_model(context: dg.OpExecutionContext, plan: dict, mlflow_tracking: MlflowTracking) -> dict:
    """Train, logging params, per-step metrics, eval metrics and the checkpoint to one MLflow run."""
    config = TrainConfig.from_dict(plan["train_config"])
    with mlflow_tracking.start_run(context, run_name="pretrained_checkpoint") as run:
        if plan["devices"] > 1:
            result = _train_distributed(context, config, plan["devices"], run.info.run_id, mlflow_tracking)
        else:
            trained = train(config, [LogCallback(context.log), MlflowLogger(REGISTERED_MODEL)])
            result = {**asdict(trained), "checkpoint": str(trained.checkpoint)}
        result["mlflow_run_id"] = run.info.run_id
    return result


def _train_distributed(context: dg.OpExecutionContext, config: TrainConfig, devices: int, run_id: str,
                       tracking: MlflowTracking) -> dict:
    """torchrun as a Dagster Pipes subprocess: rank 0 streams progress into this op's log and reports the
    result as a Pipes message; it logs into this op's MLflow run."""
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "launch_config.json"
    config.to_json(config_path)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
               "-m", "fm_pipeline.training.run", "--config", str(config_path), "--mlflow-run-id", run_id,
               "--registered-model", REGISTERED_MODEL]
    context.log.info("launching " + " ".join(command))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.resolved_uri()}
    invocation = dg.PipesSubprocessClient().run(context=context, command=command, env=env)
    messages = invocation.get_custom_messages()
    if not messages:
        raise dg.Failure(f"torchrun finished without reporting a result; see {out / RESULT_FILE}")
    return messages[-1]


@dg.op(out=dg.Out(dg.Nothing))
def evaluate_model(context: dg.OpExecutionContext, result: dict, lake: LakeResource) -> None:
    """Publish the evaluation as the asset's metadata, with sampled continuations in several languages."""
    out = lake.path("pretrained_checkpoint")
    model, model_config = load_checkpoint(out)
    sp = spm.SentencePieceProcessor(model_file=str(lake.path("tokenizer") / MODEL_FILE))
    samples = sample(model, sp, PROMPTS, max_new_tokens=32)
    metrics = result["eval_metrics"]
    by_lang = metrics.get("by_lang", {})
    lines = ["| prompt | continuation |", "| --- | --- |"] + [
        f"| {p} | {' '.join(s.split()).replace('|', '/')} |" for p, s in zip(PROMPTS, samples, strict=True)]
    context.add_output_metadata({
        "eval/val_loss": float(metrics["val_loss"]),
        "eval/val_ppl": float(metrics["val_ppl"]),
        "eval/val_bpb": float(metrics["val_bpb"]),
        "eval/val_bpb_by_lang": dg.MetadataValue.json({k: v.get("val_bpb") for k, v in by_lang.items()}),
        "train/tokens_per_s": float(result["tokens_per_s"]),
        "train/tokens_seen": int(result["tokens_seen"]),
        "train/final_loss": float(result["train_loss"]),
        "parameters": int(result["n_params"]),
        "architecture": model_config.architecture,
        "mlflow_run_id": result["mlflow_run_id"],
        "mlflow_run": _run_link(result["mlflow_run_id"]),
        "samples": dg.MetadataValue.md("\n".join(lines)),
        "path": dg.MetadataValue.path(str(out)),
    })


def _run_link(run_id: str) -> dg.MetadataValue:
    """A clickable link when MLflow is a server, else where the run is stored."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        return dg.MetadataValue.url(f"{uri.rstrip('/')}/#/experiments/0/runs/{run_id}")
    return dg.MetadataValue.text(f"{uri} run {run_id} (see it with `mlflow ui --backend-store-uri {uri}`)")


@dg.graph_asset(group_name="modeling", kinds={"pytorch", "mlflow"},
                ins={"tokenized_corpus": dg.AssetIn(dagster_type=dg.Nothing)})
def pretrained_checkpoint(tokenized_corpus):  # a graph input that only orders the steps

    """A transformer pretrained on tokenized_corpus: model.safetensors + config.json in the lake."""
    return evaluate_model(train_model(prepare_pretraining(start_after=tokenized_corpus)))
