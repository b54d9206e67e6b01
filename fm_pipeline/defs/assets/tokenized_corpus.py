"""tokenized_corpus: balanced_shards encoded with the tokenizer into flat, memory-mappable token arrays."""

import dagster as dg

from fm_pipeline.curation.parquet_io import list_shards
from fm_pipeline.defs.resources import LakeResource
from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.tokenization.encode import encode_corpus
from fm_pipeline.tokenization.packed import PackedTokens, tokenizer_checksum
from fm_pipeline.tokenization.train import MODEL_FILE

SPLITS = ("train", "val")


class TokenizedCorpusConfig(dg.Config):
    processes: int = 0
    """Worker processes over shards; 0 means one per core."""


@dg.asset(
    deps=["balanced_shards", "tokenizer"],
    group_name="tokenization",
    kinds={"numpy"},
    check_specs=[dg.AssetCheckSpec("matches_tokenizer", asset="tokenized_corpus",
                                   description="every split was encoded by the current tokenizer")],
)
def tokenized_corpus(config: TokenizedCorpusConfig, lake: LakeResource) -> dg.MaterializeResult:
    """`<split>.bin` token ids (uint16/uint32) with `<split>.idx.npy` document offsets and a JSON header."""
    model = lake.path("tokenizer") / MODEL_FILE
    out = lake.path("tokenized_corpus")
    shards = {split: list_shards(lake.path("balanced_shards") / split) for split in SPLITS}
    stats = encode_corpus(model, shards, out, processes=config.processes or None)
    checksum = tokenizer_checksum(model)
    headers = {split: PackedTokens.open(out, split).header for split in SPLITS}
    rows = [{"split": split, "lang": lang, "tokens": tokens,
             "bytes_per_token": round(stats[split]["bytes_per_token_by_lang"][lang], 3)}
            for split in SPLITS for lang, tokens in stats[split]["tokens_by_lang"].items()]
    return dg.MaterializeResult(
        metadata={
            **{f"{split}_tokens": stats[split]["tokens"] for split in SPLITS},
            **{f"{split}_documents": stats[split]["documents"] for split in SPLITS},
            **{f"{split}_bytes_per_token": round(stats[split]["bytes_per_token"], 3) for split in SPLITS},
            "dtype": headers["train"]["dtype"],
            "tokenizer_sha256": checksum,
            "tokens_by_language": dg.MetadataValue.md(markdown_table(rows, ["split", "lang", "tokens",
                                                                            "bytes_per_token"])),
            "path": dg.MetadataValue.path(str(out)),
        },
        check_results=[dg.AssetCheckResult(
            check_name="matches_tokenizer",
            passed=all(h["tokenizer_sha256"] == checksum for h in headers.values()),
            metadata={"tokenizer_sha256": checksum},
        )],
    )
