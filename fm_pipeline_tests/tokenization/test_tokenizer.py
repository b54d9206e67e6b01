"""Training the tokenizer: fixed special ids, lossless round trips in many scripts, byte fallback for scripts it
never saw, the vocabulary-size fallback, the language-balanced sample, deterministic and atomic output."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import pytest
import sentencepiece as spm

from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.tokenization.packed import tokenizer_checksum
from fm_pipeline.tokenization.spm_model import PieceType, parse_model, read_model, vocab_text
from fm_pipeline.tokenization.train import (
    MAX_SENTENCE_BYTES,
    SPECIAL_TOKENS,
    TOKENIZER_MODEL,
    TOKENIZER_VOCAB,
    TokenizerConfig,
    TrainResult,
    sample_rates,
    sentences,
    train_tokenizer,
)

MULTILINGUAL = {
    "ko": "대한민국은 민주공화국이다. 모든 국민은 인간으로서의 존엄과 가치를 가진다.",
    "zh": "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心。",
    "ar": "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
    "hi": "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।",
    "emoji": "Great job 👍🏽 see you soon 🎉🇰🇷 👨‍👩‍👧‍👦!",
    "layout": "def f(x):\n    return x  # Two  spaces\n\n\tTabbed, UPPER and lower.\n",
}
# Scripts absent from the sample corpus: Georgian, Cherokee, Linear B (4-byte UTF-8, outside the BMP).
UNSEEN = {"georgian": "ქართული ენა", "cherokee": "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "linear_b": "𐀀𐀁𐀂𐀃"}


def _processor(result: TrainResult) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(result.model_path))


def test_special_tokens_have_the_contract_ids(trained: TrainResult) -> None:
    sp = _processor(trained)
    assert [sp.id_to_piece(i) for i in range(5)] == ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "<MASK>"]
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.piece_to_id("<MASK>")) == (0, 1, 2, 3, 4)
    assert SPECIAL_TOKENS == {"<PAD>": 0, "<UNK>": 1, "<BOS>": 2, "<EOS>": 3, "<MASK>": 4}
    assert sp.is_control(4) and sp.is_unknown(1)
    # <MASK> is a control symbol: written in a document it stays text and never becomes id 4.
    assert 4 not in sp.encode("fill the <MASK> here")


@pytest.mark.parametrize("name", sorted(MULTILINGUAL))
def test_round_trip_is_lossless(trained: TrainResult, name: str) -> None:
    """Identity normalization: the decoded text is the text itself, case, line breaks and indentation included."""
    sp = _processor(trained)
    text = MULTILINGUAL[name]
    ids = sp.encode(text)
    assert sp.decode(ids) == text
    assert sp.unk_id() not in ids


@pytest.mark.parametrize("name", sorted(UNSEEN))
def test_unseen_scripts_fall_back_to_bytes(trained: TrainResult, name: str) -> None:
    sp = _processor(trained)
    text = UNSEEN[name]
    assert all(sp.piece_to_id(ch) == sp.unk_id() for ch in text if not ch.isspace()), "script seen in training"
    pieces = sp.encode(text, out_type=str)
    content = [p for p in pieces if p != "\u2581"]
    assert content and all(p.startswith("<0x") and p.endswith(">") for p in content)
    assert len(content) == len("".join(text.split()).encode("utf-8"))  # one piece per UTF-8 byte
    assert sp.unk_id() not in sp.encode(text)
    assert sp.decode(sp.encode(text)) == text


def test_too_large_vocabulary_falls_back_with_a_warning(
    sample_splits: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fm_pipeline.tokenization.train"):
        result = train_tokenizer(list_shards(sample_splits["train"]), tmp_path, TokenizerConfig(vocab_size=1_000_000))
    sp = _processor(result)
    assert result.vocab_size_requested == 1_000_000
    assert 4000 < result.vocab_size < 1_000_000
    assert sp.get_piece_size() == result.vocab_size
    assert result.vocab_size_note and "more than the sample supports" in result.vocab_size_note
    assert any("more than the sample supports" in r.getMessage() for r in caplog.records)


def test_too_small_vocabulary_is_raised_to_what_the_characters_need(
    sample_splits: dict[str, Path], tmp_path: Path
) -> None:
    result = train_tokenizer(list_shards(sample_splits["train"]), tmp_path, TokenizerConfig(vocab_size=300))
    assert result.vocab_size > 300 + 256
    assert _processor(result).get_piece_size() == result.vocab_size
    assert result.vocab_size_note and "character_coverage" in result.vocab_size_note


def test_training_is_deterministic(sample_splits: dict[str, Path], trained: TrainResult, tmp_path: Path) -> None:
    again = train_tokenizer(list_shards(sample_splits["train"]), tmp_path, trained.config)
    assert again.model_path.read_bytes() == trained.model_path.read_bytes()
    assert again.vocab_path.read_bytes() == trained.vocab_path.read_bytes()
    assert again.sha256 == trained.sha256 == tokenizer_checksum(trained.model_path)
    assert trained.sha256 == hashlib.sha256(trained.model_path.read_bytes()).hexdigest()
    other_seed = train_tokenizer(list_shards(sample_splits["train"]), tmp_path / "seed1",
                                 TokenizerConfig(vocab_size=trained.config.vocab_size, max_sample_bytes=60_000, seed=1))
    assert other_seed.sha256 != trained.sha256


def test_output_is_written_atomically(sample_splits: dict[str, Path], tmp_path: Path) -> None:
    """Only the two files appear (no temporaries left), and a failed training leaves the previous model."""
    result = train_tokenizer(list_shards(sample_splits["train"]), tmp_path, TokenizerConfig(vocab_size=3000))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([TOKENIZER_MODEL, TOKENIZER_VOCAB])
    before = result.model_path.read_bytes()
    with pytest.raises(ValueError, match="no training text"):
        train_tokenizer([], tmp_path)
    assert result.model_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([TOKENIZER_MODEL, TOKENIZER_VOCAB])


def test_vocab_file_is_what_spm_train_writes(sample_texts: dict[str, list[str]], tmp_path: Path) -> None:
    """Same layout and score formatting; only backslashes, tabs and line breaks inside pieces are escaped."""
    lines = [line for text in sample_texts["train"] for line in text.splitlines() if line.strip()]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(tmp_path / "ref"),
                                   model_type="bpe", vocab_size=3000, byte_fallback=True, minloglevel=2)
    model = read_model(tmp_path / "ref.model")
    ours = vocab_text(model).split("\n")
    theirs = (tmp_path / "ref.vocab").read_text("utf-8").split("\n")
    plain = [i for i, p in enumerate(model.pieces) if not set(p.piece) & set("\\\t\r\n")]
    assert len(plain) > 2900
    assert [ours[i] for i in plain] == [theirs[i] for i in plain]
    assert model.pieces[0].type == PieceType.UNKNOWN and model.trainer.byte_fallback


def test_vocab_file_has_one_line_per_id(trained: TrainResult) -> None:
    sp = _processor(trained)
    lines = trained.vocab_path.read_text("utf-8").split("\n")[:-1]
    assert len(lines) == sp.get_piece_size() == trained.vocab_size
    escapes = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t"}
    pieces = [re.sub(r"\\[\\nrt]", lambda m: escapes[m.group()], line.rsplit("\t", 1)[0]) for line in lines]
    assert pieces == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert any("\n" in piece for piece in pieces)  # line breaks are learned, so the escaping is needed


def test_sample_rates_follow_the_weights_and_the_size_bound() -> None:
    # en (largest) is kept whole; fr, above its target, is downsampled to it: 0.3 / 0.7 * 1000 / 900.
    rates = sample_rates({"en": 1000, "fr": 900}, {"en": 0.7, "fr": 0.3}, max_sample_bytes=10**9)
    assert rates == pytest.approx({"en": 1.0, "fr": 300 / 0.7 / 900})
    # zh, below its target, keeps everything (never repeated); ko has no weight and no "*" to share: dropped.
    # The 1,100 planned bytes are then halved to fit 550.
    rates = sample_rates({"en": 1000, "zh": 100, "ko": 500}, {"en": 0.5, "zh": 0.5}, max_sample_bytes=550)
    assert rates == pytest.approx({"en": 0.5, "zh": 0.5, "ko": 0.0})


def test_sample_is_bounded_and_balanced(sample_splits: dict[str, Path], tmp_path: Path) -> None:
    full = train_tokenizer(list_shards(sample_splits["train"]), tmp_path / "full", TokenizerConfig(vocab_size=3000))
    bounded = train_tokenizer(list_shards(sample_splits["train"]), tmp_path / "bounded",
                              TokenizerConfig(vocab_size=3000, max_sample_bytes=full.sample["bytes"] // 3))
    # Documents are kept whole, so the bound holds in expectation; on ~100 documents within a factor 1.5.
    assert bounded.sample["bytes"] < full.sample["bytes"] // 3 * 1.5
    by_lang = full.sample["by_lang"]
    assert sum(v["bytes"] for v in by_lang.values()) == full.sample["bytes"]
    assert sum(v["target_share"] for v in by_lang.values()) == pytest.approx(1.0, abs=1e-3)
    # English, the largest language, is kept whole and others are downsampled toward their targets, never
    # repeated: no language gets more bytes than it has.
    assert by_lang["en"]["rate"] == 1.0
    assert all(v["bytes"] <= v["available_bytes"] for v in by_lang.values())


def test_sentences_keep_lines_and_respect_the_trainer_limit() -> None:
    text = "first line\nsecond line\n\n" + "word " * 2000 + "\n" + "中" * 3000 + "\nlast"
    chunks = list(sentences(text))
    assert all(len(c.encode("utf-8")) <= MAX_SENTENCE_BYTES for c in chunks)
    assert chunks[0] == "first line\nsecond line\n"
    assert "".join(chunks).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")
    assert chunks[-1] == "last"


def test_model_proto_reader_agrees_with_sentencepiece(trained: TrainResult) -> None:
    sp = _processor(trained)
    model = parse_model(trained.model_path.read_bytes())
    assert len(model.pieces) == sp.get_piece_size()
    for i, piece in enumerate(model.pieces):
        assert (piece.piece, piece.score) == (sp.id_to_piece(i), pytest.approx(sp.get_score(i)))
        assert (piece.type == PieceType.BYTE) == sp.is_byte(i)
        assert (piece.type == PieceType.CONTROL) == sp.is_control(i)
    assert model.normalizer.name == "identity" and not model.normalizer.remove_extra_whitespaces
    assert model.trainer.allow_whitespace_only_pieces and model.trainer.byte_fallback


def test_lossy_settings_normalize_case_and_whitespace(trained_lossy_settings: TrainResult) -> None:
    sp = _processor(trained_lossy_settings)
    assert sp.decode(sp.encode("Hello  World\nAgain")) == "hello world again"
    assert [sp.id_to_piece(i) for i in range(5)] == ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "<MASK>"]
