"""Language mixing: exact plans on a toy table, a val split stratified by language, and balancing real
multilingual text into train/val shards that are deterministic, disjoint, within max_repeats, close to the
planned mix, shuffled, and that account for every input document (train, val, or dropped with its reason)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections import Counter, defaultdict
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fm_pipeline.curation.mixing.audit import audit_balance
from fm_pipeline.curation.mixing.balance import balance
from fm_pipeline.curation.mixing.plan import MixConfig, lang_bytes, plan_mix
from fm_pipeline.curation.mixing.sampling import copies_of
from fm_pipeline.curation.mixing.split import split_of, val_count, val_ids
from fm_pipeline.lake.documents import CORPUS_SCHEMA, REJECTED_SCHEMA, Document
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.lake.staging import leftovers
from tools.text_chunks import chunk_text

TOY = {"en": 1000, "zh": 400, "es": 100, "fr": 50, "de": 50}


def _approx(d: dict[str, float]) -> dict[str, float]:
    return {k: pytest.approx(v, abs=1e-6) for k, v in d.items()}


def test_weights_plan_on_a_toy_table() -> None:
    """ar/hi/ko are absent, so the named shares renormalize over en/zh/es and "*" (0.25) is split
    between fr and de by bytes: targets 0.30, 0.15, 0.10, 0.125, 0.125 divided by 0.80."""
    plan = plan_mix(TOY)
    assert plan.target == _approx({"de": 0.15625, "en": 0.375, "es": 0.125, "fr": 0.15625, "zh": 0.1875})
    # en (largest) keeps its data: total = 1000 / 0.375; fr and de would need 8.33 copies, capped at 4.
    assert plan.rates == _approx({"de": 4.0, "en": 1.0, "es": 10 / 3, "fr": 4.0, "zh": 1.25})
    out = {"en": 1000, "zh": 500, "es": 1000 / 3, "fr": 200, "de": 200}
    assert plan.achievable == _approx({k: v / sum(out.values()) for k, v in out.items()})
    assert plan.achievable["en"] == pytest.approx(0.447761, abs=1e-6)


def test_temperature_plan_on_a_toy_table() -> None:
    """p_l = n_l^0.3 / sum; with en at rate 1, language l needs (n_en / n_l)^0.7 copies."""
    plan = plan_mix(TOY, alpha=0.3)
    assert plan.target == _approx({"de": 0.132386, "en": 0.325200, "es": 0.162986, "fr": 0.132386, "zh": 0.247041})
    assert plan.rates == _approx({"de": 4.0, "en": 1.0, "es": 4.0, "fr": 4.0, "zh": 2.5**0.7})
    assert plan.achievable == _approx({"de": 0.078135, "en": 0.390677, "es": 0.156271, "fr": 0.078135, "zh": 0.296781})
    uncapped = plan_mix(TOY, alpha=0.3, max_repeats=10)
    assert uncapped.rates["fr"] == pytest.approx(20**0.7) and uncapped.rates["es"] == pytest.approx(10**0.7)
    assert uncapped.achievable == _approx(uncapped.target)
    assert plan.method == "temperature" and plan_mix(TOY).method == "weights"


def test_plan_edge_cases() -> None:
    only = plan_mix(TOY, weights={"en": 0.5, "zh": 0.5})  # no "*": other languages are left out
    assert only.rates == _approx({"de": 0.0, "en": 1.0, "es": 0.0, "fr": 0.0, "zh": 2.5})
    with pytest.raises(ValueError):
        plan_mix(TOY, weights={"en": 1.0}, alpha=0.3)
    with pytest.raises(ValueError):
        plan_mix(TOY, max_repeats=0.5)
    assert plan_mix({**TOY, "und": 0}).rates["und"] == 1.0


def test_split_and_copies_are_deterministic_hashes() -> None:
    ids = [f"doc-{i}" for i in range(20000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    assert splits.count("val") / len(ids) == pytest.approx(0.05, abs=0.005)
    assert sum(split_of(i, 0.01) == "val" for i in ids) / len(ids) == pytest.approx(0.01, abs=0.003)
    copies = [copies_of(i, 2.3, seed=0) for i in ids]
    assert set(copies) == {2, 3} and sum(copies) / len(ids) == pytest.approx(2.3, abs=0.02)
    assert sum(copies_of(i, 0.4, seed=0) for i in ids) / len(ids) == pytest.approx(0.4, abs=0.02)
    assert copies != [copies_of(i, 2.3, seed=1) for i in ids]


@pytest.fixture(scope="module")
def shards(shared_corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real text in many languages: English books and web pages, Japanese novel chunks, and UDHR
    paragraphs in 41 languages (reference_data)."""
    root = tmp_path_factory.mktemp("mix_in")
    books = [
        Document(id=f"botchan-{i}", text=t, source="books", lang="en")
        for i, t in enumerate(chunk_text((shared_corpora / "books" / "botchan.txt").read_text("utf-8-sig"), 2000))
    ]
    neko = (shared_corpora / "books" / "wagahaiwa_nekodearu.txt").read_text(encoding="utf-8")[:60000]
    books += [
        Document(id=f"neko-{i}", text=neko[i : i + 600], source="books", lang="ja") for i in range(0, len(neko), 600)
    ]
    web = [
        Document(id=r["id"], text=r["text"], source="common_crawl", lang="en")
        for r in map(json.loads, (shared_corpora / "web" / "common_crawl_en.jsonl").read_text().splitlines())
    ]
    reference = []
    for r in map(json.loads, (shared_corpora / "multilingual" / "udhr.jsonl").read_text().splitlines()):
        for j, para in enumerate(p for p in r["text"].split("\n\n") if p.strip()):
            reference.append(
                Document(id=f"{r['id']}-p{j}", text=para, source="reference_data", lang=r["meta"]["gold_lang"])
            )
    paths = []
    for name, docs in (("books", books), ("web", web), ("reference", reference)):
        paths.append(root / f"{name}.parquet")
        pq.write_table(pa.Table.from_pylist([d.to_row() for d in docs], schema=CORPUS_SCHEMA), paths[-1])
    return paths


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in list_shards(folder)}


