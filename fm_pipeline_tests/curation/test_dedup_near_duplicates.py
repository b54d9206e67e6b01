"""Near-duplicate figures on a labelled set built from the sample corpus (11 languages): planted copies of
graded edit strength must be found per kind as the README defines a near duplicate, hard negatives (a
shared site template, a shared long quotation, translations, same-language texts) must never merge, and
every survivor follows the documented rule. The bar is shown to fail on datatrove's 14 x 8 banding."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.near_duplicates import (
    MUST_FIND,
    EvalSet,
    build_eval_set,
    clusters_of,
    evaluate,
    run_dedup,
    sample_corpus_documents,
    sample_family,
)
from fm_pipeline.curation.dedup.minhash import MinHashConfig, shingles
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document

RAW = Path(__file__).resolve().parents[2] / "fm_pipeline" / "sample_data" / "raw"
SPACELESS_AND_OTHER_SCRIPTS = ("th", "zh", "ja", "ko", "ar", "hi", "ru")

# The sample corpus's own planted copies (PLANTED.md): removed id -> (survivor, kind), exactly as the
# pipeline decides today. Within one source the longer text survives, so a longer repost can win.
SAMPLE_CORPUS_REMOVED = {
    "en-birdwatching-blog": ("en-birdwatching-blog-repost", "near"),
    "en-budget-spreadsheet": ("en-budget-spreadsheet-repost", "near"),
    "en-city-council-bike-lanes-repost": ("en-city-council-bike-lanes", "near"),
    "en-forum-tomato-blight-repost": ("en-forum-tomato-blight", "near"),
    "en-git-bisect-howto-mirror": ("en-git-bisect-howto", "exact"),
    "en-howto-bike-chain": ("en-howto-bike-chain-syndicated", "near"),
    "en-library-reopening-news-mirror": ("en-library-reopening-news", "exact"),
    "en-product-backpack": ("en-product-backpack-syndicated", "near"),
    "en-product-kettle-mirror": ("en-product-kettle", "exact"),
    "en-sourdough-starter-mirror": ("en-sourdough-starter", "exact"),
    "en-trail-running-blog": ("en-trail-running-blog-syndicated", "near"),
    "es-noticias-sequia": ("es-noticias-sequia-repost", "near"),
    "es-receta-tortilla": ("es-receta-tortilla-syndicated", "near"),
    "fr-actualite-velo": ("fr-actualite-velo-repost", "near"),
    "zh-news-high-speed-rail-mirror": ("zh-news-high-speed-rail", "exact"),
}


@pytest.fixture(scope="module")
def eval_set() -> EvalSet:
    docs = sample_corpus_documents(RAW)
    families = {d.id: sample_family(d.id) for d in docs if sample_family(d.id) != d.id}
    return build_eval_set(docs, families, seed=0)


@pytest.fixture(scope="module")
def figures(eval_set: EvalSet) -> dict:
    result = run_dedup(eval_set.docs)
    return {"result": result, "eval": evaluate(eval_set, result)}


def test_the_set_covers_every_kind_and_script(eval_set: EvalSet, figures: dict) -> None:
    by_kind = figures["eval"]["recall_by_kind"]
    assert 400 <= len(eval_set.docs) <= 500
    for kind in (*MUST_FIND, "words_05_10", "words_10_20"):
        assert by_kind[f"{kind}/spaced"]["copies"] >= 20, kind
        assert by_kind[f"{kind}/spaceless"]["copies"] >= 2, kind
    copy_langs = {lab.lang for lab in eval_set.labels.values() if lab.role == "copy"}
    assert {"zh", "ja", "ko", "ar", "hi", "ru", "en", "es", "fr", "de", "pt"} <= copy_langs


def test_near_duplicates_are_found_per_kind(eval_set: EvalSet, figures: dict) -> None:
    figs = figures["eval"]
    by_kind = figs["recall_by_kind"]
    for kind in MUST_FIND:
        if kind != "words_01_05":
            assert by_kind[kind]["recall"] == 1.0, (kind, by_kind[kind])
    # 1-5% of the words edited: the copies at 4-5% sit at Jaccard ~0.65, on the verification bar. Exactly
    # two are missed here, both under 0.7 (an English abstract and a Japanese article).
    assert by_kind["words_01_05"]["recall"] >= 0.9
    cluster = clusters_of(figures["result"].removed)
    missed = {
        doc_id: round(lab.jaccard, 3) for doc_id, lab in eval_set.labels.items()
        if lab.kind == "words_01_05" and (doc_id not in cluster or cluster.get(doc_id) != cluster.get(lab.of))
    }
    assert missed == {"words_01_05~paper-en-0001": 0.676, "words_01_05~ref-ja-0001": 0.674}
    assert all(
        figs["recall_by_true_jaccard"][b]["recall"] == 1.0 for b in (">=0.7", ">=0.8", ">=0.9")
    ), figs["recall_by_true_jaccard"]
    # Rewritten texts are not near duplicates: nothing below Jaccard 0.5 is linked, 10-20% edits never.
    assert figs["recall_by_true_jaccard"][">=0.4"]["recall"] == 0.0
    assert figs["recall_by_true_jaccard"][">=0.0"]["recall"] == 0.0
    assert by_kind["words_10_20"]["found"] == 0


def test_hard_negatives_never_merge(figures: dict) -> None:
    figs = figures["eval"]
    assert figs["false_merge_pairs"] == 0 and figs["precision"] == 1.0, figs["false_merges"]
    negatives = figs["hard_negatives"]
    assert {k: v["pairs"] for k, v in negatives.items()} == {
        "other": 0, "same_language": 1495, "shared_quotation": 7, "shared_template": 28, "translation": 3,
    }
    assert all(v["merged"] == 0 for v in negatives.values()), negatives
    # The built negatives share a lot of text, yet stay well under the bar.
    assert 0.2 < negatives["shared_template"]["jaccard_max"] < 0.5
    assert 0.2 < negatives["shared_quotation"]["jaccard_max"] < 0.5


def test_survivors_and_the_sample_corpus_own_duplicates(eval_set: EvalSet, figures: dict) -> None:
    figs, removed = figures["eval"], figures["result"].removed
    assert figs["survivor_follows_rule"] == figs["clusters"]
    sample_ids = {k for pair in SAMPLE_CORPUS_REMOVED.items() for k in (pair[0], pair[1][0])}
    assert {k: v for k, v in removed.items() if k in sample_ids} == SAMPLE_CORPUS_REMOVED
    # Planted copies are common_crawl: a book, paper or reference original always survives its copies.
    source = {d.id: d.source for d in eval_set.docs}
    curated = [
        (doc_id, lab.of) for doc_id, lab in eval_set.labels.items()
        if lab.role == "copy" and source[lab.of] != "common_crawl" and doc_id in removed
    ]
    assert len(curated) > 100
    assert all(removed[doc_id][0] == original for doc_id, original in curated)


def test_the_bar_fails_on_datatrove_banding(eval_set: EvalSet) -> None:
    """14 bands x 8 rows loses copies the README promises (the check can fail)."""
    figs = evaluate(eval_set, run_dedup(eval_set.docs, MinHashConfig(bands=14)))
    assert figs["recall_by_kind"]["words_01_05"]["recall"] < 0.9
    assert figs["recall_by_true_jaccard"][">=0.7"]["recall"] < 0.95


def test_capitals_fold_like_lower_case() -> None:
    """Case folding, not lowercasing: a heading in capitals keeps its shingles, in German (ß -> ss) and in
    Turkish (I is the capital of dotless ı, İ of i)."""
    assert shingles("DIE STRASSE AM FLUSS IST GROSS") == shingles("Die Straße am Fluss ist groß")
    assert shingles("HERKES EŞİTLİKLE GİRME HAKKINI HAİZDİR") == shingles("herkes eşitlikle girme hakkını haizdir")


def test_udhr_scripts(shared_corpora: Path) -> None:
    """Thai (space-less, only in the public corpora), Chinese, Japanese, Korean, Arabic, Hindi, Russian:
    every must-find copy is found and no translation or other part of the declaration merges."""
    rows = [json.loads(line) for line in (shared_corpora / "multilingual" / "udhr.jsonl").open(encoding="utf-8")]
    docs = [
        Document(id=r["id"], text=r["text"], source="reference_data", lang=r["meta"]["gold_lang"])
        for r in rows
        if r["meta"]["gold_lang"] in SPACELESS_AND_OTHER_SCRIPTS
    ]
    udhr = build_eval_set(docs, holdout_every=8, template_pages=4, seed=1)
    figs = evaluate(udhr, run_dedup(udhr.docs))
    assert figs["false_merge_pairs"] == 0, figs["false_merges"]
    assert figs["hard_negatives"]["translation"]["pairs"] > 50
    for kind in MUST_FIND:
        if kind != "words_01_05" and kind in figs["recall_by_kind"]:
            assert figs["recall_by_kind"][kind]["recall"] == 1.0, (kind, figs["recall_by_kind"][kind])
    th = [lab for lab in udhr.labels.values() if lab.role == "copy" and lab.lang == "th"]
    assert len(th) >= 10


def test_signatures_from_before_case_folding_are_recomputed(tmp_path: Path) -> None:
    """A signature file without the fold marker (written by lowercasing code) is not reused."""
    docs = [Document(id="de", text="DIE STRASSE AM FLUSS IST GROSS UND BREIT", source="books", lang="de")]
    shard = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pylist([d.to_row() for d in docs], schema=CORPUS_SCHEMA), shard)
    sig = compute_signatures(shard, tmp_path / "sig.parquet")
    table = pq.read_table(sig)
    old_meta = {k: v for k, v in table.schema.metadata.items() if k != b"fm_pipeline.shingle_fold"}
    pq.write_table(table.replace_schema_metadata(old_meta), sig)
    compute_signatures(shard, sig)
    assert pq.read_schema(sig).metadata[b"fm_pipeline.shingle_fold"] == b"casefold,turkish-i"
