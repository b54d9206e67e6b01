"""The Hugging Face `tokenizer.json` export gives SentencePiece's ids (and decodes to the same text) on real
multilingual text, whitespace corners and fuzzed strings; the known divergences are pinned as such."""

from __future__ import annotations

import io
import json
import random
import unicodedata
from pathlib import Path

import pytest
import sentencepiece as spm
from tokenizers import Tokenizer

from fm_pipeline.tokenization.hf_export import build_hf_tokenizer, export_tokenizer_json
from fm_pipeline.tokenization.spm_model import PieceType, read_model
from fm_pipeline.tokenization.train import TrainResult

CORNERS = [
    "", " ", "   ", " leading", "trailing ", "two  spaces", "\n", "\n\nline\n", "\t\tindented", "    code()",
    "UPPER lower MiXeD", "Ünïcödé", "E\u0301cole", "ﬁ ligature", "full，width。Ａ", "x² ½ ①", "a\u00a0b", "a\u3000b",
    "zero\u200bwidth", "\ufeffbom", "\x00\x01control", "👨‍👩‍👧‍👦 🇰🇷 👍🏽", "ㅋㅋㅋㅋㅋㅋ", "----------", "==== ====",
    "hahahaha", "क्षत्रिय", "ที่นี่", "اللّٰه", "ქართული", "𐀀𐀁", "a\u2581b",
]


def _same_ids(sp: spm.SentencePieceProcessor, hf: Tokenizer, texts: list[str]) -> list[str]:
    """The texts on which the export's ids or decoded text differ from SentencePiece's."""
    return [t for t in texts if sp.encode(t) != hf.encode(t).ids or hf.decode(sp.encode(t)) != sp.decode(sp.encode(t))]


def _pair(result: TrainResult, tmp_path: Path) -> tuple[spm.SentencePieceProcessor, Tokenizer]:
    path = export_tokenizer_json(result.model_path, tmp_path / "tokenizer.json")
    return spm.SentencePieceProcessor(model_file=str(result.model_path)), Tokenizer.from_file(str(path))


def _fuzz(model_path: Path, n: int = 3000) -> list[str]:
    """Strings made of the model's own pieces (where merge order matters most) and periodic runs."""
    rng = random.Random(0)
    pieces = [p.piece.replace("\u2581", " ") for p in read_model(model_path).pieces if p.type == PieceType.NORMAL]
    periodic = [p for p in pieces if len(p) > 1 and len(set(p)) <= 2]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(2, 6))) for _ in range(n)]
    texts += [rng.choice(pieces) + "".join(rng.choices(periodic, k=rng.randint(1, 5))) for _ in range(n)]
    texts += [prefix + ch * k for ch in "-=.ㅋa" for k in range(1, 20) for prefix in ("", "x", " ", ch + "b")]
    return texts


def test_same_ids_on_the_sample_corpus(
    trained: TrainResult, sample_texts: dict[str, list[str]], tmp_path: Path
) -> None:
    sp, hf = _pair(trained, tmp_path)
    texts = sample_texts["train"] + sample_texts["val"]
    assert len(texts) > 150
    assert _same_ids(sp, hf, texts) == []


