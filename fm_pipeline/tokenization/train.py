"""Train the SentencePiece BPE tokenizer on a language-balanced, size-bounded sample of the training split.

The sample is streamed to the trainer (`sentence_iterator`), never staged as one big text file. The
training split is already mixed to the pipeline's language weights (`balanced_shards`, repeats included), and
that is the distribution the model trains on, so the sample keeps it: a first, column-wise pass counts bytes per
language, and the second keeps each document with its language's rate, which only re-weights toward
`TokenizerConfig.weights` by downsampling (never by repeating) and bounds the sample to `max_sample_bytes`.
Whether a document is kept is decided by a hash of (seed, id), so the sample depends only on the shards and
the config.

Settings (see `TokenizerConfig`) keep the usual multilingual recipe (BPE, character coverage 0.9995, five
special tokens) plus byte fallback, but make the tokenizer lossless by default (identity normalization,
whitespace kept, whitespace-only pieces allowed): decode(encode(text)) == text for curated text, so a
generative model can write capitals, line breaks and code indentation, and bits per byte are measured on the
text the model actually sees. The usual lossy `nmt_nfkc_cf` (NFKC, case folding, newlines to spaces, runs of
spaces collapsed) stays one config change away.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sentencepiece as spm

from fm_pipeline.curation.mixing.plan import DEFAULT_WEIGHTS, lang_bytes, plan_mix, target_shares
from fm_pipeline.lake.atomic import atomic_write_bytes, atomic_write_text
from fm_pipeline.lake.layout import TOKENIZER_MODEL, TOKENIZER_VOCAB
from fm_pipeline.lake.parquet_io import iter_rows
from fm_pipeline.tokenization.packed import tokenizer_checksum
from fm_pipeline.tokenization.spm_model import parse_model, vocab_text

logger = logging.getLogger(__name__)

# Ids fixed by the contract with the model and the packed-token format.
SPECIAL_TOKENS: dict[str, int] = {"<PAD>": 0, "<UNK>": 1, "<BOS>": 2, "<EOS>": 3, "<MASK>": 4}
# The SentencePiece trainer options that give the five special tokens their ids. "<MASK>" is a control
# symbol, not a user-defined one, so "<MASK>" written in a document stays text.
SPECIAL_TOKEN_OPTIONS: dict[str, object] = {
    "pad_id": 0, "pad_piece": "<PAD>", "unk_id": 1, "unk_piece": "<UNK>",
    "bos_id": 2, "bos_piece": "<BOS>", "eos_id": 3, "eos_piece": "<EOS>", "control_symbols": ["<MASK>"],
}
# 8,192: on the sample corpus (~340 KB of training text; characters at 99.95% coverage, bytes and specials
# take 2,466 pieces) val bytes per token grow fast up to here (2.70 at 4,096, 3.01 at 6,144, 3.23 at
# 8,192) and slowly after (3.40 at 12,288, 3.48 at 16,384), while the train/val gap widens (0.45 -> 1.3 bytes
# per token): further pieces memorize training documents. A multiple of 64 keeps the embedding and output
# matmuls aligned on GPUs. Raise it with the corpus (32k-64k for billions of tokens).
DEFAULT_VOCAB_SIZE = 8192
# SentencePiece's own limit on one input "sentence"; longer ones would be dropped by the trainer.
MAX_SENTENCE_BYTES = 4192
_TOO_HIGH_RE = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW_RE = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


@dataclass(frozen=True)
class TokenizerConfig:
    """Every training knob. `weights` are target shares of sample bytes per language (`"*"`: every other
    language, in proportion to its bytes), as in `curation.mixing.plan`."""

    vocab_size: int = DEFAULT_VOCAB_SIZE
    character_coverage: float = 0.9995
    normalization_rule_name: str = "identity"
    remove_extra_whitespaces: bool = False
    allow_whitespace_only_pieces: bool = True
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # The trainer holds the whole sample in memory (several times its size) and BPE time grows with it;
    # 100 MB is well past the point where an 8k-64k vocabulary stops changing.
    max_sample_bytes: int = 100_000_000
    seed: int = 0

    @classmethod
    def lossy_settings(cls, **overrides: Any) -> TokenizerConfig:
        """The usual lossy normalization: NFKC, case folding, NMT whitespace rules."""
        base: dict[str, Any] = {"normalization_rule_name": "nmt_nfkc_cf", "remove_extra_whitespaces": True,
                                "allow_whitespace_only_pieces": False}
        return cls(**{**base, **overrides})


@dataclass
class TrainResult:
    """Where the tokenizer was written, what it is, and what it was trained on."""

    model_path: Path
    vocab_path: Path
    sha256: str
    vocab_size: int
    vocab_size_requested: int
    vocab_size_note: str | None  # why `vocab_size` differs from the request, when it does
    sample: dict[str, Any]
    seconds: float
    config: TokenizerConfig

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_path"], out["vocab_path"] = str(self.model_path), str(self.vocab_path)
        return out


def _unit(seed: int, doc_id: str) -> float:
    """A number in [0, 1) from (seed, id), the same in every process and run."""
    digest = hashlib.blake2b(f"tokenizer-sample\x1f{seed}\x1f{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def sample_rates(
    bytes_by_lang: Mapping[str, int], weights: Mapping[str, float], max_sample_bytes: int
) -> dict[str, float]:
    """Share of each language's documents to keep: the target mix as closely as downsampling allows
    (`plan_mix` with at most one copy: the largest language is kept whole), scaled to `max_sample_bytes`."""
    plan = plan_mix(bytes_by_lang, weights, max_repeats=1.0)
    planned = sum(plan.rates[lang] * n for lang, n in bytes_by_lang.items())
    scale = min(1.0, max_sample_bytes / planned) if planned else 1.0
    return {lang: rate * scale for lang, rate in plan.rates.items()}


def _split_long(line: str, limit: int) -> Iterator[str]:
    """Pieces of one line of at most `limit` UTF-8 bytes, cut at the last space that fits (the space is
    dropped: training text need not be lossless), or between characters where there is none (CJK)."""
    data = line.encode("utf-8")
    while len(data) > limit:
        head = data[:limit].decode("utf-8", errors="ignore")  # drops only a character cut in half
        cut = head.rfind(" ")
        piece, skip = (head[:cut], 1) if cut > 0 else (head, 0)
        yield piece
        data = data[len(piece.encode("utf-8")) + skip :]
    if data:
        yield data.decode("utf-8")


def sentences(text: str, limit: int = MAX_SENTENCE_BYTES) -> Iterator[str]:
    """The training "sentences" of a document: runs of whole lines up to `limit` bytes, line breaks kept,
    so the tokenizer learns line breaks and line-initial words as they occur in documents."""
    chunk: list[str] = []
    size = 0
    for line in text.split("\n"):
        line_size = len(line.encode("utf-8")) + 1
        if chunk and size + line_size > limit:
            yield "\n".join(chunk)
            chunk, size = [], 0
        if line_size > limit:
            yield from _split_long(line, limit)
            continue
        chunk.append(line)
        size += line_size
    if any(chunk):
        yield "\n".join(chunk)


class _Sample:
    """The sampled sentences, re-readable (one pass over the shards each time) and counted as they go."""

    def __init__(self, shards: Sequence[Path], rates: Mapping[str, float], seed: int) -> None:
        self.shards, self.rates, self.seed = list(shards), dict(rates), seed
        self.docs: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.sentences = 0

    def __iter__(self) -> Iterator[str]:
        self.docs, self.bytes, self.sentences = {}, {}, 0
        for row in iter_rows(self.shards, columns=["id", "lang", "text"]):
            doc_id, lang = row["id"], row["lang"]
            if _unit(self.seed, doc_id) >= self.rates.get(lang, 0.0):
                continue
            self.docs[lang] = self.docs.get(lang, 0) + 1
            self.bytes[lang] = self.bytes.get(lang, 0) + len(row["text"].encode("utf-8"))
            for sentence in sentences(row["text"]):
                self.sentences += 1
                yield sentence


def _train_proto(sample: _Sample, config: TokenizerConfig, vocab_size: int) -> bytes:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample),
        model_writer=buf,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=config.character_coverage,
        normalization_rule_name=config.normalization_rule_name,
        remove_extra_whitespaces=config.remove_extra_whitespaces,
        allow_whitespace_only_pieces=config.allow_whitespace_only_pieces,
        byte_fallback=True,
        max_sentence_length=MAX_SENTENCE_BYTES,
        **SPECIAL_TOKEN_OPTIONS,
        # The thread count is recorded in the model, so a machine-dependent one would change the checksum;
        # the pieces are the same for any count and BPE training gains little from threads.
        num_threads=1,
        minloglevel=1,
    )
    return buf.getvalue()


def _supported_vocab_size(error: RuntimeError, character_coverage: float) -> tuple[int, str] | None:
    """The vocabulary size the data supports, and why, when `error` is SentencePiece refusing the size."""
    if match := _TOO_HIGH_RE.search(str(error)):
        asked, limit = int(match[1]), int(match[2])
        return limit, (f"vocab_size {asked} is more than the sample supports (at most {limit} pieces); "
                       f"trained with {limit}")
    if match := _TOO_LOW_RE.search(str(error)):
        asked, needed = int(match[1]), int(match[2])
        return needed, (f"vocab_size {asked} is less than the {needed} pieces the sample needs at "
                        f"character_coverage={character_coverage} (characters, special and byte pieces); "
                        f"trained with {needed} (lower character_coverage for a smaller vocabulary)")
    return None


def train_tokenizer(train_shards: Sequence[Path], out_dir: Path, config: TokenizerConfig | None = None) -> TrainResult:
    """Train on a balanced sample of `train_shards`; write `tokenizer.model` and `tokenizer.vocab` in `out_dir`.

    A vocabulary size SentencePiece refuses for this sample (too large for the distinct pairs it holds, or
    too small for its characters) is replaced by the nearest size it accepts, with a warning and the reason
    in `vocab_size_note`. Each file is written under a temporary name and renamed; the same shards and
    config give a byte-identical model.
    """
    config = config or TokenizerConfig()
    started = time.perf_counter()
    shards = [Path(s) for s in train_shards]
    bytes_by_lang = lang_bytes(shards)
    if not any(bytes_by_lang.values()):
        raise ValueError("no training text in the shards: nothing to train a tokenizer on")
    rates = sample_rates(bytes_by_lang, config.weights, config.max_sample_bytes)
    sample = _Sample(shards, rates, config.seed)
    vocab_size, note = config.vocab_size, None
    for _ in range(3):
        try:
            proto = _train_proto(sample, config, vocab_size)
            break
        except RuntimeError as error:
            supported = _supported_vocab_size(error, config.character_coverage)
            if supported is None or supported[0] == vocab_size:
                raise
            vocab_size, note = supported
            logger.warning("tokenizer: %s", note)
    else:
        raise RuntimeError(f"SentencePiece accepted no vocabulary size near {config.vocab_size}")
    out_dir = Path(out_dir)
    model_path, vocab_path = out_dir / TOKENIZER_MODEL, out_dir / TOKENIZER_VOCAB
    atomic_write_text(vocab_path, vocab_text(parse_model(proto)))
    atomic_write_bytes(model_path, proto)  # last: the model is the source of truth, the vocab a view of it
    sampled = sum(sample.bytes.values())
    targets = target_shares(bytes_by_lang, config.weights)
    return TrainResult(
        model_path=model_path,
        vocab_path=vocab_path,
        sha256=tokenizer_checksum(model_path),
        vocab_size=vocab_size,
        vocab_size_requested=config.vocab_size,
        vocab_size_note=note,
        sample={
            "documents": sum(sample.docs.values()),
            "bytes": sampled,
            "sentences": sample.sentences,
            "by_lang": {
                lang: {
                    "available_bytes": n,
                    "target_share": round(targets.get(lang, 0.0), 4),
                    "rate": round(rates[lang], 4),
                    "documents": sample.docs.get(lang, 0),
                    "bytes": sample.bytes.get(lang, 0),
                    "share": round(sample.bytes.get(lang, 0) / sampled, 4) if sampled else 0.0,
                }
                for lang, n in bytes_by_lang.items()
            },
        },
        seconds=time.perf_counter() - started,
        config=config,
    )
