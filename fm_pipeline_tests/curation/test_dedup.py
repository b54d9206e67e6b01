"""Dedup on real text: edited and boilerplate-wrapped copies are caught, translations and unrelated
documents are not merged, survivors follow source priority, every row leaves once, signatures are cached."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash

from fm_pipeline.curation.dedup.clusters import find_duplicates
from fm_pipeline.curation.dedup.minhash import MinHashConfig, exact_key, shingle_hash32, shingles
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from fm_pipeline.lake.parquet_io import list_shards
from tools.text_chunks import chunk_text

HEADER = "Home | About | Contact | Blog\n\n"
FOOTER = "\n\n© 2024 Example Media. All rights reserved. Privacy Policy | Terms of Use"


def _write(path: Path, docs: list[Document]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([d.to_row() for d in docs], schema=CORPUS_SCHEMA), path)
    return path


def _edit(text: str, rate: float, vocabulary: list[str], rng: random.Random) -> str:
    """Replace `rate` of the words (at random positions) with other real words."""
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, round(rate * len(words)))):
        words[i] = rng.choice([w for w in vocabulary if w != words[i]])
    return " ".join(words)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(shared_corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Shards of real documents plus planted duplicates, and the expected fate of every planted copy."""
    root = tmp_path_factory.mktemp("dedup_in")
    rng = random.Random(7)
    books = chunk_text((shared_corpora / "books" / "botchan.txt").read_text(encoding="utf-8-sig"), 2000)[1:-1]
    vocabulary = sorted(set(" ".join(books).split()))
    udhr = _jsonl(shared_corpora / "multilingual" / "udhr.jsonl")
    web = _jsonl(shared_corpora / "web" / "common_crawl_en.jsonl")
    originals = (
        [Document(id=f"botchan-{i:03d}", text=t, source="books", lang="en") for i, t in enumerate(books)]
        + [Document(id=r["id"], text=r["text"], source="reference_data", lang=r["meta"]["gold_lang"]) for r in udhr]
        + [Document(id=r["id"], text=r["text"], source="common_crawl", lang="en") for r in web]
    )
    by_id = {d.id: d for d in originals}
    expected: dict[str, tuple[str, str]] = {}  # planted copy id -> (survivor id, kind)
    copies: list[Document] = []

    def plant(copy_id: str, text: str, of: str, kind: str) -> None:
        copies.append(Document(id=copy_id, text=text, source="common_crawl", lang=by_id[of].lang))
        expected[copy_id] = (of, kind)

    for i in range(0, len(books), 3):  # every third chunk, edited at 1%, 2% and 3% of its words
        for rate in (0.01, 0.02, 0.03):
            plant(f"edit{int(rate * 100)}-{i:03d}", _edit(books[i], rate, vocabulary, rng), f"botchan-{i:03d}", "near")
    # Boilerplate around book chunks and UDHR documents (en, es, hi), published again as web pages.
    wrapped = [f"botchan-{i:03d}" for i in range(2, len(books), 6)] + [
        r["id"] for r in udhr if r["id"].startswith(("udhr-eng", "udhr-spa", "udhr-hin"))
    ]
    for doc_id in wrapped:
        plant(f"wrapped-{doc_id}", HEADER + by_id[doc_id].text + FOOTER, doc_id, "near")
    for doc_id in ("udhr-eng-1", "udhr-cmn_hans-2", "udhr-arb-3"):
        plant(f"cc-copy-{doc_id}", by_id[doc_id].text, doc_id, "exact")  # reference_data must survive
    plant("upper-botchan-001", by_id["botchan-001"].text.upper().replace(" ", "  "), "botchan-001", "exact")
    # Two common_crawl copies of a book chunk, one longer: the book still survives, both point at it.
    plant("cc-long-botchan-004", by_id["botchan-004"].text + " THE END", "botchan-004", "near")
    plant("cc-same-botchan-004", by_id["botchan-004"].text, "botchan-004", "exact")

    # Copies go into the first shard, so survivors never depend on reading order.
    shards = [
        _write(root / "a_common_crawl.parquet", copies + [d for d in originals if d.source == "common_crawl"]),
        _write(root / "b_books.parquet", [d for d in originals if d.source == "books"]),
        _write(root / "c_reference.parquet", [d for d in originals if d.source == "reference_data"]),
    ]
    return {"shards": shards, "expected": expected, "originals": originals, "copies": copies}