def test_same_ids_on_udhr(trained: TrainResult, shared_corpora: Path, tmp_path: Path) -> None:
    """41 languages, many in scripts the tokenizer never saw (byte fallback)."""
    sp, hf = _pair(trained, tmp_path)
    lines = (shared_corpora / "multilingual" / "udhr.jsonl").read_text("utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    assert len(texts) == 328
    assert _same_ids(sp, hf, texts) == []


def test_same_ids_on_corners_and_fuzz(trained: TrainResult, tmp_path: Path) -> None:
    sp, hf = _pair(trained, tmp_path)
    assert _same_ids(sp, hf, CORNERS + _fuzz(trained.model_path)) == []


def test_lossy_settings_same_ids_on_nfc_text(
    trained_lossy_settings: TrainResult, sample_texts: dict[str, list[str]], tmp_path: Path
) -> None:
    """nmt_nfkc_cf goes through the model's own character map (`Precompiled`): case folding, NFKC and the NMT
    whitespace rules match on NFC text, the corners and the fuzz."""
    sp, hf = _pair(trained_lossy_settings, tmp_path)
    texts = sample_texts["train"] + sample_texts["val"] + CORNERS + _fuzz(trained_lossy_settings.model_path, 1000)
    texts = [unicodedata.normalize("NFC", t) for t in texts]
    assert _same_ids(sp, hf, texts) == []
    assert sp.encode("ABC Ǆ ß ΣΑΣ") == hf.encode("ABC Ǆ ß ΣΑΣ").ids == sp.encode("abc ǆ ß σασ")


def test_lossy_settings_same_ids_on_nfc_udhr(trained_lossy_settings: TrainResult, shared_corpora: Path,
                                            tmp_path: Path) -> None:
    sp, hf = _pair(trained_lossy_settings, tmp_path)
    lines = (shared_corpora / "multilingual" / "udhr.jsonl").read_text("utf-8").splitlines()
    texts = [unicodedata.normalize("NFC", json.loads(line)["text"]) for line in lines]
    assert _same_ids(sp, hf, texts) == []


@pytest.mark.parametrize("text", ["A\u0301", "X\u0302", "ｶﾞ"])
def test_known_divergence_precompiled_clusters(trained_lossy_settings: TrainResult, tmp_path: Path, text: str) -> None:
    """Documented in hf_export: a cluster whose first code point the table changes. Identity has no table."""
    sp, hf = _pair(trained_lossy_settings, tmp_path)
    assert sp.encode(text) != hf.encode(text).ids


def test_known_divergence_literal_special_tokens(trained: TrainResult, tmp_path: Path) -> None:
    sp, hf = _pair(trained, tmp_path)
    text = "predict the <MASK> then <EOS>"
    assert 4 in hf.encode(text).ids and 4 not in sp.encode(text)
    hf.encode_special_tokens = True  # SentencePiece's behaviour: special tokens are never read from text
    assert hf.encode(text).ids == sp.encode(text)


def test_tokenizer_json_contents(trained: TrainResult, tmp_path: Path) -> None:
    path = export_tokenizer_json(trained.model_path, tmp_path / "tokenizer.json")
    hf = Tokenizer.from_file(str(path))
    assert hf.get_vocab_size() == trained.vocab_size
    assert [hf.token_to_id(t) for t in ("<PAD>", "<UNK>", "<BOS>", "<EOS>", "<MASK>")] == [0, 1, 2, 3, 4]
    assert hf.token_to_id("<0x41>") == spm.SentencePieceProcessor(model_file=str(trained.model_path)).piece_to_id(
        "<0x41>")
    spec = json.loads(path.read_text("utf-8"))
    assert spec["model"]["type"] == "BPE" and spec["model"]["byte_fallback"] is True
    specials = {t["content"] for t in spec["added_tokens"] if t["special"]}
    assert specials == {"<PAD>", "<UNK>", "<BOS>", "<EOS>", "<MASK>"}
    assert spec["post_processor"] is None  # like SentencePiece's encode: no BOS/EOS added
    assert hf.decode([2, *hf.encode("Hi").ids, 3]) == "Hi"  # special tokens skipped when decoding
    # Same model, same bytes; no temporary file left beside it.
    again = export_tokenizer_json(trained.model_path, tmp_path / "again.json")
    assert again.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.json", "tokenizer.json"]


def test_only_bpe_models_are_exported(sample_texts: dict[str, list[str]], tmp_path: Path) -> None:
    model = io.BytesIO()
    english = [t for t in sample_texts["train"] if t.isascii()]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(english), model_writer=model, model_type="unigram",
                                   vocab_size=500, minloglevel=2)
    (tmp_path / "unigram.model").write_bytes(model.getvalue())
    with pytest.raises(ValueError, match="not a BPE model"):
        build_hf_tokenizer(tmp_path / "unigram.model")
