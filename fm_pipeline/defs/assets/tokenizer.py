"""tokenizer: a multilingual SentencePiece model trained on balanced_shards/train, evaluated on val."""

import dagster as dg
import mlflow

from fm_pipeline.curation.parquet_io import list_shards, staged_dir
from fm_pipeline.defs.resources import LakeResource, MlflowTracking
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.tokenization.evaluate import evaluate_tokenizer, flat_metrics
from fm_pipeline.tokenization.hf_export import export_tokenizer_json
from fm_pipeline.tokenization.train import MODEL_FILE, VOCAB_FILE, TokenizerConfig, train_tokenizer

HF_FILE = "tokenizer.json"


class TokenizerAssetConfig(dg.Config):
    vocab_size: int = 8192
    character_coverage: float = 0.9995
    normalization: str = "identity"
    """"identity" (lossless, the default) or "nmt_nfkc_cf" (the seed's: NFKC, case folding, whitespace rules)."""
    max_sample_mb: int = 100
    seed: int = 0


@dg.asset(
    deps=["balanced_shards"],
    group_name="tokenization",
    kinds={"sentencepiece"},
    check_specs=[dg.AssetCheckSpec("round_trip", asset="tokenizer",
                                   description="decode(encode(x)) == normalized x on every val document")],
)
def tokenizer(context: dg.AssetExecutionContext, config: TokenizerAssetConfig, lake: LakeResource,
              mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
    """BPE with byte fallback and the seed's special tokens; also exported as a Hugging Face tokenizer.json."""
    if config.normalization not in ("identity", "nmt_nfkc_cf"):
        raise ValueError(f"normalization must be 'identity' or 'nmt_nfkc_cf', not {config.normalization!r}")
    settings = {"vocab_size": config.vocab_size, "character_coverage": config.character_coverage,
                "max_sample_bytes": config.max_sample_mb * 2**20, "seed": config.seed}
    tok_config = TokenizerConfig.seed_settings(**settings) if config.normalization == "nmt_nfkc_cf" else \
        TokenizerConfig(**settings)
    out = lake.path("tokenizer")
    with staged_dir(out) as staging:
        result = train_tokenizer(list_shards(lake.path("balanced_shards") / "train"), staging, tok_config)
        export_tokenizer_json(staging / MODEL_FILE, staging / HF_FILE)
    if result.vocab_size_note:
        context.log.warning(result.vocab_size_note)
    report = evaluate_tokenizer(out / MODEL_FILE, list_shards(lake.path("balanced_shards") / "val"))
    with mlflow_tracking.start_run(context) as run:
        mlflow.log_params({f"tokenizer.{k}": v for k, v in settings.items()} |
                          {"tokenizer.normalization": config.normalization, "tokenizer.sha256": result.sha256})
        mlflow.log_metrics(flat_metrics(report))
        for name in (MODEL_FILE, VOCAB_FILE, HF_FILE):
            mlflow.log_artifact(str(out / name), artifact_path="tokenizer")
    by_lang = [{"lang": lang, **row} for lang, row in sorted(report["by_lang"].items())]
    trip = report["round_trip"]
    return dg.MaterializeResult(
        metadata={
            "vocab_size": result.vocab_size,
            "vocab_size_note": result.vocab_size_note or "",
            "tokenizer_sha256": result.sha256,
            "bytes_per_token": report["overall"]["bytes_per_token"],
            "fertility": report["overall"]["fertility"],
            "by_language": dg.MetadataValue.md(markdown_table(by_lang, [
                "lang", "docs", "fertility", "chars_per_token", "bytes_per_token", "byte_fallback_share",
                "parity_vs_en"])),
            "sample": dg.MetadataValue.json(result.sample),
            "mlflow_run_id": run.info.run_id,
            "path": dg.MetadataValue.path(str(out / MODEL_FILE)),
        },
        check_results=[dg.AssetCheckResult(check_name="round_trip", passed=trip["failures"] == 0,
                                           metadata={"checked": trip["checked"], "failures": trip["failures"]})],
    )
