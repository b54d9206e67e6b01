"""tokenized_corpus: balanced_shards encoded with the tokenizer into flat, memory-mappable token arrays.

A graph-backed asset fanned out by shard (`defs.fanout`): `plan_tokenized_corpus` cuts the shards of both
splits into groups, `encode_shard_group` encodes one group per step, `publish_tokenized_corpus` packs each split
in shard order, swaps the folder in and records the materialization, its check, lineage and MLflow run."""

from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa

from fm_pipeline.defs.fanout import (
    FanOutConfig,
    check_outs,
    emit_plan,
    graph_outputs,
    group_out,
    one_config,
    plan_outs,
    unreadable_shards_fail_at_once,
)
from fm_pipeline.defs.metadata import COLUMN_SCHEMA, ROW_COUNT, table_schema
from fm_pipeline.defs.policies import IO_RETRY, TOKENIZER, stage_graph_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.fanout import WorkItem, WorkPlan
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.tokenization.encode_groups import encode_group, plan_encoding, publish_encoding
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum

SPLITS = ("train", "val")
CODE_VERSION = "1"
"""Bump when a change to encoding or the file format changes the token files."""
CHECKS = [dg.AssetCheckSpec("matches_tokenizer", asset="tokenized_corpus", blocking=True,
                            description="every split was encoded by the current tokenizer")]


class TokenizedCorpusConfig(FanOutConfig):
    processes: int = 0
    """Worker processes over the shards of one group step; 0 means one per core."""


@dg.op(ins={"balanced": dg.In(dg.Nothing), "tokenizer_ready": dg.In(dg.Nothing)}, out=plan_outs(),
       retry_policy=IO_RETRY)
def plan_tokenized_corpus(config: TokenizedCorpusConfig, lake: LakeResource):
    """Groups of the train then val shards, one step each, and their work area beside the token folder."""
    shards = {split: list_shards(lake.path("balanced_shards") / split) for split in SPLITS}
    yield from emit_plan(plan_encoding(lake.path("tokenizer") / TOKENIZER_MODEL, shards,
                                       lake.path("tokenized_corpus"), config.group_bytes(), config.max_steps,
                                       version=CODE_VERSION))


@dg.op(out=group_out(), retry_policy=IO_RETRY)
def encode_shard_group(context: dg.OpExecutionContext, config: TokenizedCorpusConfig, item: dict) -> dict:
    """Encode one group of shards into the work area, complete or absent; a group finished by an earlier
    attempt is reused, not redone."""
    work = WorkItem.from_dict(item)
    with unreadable_shards_fail_at_once(work.group.key):
        result, reused = encode_group(work, config.processes or None)
    documents = sum(sum(part["documents_by_lang"].values()) for part in result["parts"])
    context.log.info(f"{work.group.key}: {len(work.group.shards)} shards, {documents} documents"
                     + (" (finished earlier, reused)" if reused else ""))
    return {"group": work.group.key, "documents": documents, "reused": reused}


@dg.op(out=check_outs(CHECKS), retry_policy=IO_RETRY)
def publish_tokenized_corpus(context: dg.OpExecutionContext, lake: LakeResource, mlflow_tracking: MlflowTracking,
                             plan: dict, groups: list):
    """Pack both splits from the groups' files and swap the folder in, then the check, lineage and MLflow run."""
    work = WorkPlan.from_dict(plan)
    model = lake.path("tokenizer") / TOKENIZER_MODEL
    out = lake.path("tokenized_corpus")
    shards = [Path(shard) for group in work.groups for shard in group.shards]  # what the groups encoded
    stats = publish_encoding(work, out)
    checksum = tokenizer_checksum(model)
    headers = {split: PackedTokens.open(out, split).header for split in SPLITS}
    rows = [{"split": split, "lang": lang, "tokens": tokens,
             "bytes_per_token": round(stats[split]["bytes_per_token_by_lang"][lang], 3)}
            for split in SPLITS for lang, tokens in stats[split]["tokens_by_lang"].items()]
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=[*shards, model],
        code_version=CODE_VERSION, params={"tokenizer_sha256": checksum, "dtype": headers["train"]["dtype"]},
        metrics={f"{split}_{k}": stats[split][k] for split in SPLITS for k in ("tokens", "documents")},
    )
    dtype = str(np.dtype(headers["train"]["dtype"]))
    schema = pa.schema([pa.field("document", pa.uint64(), nullable=False),
                        pa.field("tokens", pa.list_(pa.from_numpy_dtype(np.dtype(dtype))), nullable=False)])
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            ROW_COUNT: dg.MetadataValue.int(sum(stats[split]["documents"] for split in SPLITS)),
            COLUMN_SCHEMA: dg.MetadataValue.table_schema(table_schema(schema, {
                "document": "position in `<split>.idx.npy` (start offset into `<split>.bin`)",
                "tokens": "the document's token ids, <BOS> ... <EOS>"})),
            **{f"{split}_tokens": stats[split]["tokens"] for split in SPLITS},
            **{f"{split}_documents": stats[split]["documents"] for split in SPLITS},
            **{f"{split}_bytes_per_token": round(stats[split]["bytes_per_token"], 3) for split in SPLITS},
            "dtype": headers["train"]["dtype"],
            "tokenizer_sha256": checksum,
            "tokens_by_language": dg.MetadataValue.md(markdown_table(rows, ["split", "lang", "tokens",
                                                                            "bytes_per_token"])),
            "fanout/groups": len(groups),
            "fanout/groups_reused": sum(bool(g["reused"]) for g in groups),
            **stage.metadata(out),
        },
        check_results=[dg.AssetCheckResult(
            check_name="matches_tokenizer",
            passed=all(h["tokenizer_sha256"] == checksum for h in headers.values()),
            metadata={"tokenizer_sha256": checksum},
        )],
    )


@dg.graph_asset(
    ins={"balanced_shards": dg.AssetIn(dagster_type=dg.Nothing), "tokenizer": dg.AssetIn(dagster_type=dg.Nothing)},
    **stage_graph_args(TOKENIZER, {"numpy", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=CHECKS,
    config=one_config(TokenizedCorpusConfig, "plan_tokenized_corpus", "encode_shard_group"),
)
def tokenized_corpus(balanced_shards, tokenizer):  # graph inputs that only order the steps
    """`<split>.bin` token ids (uint16/uint32) with `<split>.idx.npy` document offsets and a JSON header.
    One step per group of shards (`max_steps`, `shard_group_mb`), then one that packs and publishes. Its data
    version is the hash of those files."""
    plan = plan_tokenized_corpus(balanced=balanced_shards, tokenizer_ready=tokenizer)
    groups = plan.items.map(encode_shard_group).collect()
    return graph_outputs(publish_tokenized_corpus(plan.plan, groups), CHECKS)
