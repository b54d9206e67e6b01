"""tokenizer: a multilingual SentencePiece model trained on balanced_shards/train, evaluated on val."""

import dagster as dg
import pyarrow as pa

from fm_pipeline.defs.configs import library_config
from fm_pipeline.defs.metadata import COLUMN_SCHEMA, ROW_COUNT, table_schema
from fm_pipeline.defs.policies import TOKENIZER, stage_asset_args
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.stages import finish_stage
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.lake.layout import TOKENIZER_MODEL, TOKENIZER_VOCAB
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.lake.staging import staged_dir
from fm_pipeline.tokenization.evaluate import evaluate_tokenizer, flat_metrics
from fm_pipeline.tokenization.hf_export import export_tokenizer_json
from fm_pipeline.tokenization.train import TokenizerConfig as TokenizerTrainConfig
from fm_pipeline.tokenization.train import train_tokenizer

HF_FILE = "tokenizer.json"
CODE_VERSION = "1"
"""Bump when a change to sampling or training changes the model for the same shards and config."""
TRACKED_SETTINGS = ("vocab_size", "character_coverage", "max_sample_bytes", "seed")
"""The training settings logged as MLflow params (`tokenizer.<name>`), beside the normalization and checksum."""
VOCAB_SCHEMA = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("piece", pa.string(), nullable=False),
                          pa.field("score", pa.float32(), nullable=False)])


class TokenizerConfig(dg.Config):
    vocab_size: int = 8192
    character_coverage: float = 0.9995
    normalization: str = "identity"
    """"identity" (lossless, the default) or "nmt_nfkc_cf" (lossy: NFKC, case folding, whitespace rules)."""
    max_sample_mb: int = 100
    seed: int = 0


@dg.asset(
    deps=["balanced_shards"],
    **stage_asset_args(TOKENIZER, {"sentencepiece", "mlflow"}),
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec("round_trip", asset="tokenizer", blocking=True,
                                   description="decode(encode(x)) == normalized x on every val document")],
)
def tokenizer(context: dg.AssetExecutionContext, config: TokenizerConfig, lake: LakeResource,
              mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """BPE with byte fallback and the five special tokens; also exported as a Hugging Face tokenizer.json.
    Its data version is the hash of the model, vocabulary and tokenizer.json (training is deterministic)."""
    if config.normalization not in ("identity", "nmt_nfkc_cf"):
        raise ValueError(f"normalization must be 'identity' or 'nmt_nfkc_cf', not {config.normalization!r}")
    tok_config = library_config(
        config, TokenizerTrainConfig, renames={"normalization": "normalization_rule_name"},
        make=TokenizerTrainConfig.lossy_settings if config.normalization == "nmt_nfkc_cf" else None)
    out = lake.path("tokenizer")
    train_shards = list_shards(lake.path("balanced_shards") / "train")
    val_shards = list_shards(lake.path("balanced_shards") / "val")
    with staged_dir(out) as staging:
        result = train_tokenizer(train_shards, staging, tok_config)
        if result.vocab_size_note:
            context.log.warning(result.vocab_size_note)
        export_tokenizer_json(staging / TOKENIZER_MODEL, staging / HF_FILE)
        report = evaluate_tokenizer(staging / TOKENIZER_MODEL, val_shards)
        stage = finish_stage(
            context, lake, mlflow_tracking, out=staging, inputs=train_shards + val_shards, code_version=CODE_VERSION,
            params={f"tokenizer.{k}": getattr(tok_config, k) for k in TRACKED_SETTINGS} |
                   {"tokenizer.normalization": config.normalization, "tokenizer.sha256": result.sha256},
            metrics=flat_metrics(report),
            artifact_folders={"tokenizer": [staging / name for name in (TOKENIZER_MODEL, TOKENIZER_VOCAB, HF_FILE)]},
        )
    by_lang = [{"lang": lang, **row} for lang, row in sorted(report["by_lang"].items())]
    trip = report["round_trip"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stage.data_version),
        metadata={
            ROW_COUNT: dg.MetadataValue.int(result.vocab_size),
            COLUMN_SCHEMA: dg.MetadataValue.table_schema(table_schema(VOCAB_SCHEMA, {
                "piece": "a SentencePiece piece (▁ marks a word start; <0xNN> a byte-fallback piece)",
                "score": "its log probability in the unigram sense (BPE: the merge order)"})),
            "vocab_size": result.vocab_size,
            "vocab_size_note": result.vocab_size_note or "",
            "tokenizer_sha256": result.sha256,
            "bytes_per_token": report["overall"]["bytes_per_token"],
            "fertility": report["overall"]["fertility"],
            "by_language": dg.MetadataValue.md(markdown_table(by_lang, [
                "lang", "docs", "fertility", "chars_per_token", "bytes_per_token", "byte_fallback_share",
                "parity_vs_en"])),
            "sample": dg.MetadataValue.json(result.sample),
            **stage.metadata(out / TOKENIZER_MODEL),
        },
        check_results=[dg.AssetCheckResult(check_name="round_trip", passed=trip["failures"] == 0,
                                           metadata={"checked": trip["checked"], "failures": trip["failures"]})],
    )
