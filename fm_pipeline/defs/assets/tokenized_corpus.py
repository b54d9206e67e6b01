"""tokenized_corpus: balanced_shards encoded with the tokenizer into flat, memory-mappable token arrays."""

import dagster as dg
import numpy as np
import pyarrow as pa

from fm_pipeline.defs.metadata import COLUMN_SCHEMA, ROW_COUNT, table_schema
from fm_pipeline.defs.policies import IO_RETRY, OWNERS, RERUN_ON_CHANGE, TOKENIZER
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.layout import TOKENIZER_MODEL
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum

SPLITS = ("train", "val")
CODE_VERSION = "1"
"""Bump when a change to encoding or the file format changes the token files."""


class TokenizedCorpusConfig(dg.Config):
    processes: int = 0
    """Worker processes over shards; 0 means one per core."""


@dg.asset(
    deps=["balanced_shards", "tokenizer"],
    group_name=TOKENIZER,
    owners=OWNERS[TOKENIZER],
    kinds={"numpy", "mlflow"},
    code_version=CODE_VERSION,
    retry_policy=IO_RETRY,
    automation_condition=RERUN_ON_CHANGE,
    check_specs=[dg.AssetCheckSpec("matches_tokenizer", asset="tokenized_corpus", blocking=True,
                                   description="every split was encoded by the current tokenizer")],
)
def tokenized_corpus(context: dg.AssetExecutionContext, config: TokenizedCorpusConfig, lake: LakeResource,
                     mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """`<split>.bin` token ids (uint16/uint32) with `<split>.idx.npy` document offsets and a JSON header.
    Its data version is the hash of those files."""
    model = lake.path("tokenizer") / TOKENIZER_MODEL
    out = lake.path("tokenized_corpus")
    shards = {split: list_shards(lake.path("balanced_shards") / split) for split in SPLITS}
    stats = encode_corpus(model, shards, out, processes=config.processes or None)
    checksum = tokenizer_checksum(model)
    headers = {split: PackedTokens.open(out, split).header for split in SPLITS}
    rows = [{"split": split, "lang": lang, "tokens": tokens,
             "bytes_per_token": round(stats[split]["bytes_per_token_by_lang"][lang], 3)}
            for split in SPLITS for lang, tokens in stats[split]["tokens_by_lang"].items()]
    stage = finish_stage(
        context, lake, mlflow_tracking, out=out, inputs=[*shards["train"], *shards["val"], model],
        code_version=CODE_VERSION, params={"tokenizer_sha256": checksum, "dtype": headers["train"]["dtype"]},
        metrics={f"{split}_{k}": stats[split][k] for split in SPLITS for k in ("tokens", "documents")},
    )
    dtype = str(np.dtype(headers["train"]["dtype"]))
    schema = pa.schema([pa.field("document", pa.uint64(), nullable=False),
                        pa.field("tokens", pa.list_(pa.from_numpy_dtype(np.dtype(dtype))), nullable=False)])
    return dg.MaterializeResult(
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
            **stage.metadata(out),
        },
        check_results=[dg.AssetCheckResult(
            check_name="matches_tokenizer",
            passed=all(h["tokenizer_sha256"] == checksum for h in headers.values()),
            metadata={"tokenizer_sha256": checksum},
        )],
    )
