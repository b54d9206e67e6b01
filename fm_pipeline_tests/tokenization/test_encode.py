"""Encoding a corpus end to end with a tiny SentencePiece model trained here: every document decodes back,
counts add up, the output does not depend on the number of processes, and the header's tokenizer checksum
tells tokenizers apart."""

from __future__ import annotations

import contextlib
import io
import random
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from fm_pipeline.lake.fanout import groups_root
from fm_pipeline.lake.parquet_io import ShardWriter, iter_rows
from fm_pipeline.lake.staging import leftovers
from fm_pipeline.tokenization import encode_groups
from fm_pipeline.tokenization.encode import MAX_WORD_CHARS, Encoder, ShardJob, encode_corpus, encode_shard
from fm_pipeline.tokenization.encode_groups import encode_group, plan_encoding, publish_encoding
from fm_pipeline.tokenization.packed import (
    PackedTokens,
    TokenizerMismatchError,
    bin_path,
    header_path,
    offsets_path,
    tokenizer_checksum,
)
from fm_pipeline.tokenization.train import SPECIAL_TOKEN_OPTIONS

BOOKS = Path(__file__).resolve().parents[2] / "fm_pipeline" / "sample_data" / "raw" / "books"
SPLITS = ("train", "val")
# The pipeline's tokenizer settings (`train.TokenizerConfig`): lossless, so documents decode back exactly.
LOSSLESS = {"normalization_rule_name": "identity", "remove_extra_whitespaces": False,
            "allow_whitespace_only_pieces": True}
# Lossy settings: SentencePiece's default NFKC normalization, runs of whitespace collapsed.
NFKC: dict[str, object] = {}


def _train_tokenizer(path: Path, vocab_size: int, spaces: str = " ", **options: object) -> Path:
    """A tiny model (BPE unless `options` say otherwise) with the pipeline's special ids:
    <PAD>=0 <UNK>=1 <BOS>=2 <EOS>=3 <MASK>=4, trained on the sample books with `spaces` between words."""
    lines = [line.replace(" ", spaces) for f in sorted(BOOKS.glob("**/*.txt"))
             for line in f.read_text("utf-8").splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        byte_fallback=True,
        character_coverage=0.98,  # the rare CJK characters fall back to bytes, so 800 pieces suffice
        **SPECIAL_TOKEN_OPTIONS,
        minloglevel=2,
        **{"model_type": "bpe", **options},
    )
    path.write_bytes(model.getvalue())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = _train_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.model", 800, **LOSSLESS)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert [sp.id_to_piece(i) for i in range(5)] == ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "<MASK>"]
    return path


def _long_text() -> str:
    """Every sample book in one string (~70 KB, many languages): long enough to be encoded in pieces."""
    return "\n\n".join(f.read_text("utf-8") for f in sorted(BOOKS.glob("**/*.txt")))


ODD_TEXTS = [
    "a" * 10_000 + " " + "b" * 10_000,  # one cut point only
    "x " * 6_000,
    ("  \n\t " * 3_000 + "word ") * 3,  # cuts inside whitespace runs
    " \u0301" * 5_000,  # a combining accent after every space
    "e\u0301 " * 5_000,  # composed by NFKC
    "ｆｕｌｌ " * 3_000,  # full-width, folded by NFKC
    "日本語 " * 4_000,
    "😀 " * 5_000,  # byte fallback
    ("word" + " " * 3_000) * 10,
    "a" + " " * 10_000 + "b",  # one long whitespace run after a single cut
    "a" * 5_000,  # one word: encoded whole
]


def _documents() -> list[Document]:
    """Every sample book (a document per paragraph, language from its folder) plus edge cases."""
    docs = [
        Document(id=f"{f.stem}-{i}", text=para, source="books", lang=f.parent.name)
        for f in sorted(BOOKS.glob("**/*.txt"))
        for i, para in enumerate(f.read_text("utf-8").split("\n\n"))
    ]
    docs += [
        Document(id="long", text=_long_text(), source="books", lang="mixed"),
        Document(id="empty", text="", source="books", lang="und"),
        Document(id="odd", text="  Ｆｕｌｌ-width ①, tab\tand emoji 😀 ✓\n\nnew paragraph ", source="books", lang="en"),
    ]
    return docs


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("corpus")
    docs = _documents()
    by_split = {"train": [d for i, d in enumerate(docs) if i % 5], "val": [d for i, d in enumerate(docs) if not i % 5]}
    out = {}
    for split, split_docs in by_split.items():
        with ShardWriter(root / split, CORPUS_SCHEMA, shard_bytes=8 * 1024, row_group_bytes=2 * 1024) as writer:
            for doc in split_docs:
                writer.write(doc.to_row())
        out[split] = writer.shards
    assert len(out["train"]) >= 3 and len(out["val"]) >= 2
    return out