@pytest.fixture(scope="module")
def deduped(corpus: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("dedup_out")
    stats = dedup_corpus(corpus["shards"], out, processes=2)
    return {"out": out, "stats": stats}


def _rows(folder: Path) -> list[dict]:
    return [row for p in list_shards(folder) for row in pq.read_table(p).to_pylist()]


def test_exact_key_ignores_case_and_whitespace() -> None:
    assert exact_key("Hello   World\n") == exact_key("hello world")
    assert exact_key("hello world") != exact_key("hello, world")
    assert len(exact_key("x")) == 16


def test_shingles_words_characters_and_short_documents() -> None:
    assert shingles("One, two; THREE four five six!") == {"one two three four five", "two three four five six"}
    assert shingles("吾輩は猫である。", "ja") == {"吾輩は猫で", "輩は猫であ", "は猫である"}
    assert shingles("Too short.") == {"too short"}
    assert shingles("猫", "ja") == {"猫"}


def test_signatures_equal_datasketch(tmp_path: Path, shared_corpora: Path) -> None:
    """The vectorized signatures are datasketch's MinHash (affine32, seed 1) over the same shingles."""
    udhr = _jsonl(shared_corpora / "multilingual" / "udhr.jsonl")
    picks = [r for r in udhr if r["id"].endswith("-0")][:12] + [{"id": "short", "text": "Two words", "meta": {}}]
    neko = (shared_corpora / "books" / "wagahaiwa_nekodearu.txt").read_text(encoding="utf-8")[:3000]
    docs = [
        Document(id=r["id"], text=r["text"], source="reference_data", lang=r["meta"].get("gold_lang", "en"))
        for r in picks
    ] + [Document(id="neko", text=neko, source="books", lang="ja")]
    sig_file = compute_signatures(_write(tmp_path / "s.parquet", docs), tmp_path / "sig.parquet")
    table = pq.read_table(sig_file)
    assert table.column("id").to_pylist() == [d.id for d in docs]
    for doc, raw in zip(docs, table.column("signature").to_pylist(), strict=True):
        reference = MinHash(num_perm=112, seed=1, hashfunc=shingle_hash32)
        reference.update_batch(sorted(shingles(doc.text, doc.lang)))
        assert np.array_equal(np.frombuffer(raw, dtype=np.uint32), reference.hashvalues), doc.id


def test_planted_duplicates_and_nothing_else_are_removed(corpus: dict, deduped: dict) -> None:
    removed = {r["id"]: r["duplicate_of"] for r in _rows(deduped["out"] / "removed")}
    expected = corpus["expected"]
    missed = sorted(set(expected) - set(removed))
    assert not missed, f"duplicates not caught: {missed}"
    wrongly = sorted(set(removed) - set(expected))
    assert not wrongly, f"documents merged that are not duplicates (translations or unrelated): {wrongly}"
    assert removed == {copy_id: survivor for copy_id, (survivor, _) in expected.items()}


def test_kinds_and_survivors(corpus: dict, tmp_path: Path) -> None:
    sig_files = [compute_signatures(s, tmp_path / f"{s.stem}.sig.parquet") for s in corpus["shards"]]
    result = find_duplicates(sig_files)
    assert result.removed == corpus["expected"]
    # Source priority: the reference_data text survives its common_crawl copy (the copy's shard is read first).
    assert result.removed["cc-copy-udhr-eng-1"] == ("udhr-eng-1", "exact")
    assert result.removed["upper-botchan-001"] == ("botchan-001", "exact")
    assert result.removed["edit3-000"] == ("botchan-000", "near")
    assert result.exact_duplicates == sum(kind == "exact" for _, kind in corpus["expected"].values())
    assert result.near_duplicates == sum(kind == "near" for _, kind in corpus["expected"].values())
    members: dict[str, int] = {}
    for survivor, _ in corpus["expected"].values():
        members[survivor] = members.get(survivor, 1) + 1
    histogram: dict[int, int] = {}
    for size in members.values():
        histogram[size] = histogram.get(size, 0) + 1
    assert result.cluster_sizes == histogram
    assert len(result.examples) == 5
    assert all(c[0]["role"] == "survivor" and len(c) == 4 for c in result.examples)
    assert result.verified_pairs <= result.candidate_pairs


def test_longer_text_then_smallest_id_break_ties(tmp_path: Path, shared_corpora: Path) -> None:
    text = _jsonl(shared_corpora / "web" / "common_crawl_en.jsonl")[5]["text"]
    docs = [
        Document(id="b", text=text, source="common_crawl"),
        Document(id="a", text=text, source="common_crawl"),
        Document(id="c", text=text + " More.", source="common_crawl"),
        Document(id="d", text=text, source="mystery_source"),  # unlisted sources rank last
    ]
    sig = compute_signatures(_write(tmp_path / "x.parquet", docs), tmp_path / "x.sig.parquet")
    assert find_duplicates([sig]).removed == {"a": ("c", "near"), "b": ("c", "near"), "d": ("c", "near")}
    without_c = compute_signatures(_write(tmp_path / "y.parquet", [docs[0], docs[1]]), tmp_path / "y.sig.parquet")
    assert find_duplicates([without_c]).removed == {"b": ("a", "exact")}


def test_every_row_leaves_exactly_once(corpus: dict, deduped: dict) -> None:
    kept, removed = _rows(deduped["out"] / "kept"), _rows(deduped["out"] / "removed")
    n_in = len(corpus["originals"]) + len(corpus["copies"])
    assert len(kept) + len(removed) == n_in == deduped["stats"].documents_in
    assert {r["id"] for r in kept} | {r["id"] for r in removed} == {
        d.id for d in corpus["originals"] + corpus["copies"]
    }
    assert not {r["id"] for r in kept} & {r["id"] for r in removed}
    assert pq.read_schema(list_shards(deduped["out"] / "removed")[0]).names == [*CORPUS_SCHEMA.names, "duplicate_of"]
    stats = deduped["stats"]
    assert stats.kept == len(kept) and stats.removed == len(removed)
    assert stats.exact_duplicates + stats.near_duplicates == len(removed)
    assert sum(size * count for size, count in stats.cluster_sizes.items()) == len(removed) + sum(
        stats.cluster_sizes.values()
    )
    assert all(len(member["text"]) <= 80 for cluster in stats.examples for member in cluster)


def test_signature_cache(corpus: dict, deduped: dict, tmp_path: Path) -> None:
    """A rerun hashes nothing; changing one shard recomputes that shard only."""
    out = deduped["out"]
    sig_files = sorted((out / "signatures").glob("*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in sig_files}
    again = dedup_corpus(corpus["shards"], out, processes=1)
    assert (again.signatures_computed, again.signatures_cached) == (0, len(corpus["shards"]))
    assert {p: p.stat().st_mtime_ns for p in sig_files} == before
    assert again.removed == deduped["stats"].removed

    changed = tmp_path / "in"
    shards = [changed / s.name for s in corpus["shards"]]
    for src, dst in zip(corpus["shards"], shards, strict=True):
        dst.parent.mkdir(exist_ok=True)
        dst.write_bytes(src.read_bytes())
    work = tmp_path / "work"
    dedup_corpus(shards, work, processes=1)
    books = pq.read_table(shards[1]).to_pylist()
    _write(shards[1], [Document.from_row(r) for r in books[:-1]])
    third = dedup_corpus(shards, work, processes=1)
    assert (third.signatures_computed, third.signatures_cached) == (1, 2)
    assert third.documents_in == deduped["stats"].documents_in - 1


def test_datatrove_layout_is_available() -> None:
    """14 bands x 8 rows (datatrove's layout, threshold ~0.72) stays a one-argument change."""
    cfg = MinHashConfig(bands=14)
    assert cfg.rows == 8 and round(cfg.threshold, 2) == 0.72
    with pytest.raises(ValueError):
        MinHashConfig(num_perm=112, bands=15)