def _ids(folder: Path) -> list[str]:
    return [i for p in list_shards(folder) for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]


def _original(doc_id: str) -> str:
    return re.sub(r"#rep\d+$", "", doc_id)


@pytest.fixture(scope="module")
def balanced(shards: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("mix_out")
    plan = plan_mix(lang_bytes(shards))
    report = balance(shards, out, plan, seed=3, shard_bytes=200_000)
    return {"out": out, "plan": plan, "report": report}


def test_balance_is_byte_identical_across_runs(shards: list[Path], balanced: dict, tmp_path: Path) -> None:
    again = balance(shards, tmp_path / "again", balanced["plan"], seed=3, shard_bytes=200_000)
    for name in ("train", "val", "dropped"):
        assert _digest(tmp_path / "again" / name) == _digest(balanced["out"] / name), name
    assert len(_digest(tmp_path / "again" / "train")) > 1 and len(_digest(tmp_path / "again" / "dropped")) > 1
    assert again == balanced["report"]
    other_seed = balance(shards, tmp_path / "seed4", balanced["plan"], seed=4, shard_bytes=200_000)
    assert _digest(tmp_path / "seed4" / "val") == _digest(balanced["out"] / "val")  # the split ignores the seed
    assert _ids(tmp_path / "seed4" / "train") != _ids(balanced["out"] / "train")
    assert other_seed.val_documents == balanced["report"].val_documents


def test_val_and_train_never_share_a_document(shards: list[Path], balanced: dict) -> None:
    train, val = _ids(balanced["out"] / "train"), _ids(balanced["out"] / "val")
    assert len(set(train)) == len(train) and len(set(val)) == len(val)  # ids stay unique
    assert not {_original(i) for i in train} & set(val)
    assert all("#rep" not in i for i in val)
    inputs = {i for s in shards for i in pq.read_table(s, columns=["id"]).column("id").to_pylist()}
    assert {_original(i) for i in train} | set(val) <= inputs
    assert set(val) == val_ids(shards)
    report = balanced["report"]
    assert report.val_documents == len(val) and report.train_documents == len(train)
    assert report.documents_in == len(inputs) == sum(row["documents_in"] for row in report.by_lang_source)
    assert sum(row["train_documents"] for row in report.by_lang_source) == len(train)


def test_repeats_stay_within_max_repeats(balanced: dict) -> None:
    train = _ids(balanced["out"] / "train")
    per_doc = Counter(_original(i) for i in train)
    assert max(per_doc.values()) == balanced["report"].max_copies <= balanced["plan"].max_repeats
    assert max(balanced["plan"].rates.values()) == 4.0  # UDHR languages need more than 4 copies: capped
    assert balanced["report"].repeated > 0
    repeated = next(i for i in train if i.endswith("#rep3"))
    assert {f"{_original(repeated)}#rep{k}" for k in (1, 2)} <= set(train)


def test_achieved_mix_is_the_planned_one(balanced: dict) -> None:
    report, plan = balanced["report"], balanced["plan"]
    for lang, share in report.share.items():
        assert share["achievable"] == pytest.approx(plan.achievable[lang])
        assert share["achieved"] == pytest.approx(share["achievable"], abs=0.02), lang
    assert sum(s["achieved"] for s in report.share.values()) == pytest.approx(1.0)
    # The default weights put 75% on six languages, pulling the 35 others (Japanese the largest) down.
    shares = [s["achieved"] for s in report.share.values() if s["achieved"] > 0]
    assert report.entropy_bits["after"] == pytest.approx(-sum(p * math.log2(p) for p in shares))
    assert report.entropy_bits["after"] < report.entropy_bits["before"]
    assert report.dropped > 0 and report.plan["languages"]["ja"]["rate"] < 1
    # Repeated documents add 4-grams but no new ones.
    assert report.distinct_4gram_share["after"] < report.distinct_4gram_share["before"]
    assert report.bytes_by_lang["en"]["train"] < report.bytes_by_lang["en"]["in"]  # val took some


def test_config_plans_from_the_shards(shards: list[Path], tmp_path: Path) -> None:
    report = balance(shards, tmp_path / "out", MixConfig(alpha=0.3, max_repeats=2), seed=0)
    assert report.plan["method"] == "temperature" and report.max_copies <= 2
    # Temperature sampling only ever upsamples the smaller languages: the mix flattens.
    assert report.entropy_bits["after"] > report.entropy_bits["before"]
    assert report.dropped == 0
    with pytest.raises(ValueError, match="not in the mix plan"):
        balance(shards, tmp_path / "failed", plan_mix({"en": 10}), seed=0)
    assert not (tmp_path / "failed").exists() and leftovers(tmp_path / "failed") == []  # no output, no staging


def test_every_document_leaves_exactly_once(shards: list[Path], balanced: dict, tmp_path: Path) -> None:
    """Recounted from disk: each input is in train (however many copies), val, or dropped, exactly once."""
    report = balanced["report"]
    audit = audit_balance(shards, balanced["out"])
    assert audit["documents_in"] == audit["train_originals"] + audit["val_documents"] + audit["dropped"]
    assert audit["train_originals"] < audit["train_documents"] and audit["dropped"] > 0  # both paths exercised
    assert audit["train_val_overlap"] == audit["placed_twice"] == audit["missing"] == audit["unknown"] == 0
    assert audit["exactly_once"] is True
    for key in ("documents_in", "train_documents", "train_originals", "val_documents", "dropped"):
        assert audit[key] == getattr(report, key), key
    assert report.dropped_bytes == sum(row["dropped_bytes"] for row in report.by_lang_source)

    # The audit sees breakage: a val shard copied into train, and a lost dropped folder.
    broken = tmp_path / "broken"
    shutil.copytree(balanced["out"], broken)
    shutil.copy(list_shards(broken / "val")[0], broken / "train" / "part-99999.parquet")
    shutil.rmtree(broken / "dropped")
    bad = audit_balance(shards, broken)
    assert bad["train_val_overlap"] == bad["val_documents"] > 0 and bad["placed_twice"] == bad["val_documents"]
    assert bad["missing"] == report.dropped and bad["exactly_once"] is False


def test_dropped_rows_keep_every_column_and_their_reason(shards: list[Path], balanced: dict) -> None:
    inputs = {r["id"]: r for s in shards for r in pq.read_table(s).to_pylist()}
    dropped_shards = list_shards(balanced["out"] / "dropped")
    assert all(pq.read_schema(p).remove_metadata() == REJECTED_SCHEMA for p in dropped_shards)
    dropped = [r for p in dropped_shards for r in pq.read_table(p).to_pylist()]
    rates, val = balanced["plan"].rates, val_ids(shards)
    expected = {i for i, r in inputs.items() if i not in val and copies_of(i, rates[r["lang"]], seed=3) == 0}
    assert [r["id"] for r in dropped] == sorted(expected, key=list(inputs).index)  # once each, input order
    for row in dropped:
        assert row["reason"] == f"downsampled:{row['lang']}"
        assert {k: v for k, v in row.items() if k != "reason"} == inputs[row["id"]]
    assert {r["lang"] for r in dropped} == {lang for lang, rate in rates.items() if rate < 1}


def _copy_positions(ids: list[str]) -> list[list[int]]:
    """Positions in train of each document that has several copies."""
    positions: dict[str, list[int]] = defaultdict(list)
    for n, doc_id in enumerate(ids):
        positions[_original(doc_id)].append(n)
    return [p for p in positions.values() if len(p) > 1]


def _all_adjacent(positions: list[int]) -> bool:
    return positions[-1] - positions[0] == len(positions) - 1


@pytest.mark.parametrize("buffer_docs", [64, 500])
def test_shuffle_spreads_copies_and_stays_deterministic(
    shards: list[Path], balanced: dict, tmp_path: Path, buffer_docs: int
) -> None:
    """The default buffer holds the whole (small) training set, so it is a full keyed-hash permutation; a
    buffer smaller than train exercises the bounded path, where rows are displaced one by one."""
    default = _ids(balanced["out"] / "train")
    copies = _copy_positions(default)
    assert len(copies) == balanced["report"].repeated > 100
    assert sum(map(_all_adjacent, copies)) <= 0.01 * len(copies)  # input order had every one adjacent

    small = balance(shards, tmp_path / "a", balanced["plan"], seed=3, shard_bytes=200_000,
                    shuffle_buffer_docs=buffer_docs)
    balance(shards, tmp_path / "b", balanced["plan"], seed=3, shard_bytes=200_000,
            shuffle_buffer_docs=buffer_docs)
    assert _digest(tmp_path / "a" / "train") == _digest(tmp_path / "b" / "train")  # byte-identical reruns
    assert len(default) > buffer_docs
    ids = _ids(tmp_path / "a" / "train")
    assert Counter(ids) == Counter(default) and ids != default  # same rows, another order
    copies = _copy_positions(ids)
    assert sum(map(_all_adjacent, copies)) <= 0.05 * len(copies)
    gaps = sorted(later - earlier for p in copies for earlier, later in pairwise(p))
    assert gaps[len(gaps) // 2] >= buffer_docs // 4  # copies land about a buffer's length apart
    assert _digest(tmp_path / "a" / "val") == _digest(balanced["out"] / "val")  # only train is shuffled
    assert replace(small, shuffle_buffer_docs=0) == replace(balanced["report"], shuffle_buffer_docs=0)


def test_shuffle_buffer_must_hold_a_document(shards: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shuffle_buffer_docs"):
        balance(shards, tmp_path / "out", seed=0, shuffle_buffer_docs=0)
    assert not (tmp_path / "out").exists()


def test_val_count_rule() -> None:
    """5% rounded half up, at least one document, none for a language under four documents."""
    assert [val_count(n) for n in (1, 3, 4, 10, 29, 30, 50, 100, 1000)] == [0, 0, 1, 1, 1, 2, 3, 5, 50]
    assert val_count(100, 0.01) == 1 and val_count(1000, 0.01) == 10
    assert val_count(4, min_val_docs=5) == 4  # never more than the language has
    assert val_count(1, min_docs_for_val=1) == 1 and val_count(3, min_docs_for_val=1) == 1
    assert val_count(40, 0.0) == 1 and val_count(40, 0.0, min_val_docs=0) == 0
    with pytest.raises(ValueError, match="val_fraction"):
        val_count(10, 1.5)
    with pytest.raises(ValueError, match="negative"):
        val_count(10, min_val_docs=-1)


def _split_key(doc_id: str) -> float:
    """The split key recomputed from its definition: blake2b of "split", 0x1f, the id."""
    digest = hashlib.blake2b(f"split\x1f{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


TOY_SIZES = {"en": 100, "sw": 10, "mt": 3}


@pytest.fixture()
def toy_shards(tmp_path: Path) -> list[Path]:
    """Three languages of 100, 10 and 3 documents, interleaved over two shards."""
    docs = [
        Document(id=f"{lang}-{i}", text=f"{lang} document {i} " * (1 + i % 7), source="web", lang=lang)
        for lang, n in TOY_SIZES.items()
        for i in range(n)
    ]
    docs.sort(key=lambda d: hashlib.sha256(d.id.encode()).digest())
    paths = [tmp_path / "in" / f"part-{k}.parquet" for k in range(2)]
    paths[0].parent.mkdir()
    for k, path in enumerate(paths):
        rows = [d.to_row() for d in docs[k::2]]
        pq.write_table(pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA), path)
    return paths


def test_val_is_stratified_by_language(toy_shards: list[Path]) -> None:
    val = val_ids(toy_shards)
    by_lang = Counter(i.split("-")[0] for i in val)
    assert dict(by_lang) == {"en": 5, "sw": 1}  # 5% of 100; at least one of 10; none of 3
    for lang, n in TOY_SIZES.items():
        ranked = sorted((f"{lang}-{i}" for i in range(n)), key=lambda i: (_split_key(i), i))
        assert set(ranked[: by_lang[lang]]) == {i for i in val if i.startswith(f"{lang}-")}, lang
    assert val_ids(toy_shards) == val and val_ids(toy_shards[::-1]) == val  # deterministic, order-free
    assert val_ids(toy_shards, min_docs_for_val=3) == val | {min((f"mt-{i}" for i in range(3)), key=_split_key)}
    assert Counter(i.split("-")[0] for i in val_ids(toy_shards, 0.2, min_val_docs=3)) == {"en": 20, "sw": 3}
    assert val_ids(toy_shards, 0.0, min_val_docs=0) == set() and val_ids([]) == set()


def test_balance_splits_the_toy_corpus_by_language(toy_shards: list[Path], tmp_path: Path) -> None:
    report = balance(toy_shards, tmp_path / "a", seed=0)
    assert report.val_documents_by_lang == {"en": 5, "mt": 0, "sw": 1} and report.val_documents == 6
    assert report.min_val_docs == 1 and report.min_docs_for_val == 4
    val_rows = [r for p in list_shards(tmp_path / "a" / "val") for r in pq.read_table(p).to_pylist()]
    assert {r["id"] for r in val_rows} == val_ids(toy_shards)
    inputs = [i for p in toy_shards for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]
    assert [r["id"] for r in val_rows] == [i for i in inputs if i in val_ids(toy_shards)]  # input order
    train = {_original(i) for i in _ids(tmp_path / "a" / "train")}
    assert train and not train & {r["id"] for r in val_rows}
    assert {i for i in inputs if i.startswith("mt-")} <= train  # a 3-document language trains on all of it
    assert audit_balance(toy_shards, tmp_path / "a")["exactly_once"] is True

    again = balance(toy_shards, tmp_path / "b", seed=0)
    assert again == report
    for name in ("train", "val", "dropped"):
        assert _digest(tmp_path / "b" / name) == _digest(tmp_path / "a" / name), name
    plan = plan_mix(lang_bytes(toy_shards))  # a given plan: the pre-pass reads no text, same split
    given = balance(toy_shards, tmp_path / "c", plan, seed=0)
    assert given.val_documents_by_lang == report.val_documents_by_lang
    assert _digest(tmp_path / "c" / "val") == _digest(tmp_path / "a" / "val")
    wider = balance(toy_shards, tmp_path / "d", seed=0, val_fraction=0.2, min_val_docs=0, min_docs_for_val=1)
    assert wider.val_documents_by_lang == {"en": 20, "mt": 1, "sw": 2}
    with pytest.raises(ValueError, match="val_fraction"):
        balance(toy_shards, tmp_path / "e", seed=0, val_fraction=2.0)
    assert not (tmp_path / "e").exists()


def test_every_measurable_language_has_val_documents(shards: list[Path], balanced: dict) -> None:
    """On the real corpus (UDHR paragraphs in many languages) each language of 4+ documents has val data."""
    docs = Counter(lang for s in shards for lang in pq.read_table(s, columns=["lang"]).column("lang").to_pylist())
    val_langs = Counter(
        lang for p in list_shards(balanced["out"] / "val") for lang in pq.read_table(p).column("lang").to_pylist()
    )
    report = balanced["report"]
    assert report.val_documents_by_lang == {lang: val_langs.get(lang, 0) for lang in sorted(docs)}
    assert report.val_documents_by_lang == {lang: val_count(n) for lang, n in sorted(docs.items())}
    assert {lang for lang, n in docs.items() if n >= 4} == set(val_langs)
    assert sum(val_langs.values()) == report.val_documents