@pytest.fixture(scope="module")
def encoded(model: Path, shards: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tokens") / "tokenized_corpus"
    return out, encode_corpus(model, shards, out, processes=1)


def test_every_document_decodes_back(model: Path, shards: dict[str, list[Path]], encoded: tuple[Path, dict]) -> None:
    out, _ = encoded
    sp = spm.SentencePieceProcessor(model_file=str(model))
    for split in SPLITS:
        packed = PackedTokens.open(out, split, expected_checksum=tokenizer_checksum(model))
        rows = list(iter_rows(shards[split], columns=["text"]))
        assert len(packed) == len(rows)
        for i, row in enumerate(rows):
            doc = packed.document(i)
            assert doc[0] == 2 and doc[-1] == 3
            assert not np.isin(doc[1:-1], [0, 2, 3, 4]).any()  # no framing or padding inside a document
            assert sp.decode(doc[1:-1].tolist()) == row["text"]


def test_offsets_and_header(model: Path, shards: dict[str, list[Path]], encoded: tuple[Path, dict]) -> None:
    out, stats = encoded
    sp = spm.SentencePieceProcessor(model_file=str(model))
    for split in SPLITS:
        packed = PackedTokens.open(out, split)
        texts = [r["text"] for r in iter_rows(shards[split], columns=["text"])]
        lengths = [len(ids) + 2 for ids in sp.encode(texts, out_type=int)]
        assert packed.offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
        assert isinstance(packed.tokens, np.memmap) and isinstance(packed.offsets, np.memmap)
        assert packed.tokens.dtype == np.dtype("<u2")

        h = packed.header
        assert h["dtype"] == "uint16" and h["vocab_size"] == 800 and (h["bos_id"], h["eos_id"]) == (2, 3)
        assert h["tokenizer_sha256"] == tokenizer_checksum(model)
        assert h["tokens"] == packed.num_tokens == sum(lengths) and h["documents"] == len(texts)
        assert h["text_bytes"] == sum(len(t.encode("utf-8")) for t in texts)
        assert sum(h["tokens_by_lang"].values()) == h["tokens"]
        assert sum(h["bytes_by_lang"].values()) == h["text_bytes"]
        assert sum(h["documents_by_lang"].values()) == h["documents"]
        assert header_path(out, split).stat().st_size < 4096  # offsets are not inline

        s = stats[split]
        assert (s["tokens"], s["documents"], s["text_bytes"]) == (h["tokens"], h["documents"], h["text_bytes"])
        assert s["tokens_by_lang"] == h["tokens_by_lang"]
        assert s["bytes_per_token"] == round(h["text_bytes"] / (h["tokens"] - 2 * h["documents"]), 4)
        assert set(s["bytes_per_token_by_lang"]) == set(h["tokens_by_lang"])
    assert {"en", "zh", "ja", "ar"} <= set(stats["train"]["tokens_by_lang"])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s}{ext}" for s in SPLITS for ext in (".bin", ".idx.npy", ".json")
    )


def test_parallel_output_is_byte_identical(
    model: Path, shards: dict[str, list[Path]], encoded: tuple[Path, dict], tmp_path: Path
) -> None:
    out, stats = encoded
    assert encode_corpus(model, shards, tmp_path / "two", processes=2) == stats
    for split in SPLITS:
        for path in (bin_path, offsets_path, header_path):
            assert path(tmp_path / "two", split).read_bytes() == path(out, split).read_bytes()


def test_other_tokenizer_changes_checksum_and_is_refused(
    model: Path, encoded: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = encoded
    other = _train_tokenizer(tmp_path / "other.model", 1000, **LOSSLESS)
    assert tokenizer_checksum(other) != tokenizer_checksum(model)
    with pytest.raises(TokenizerMismatchError, match=tokenizer_checksum(other)):
        PackedTokens.open(out, "train", expected_checksum=tokenizer_checksum(other))


def test_model_changed_during_encoding_is_refused(model: Path, shards: dict[str, list[Path]], tmp_path: Path) -> None:
    job = ShardJob(model, "0" * 64, "<u2", shards["val"][0], tmp_path / "t.bin", tmp_path / "t.len")
    with pytest.raises(TokenizerMismatchError, match="changed during encoding"):
        encode_shard(job)


def test_rerun_replaces_the_folder_whole(model: Path, shards: dict[str, list[Path]], tmp_path: Path) -> None:
    out = tmp_path / "tokenized_corpus"
    encode_corpus(model, shards, out, processes=1)
    stats = encode_corpus(model, {"val": shards["val"]}, out, processes=1)
    assert set(stats) == {"val"}
    assert sorted(p.name for p in out.iterdir()) == ["val.bin", "val.idx.npy", "val.json"]
    assert leftovers(out) == []  # no staging left behind


@pytest.mark.parametrize("options", [LOSSLESS, NFKC], ids=["lossless", "nfkc"])
def test_encoding_word_by_word_changes_no_id(options: dict, tmp_path: Path) -> None:
    path = _train_tokenizer(tmp_path / "t.model", 800, **options)
    encoder = Encoder(path.read_bytes())
    assert encoder.cuttable
    sp = spm.SentencePieceProcessor(model_file=str(path))
    texts = [_long_text(), *ODD_TEXTS, *[d.text for d in _documents()], "short text", ""]
    assert encoder.encode(texts) == sp.encode(texts, out_type=int)
    assert encoder.cached_words > 1000
    assert all(len(w) <= MAX_WORD_CHARS for w in encoder._ids)
    assert encoder.encode(texts) == sp.encode(texts, out_type=int)  # now mostly from the cache


def test_a_literal_mark_before_a_space_is_not_a_cut(tmp_path: Path) -> None:
    """A `▁` typed in the text, then a space, normalizes to `▁▁`: a whitespace piece may take both, so the
    text is not cut there."""
    path = _train_tokenizer(tmp_path / "t.model", 800, spaces="  ", **LOSSLESS)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert "\u2581\u2581" in {sp.id_to_piece(i) for i in range(sp.get_piece_size())}
    texts = ["word\u2581 word", "the\u2581 cat \u2581 sat\u2581\u2581  on the mat\u2581", "end\u2581"]
    # and fuzzed text from the characters that matter: words, spaces, typed marks, newlines, accents
    rng = random.Random(0)
    alphabet = ["the", "cat", "a", " ", " ", "  ", "\u2581", "\n", "e\u0301", "日本", "😀"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(3000)]
    assert Encoder(path.read_bytes()).encode(texts) == sp.encode(texts, out_type=int)


def test_chunks_of_words_that_do_not_split_cleanly_are_encoded_word_by_word(model: Path) -> None:
    """The chunk check, forced to fail by marking a mid-word piece as opening a word: the ids stay exact."""
    encoder = Encoder(model.read_bytes())
    sp = encoder.sp
    texts = [d.text for d in _documents()]
    encoder._opens[sp.piece_to_id("e")] = True
    assert encoder.encode(texts) == sp.encode(texts, out_type=int)
    assert encoder.cached_words > 1000


def test_a_full_word_cache_is_emptied_and_ids_stay_exact(model: Path) -> None:
    encoder = Encoder(model.read_bytes(), cache_words=50)
    sp = spm.SentencePieceProcessor(model_file=str(model))
    texts = [d.text for d in _documents()]
    for batch in (texts[:20], texts[20:60], texts):
        assert encoder.encode(batch) == sp.encode(batch, out_type=int)
        assert encoder.cached_words <= 50


@pytest.mark.parametrize("options", [{"split_by_whitespace": False}, {"model_type": "unigram"}])
def test_models_that_could_change_are_encoded_whole(options: dict, tmp_path: Path) -> None:
    """BPE pieces spanning words, or a unigram model (Viterbi sums scores), make cutting unsafe."""
    path = _train_tokenizer(tmp_path / "t.model", 1000, **options)
    encoder = Encoder(path.read_bytes())
    assert not encoder.cuttable
    texts = [_long_text(), *ODD_TEXTS]
    assert encoder.encode(texts) == spm.SentencePieceProcessor(model_file=str(path)).encode(texts, out_type=int)
    assert encoder.cached_words == 0


def test_fanned_out_encoding_is_byte_identical_and_reruns_only_unfinished_groups(
    model: Path, shards: dict[str, list[Path]], encoded: tuple[Path, dict], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, stats = encoded
    fanned = tmp_path / "tokenized_corpus"
    plan = plan_encoding(model, shards, fanned, group_bytes=12 * 1024, max_groups=3, version="1")
    positions = [[position for position, _ in group.items()] for group in plan.groups]
    assert len(positions) == 3 and sum(positions, []) == list(range(len(shards["train"]) + len(shards["val"])))
    assert any(len(p) > 1 for p in positions), "a group spans several shards"
    failing = plan.groups[2].start

    def lost_node(job: ShardJob):
        raise OSError(f"lost the node encoding {job.shard}")

    done = {}
    for item in plan.items():
        if item.group.start == failing:
            monkeypatch.setattr(encode_groups, "encode_shard", lost_node)
        with contextlib.suppress(OSError):
            done[item.group.key] = encode_group(item, processes=1)[1]
        monkeypatch.undo()
    assert done == {"group_00000": False, "group_00001": False} and not (plan.area / "group_00002").exists()
    again = plan_encoding(model, shards, fanned, group_bytes=12 * 1024, max_groups=3, version="1")
    assert again == plan
    assert [encode_group(item, processes=1)[1] for item in again.items()] == [True, True, False]
    assert publish_encoding(again, fanned) == stats
    for split in SPLITS:
        for path in (bin_path, offsets_path, header_path):
            assert path(fanned, split).read_bytes() == path(out, split).read_bytes()
    assert not groups_root(fanned).exists(), "no work area left"
