"""The staged dedup on real text with planted clusters spread over shards: exact ids and survivors, the same
answer however the work is cut into jobs, each job rerunnable alone, union-find over pairs, and the filter
writing one set of files per input shard in input order."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fm_pipeline.curation.dedup.buckets import bucket_pairs, exact_groups
from fm_pipeline.curation.dedup.clusters import _components, read_stats, run_search
from fm_pipeline.curation.dedup.plan import write_plan
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.curation.dedup.stage import dedup_corpus
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from fm_pipeline.lake.layout import DEDUP_WORK
from fm_pipeline.lake.parquet_io import list_shards
from tools.text_chunks import chunk_text


def _edit(text: str, rate: float, rng: random.Random) -> str:
    """Replace `rate` of the words with other words of the same text."""
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, round(rate * len(words)))):
        words[i] = rng.choice([w for w in words if w != words[i]])
    return " ".join(words)


# Planted clusters: removed id -> (survivor id, kind), exactly.
EXPECTED = {
    # A book chunk survives its web copies: edited, identical, shouted with doubled spaces.
    "cc-edit-b000": ("book-000", "near"),
    "cc-same-b000": ("book-000", "exact"),
    "cc-upper-b000": ("book-000", "exact"),
    # Within one source the longer text survives.
    "cc-page": ("cc-page-long", "near"),
    # Identical texts of one source and length: the smallest id survives.
    "dup-b": ("dup-a", "exact"),
    "dup-c": ("dup-a", "exact"),
    # A chain: each link 2% from the previous one; the clusters join through the verified pairs.
    "chain-1": ("book-003", "near"),
    "chain-2": ("book-003", "near"),
    # Reference data before books.
    "book-copy-ref": ("ref-0", "exact"),
}


@pytest.fixture(scope="module")
def shards(shared_corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    rng = random.Random(3)
    text = (shared_corpora / "books" / "botchan.txt").read_text(encoding="utf-8-sig")
    chunks = chunk_text(text, 2000)
    books, spare = chunks[1:41], chunks[41:43]
    docs = [Document(id=f"book-{i:03d}", text=t, source="books", lang="en") for i, t in enumerate(books)]
    web = [
        Document(id="cc-edit-b000", text=_edit(books[0], 0.02, rng), source="common_crawl", lang="en"),
        Document(id="cc-same-b000", text=books[0], source="common_crawl", lang="en"),
        Document(id="cc-upper-b000", text=books[0].upper().replace(" ", "  "), source="common_crawl", lang="en"),
        Document(id="cc-page", text=spare[0], source="common_crawl", lang="en"),
        Document(id="cc-page-long", text=spare[0] + " And so it ended.", source="common_crawl", lang="en"),
        Document(id="dup-b", text=spare[1], source="common_crawl", lang="en"),
        Document(id="dup-c", text=spare[1], source="common_crawl", lang="en"),
        Document(id="dup-a", text=spare[1], source="common_crawl", lang="en"),
    ]
    chain = [books[3]]
    for _ in range(2):
        chain.append(_edit(chain[-1], 0.02, rng))
    web += [Document(id=f"chain-{k}", text=t, source="common_crawl", lang="en") for k, t in enumerate(chain) if k]
    ref = [Document(id="ref-0", text=books[4], source="reference_data", lang="en")]
    docs[4] = Document(id="book-copy-ref", text=books[4], source="books", lang="en")
    root = tmp_path_factory.mktemp("staged_in")
    groups = [web[:4], docs[:20] + web[4:7], ref + web[7:], docs[20:]]
    paths = []
    for k, group in enumerate(groups):
        paths.append(root / f"part-{k:05d}.parquet")
        pq.write_table(pa.Table.from_pylist([d.to_row() for d in group], schema=CORPUS_SCHEMA), paths[-1])
    return paths


@pytest.fixture(scope="module")
def signature_files(shards: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("staged_sig")
    return [compute_signatures(s, root / f"{s.stem}.sig.parquet") for s in shards]


def _removed(clusters: Path) -> dict[str, tuple[str, str]]:
    table = pq.read_table(clusters)
    why = zip(table.column("duplicate_of").to_pylist(), table.column("kind").to_pylist(), strict=True)
    return dict(zip(table.column("id").to_pylist(), why, strict=True))


@pytest.mark.parametrize("cut", [{}, {"part_rows": 5, "bucket_entries": 20}, {"min_jobs": 5}])
def test_planted_clusters_whatever_the_job_cut(signature_files: list[Path], tmp_path: Path, cut: dict) -> None:
    """One job for everything, or 11 exact key ranges and 72 buckets (each under half a band's hash range), or
    5 band ranges: the same clusters, survivors and kinds, and the same cluster file."""
    plan = write_plan(tmp_path, signature_files, **cut)
    if cut.get("bucket_entries"):
        assert plan.exact_parts == 11 and plan.buckets == 72
    run_search(plan)
    assert _removed(plan.clusters) == EXPECTED
    stats = read_stats(plan)
    assert stats["cluster_sizes"] == {2: 2, 3: 2, 4: 1}
    assert (stats["exact_duplicates"], stats["near_duplicates"]) == (5, 4)
    assert stats["documents_in"] == 51
    assert stats["examples"][0][0] == {"id": "book-000", "source": "books", "role": "survivor",
                                       "text": pq.read_table(signature_files[1]).column("text_head")[0].as_py()}
    reference = write_plan(tmp_path / "one", signature_files)
    run_search(reference)
    assert pq.read_table(plan.clusters).equals(pq.read_table(reference.clusters))


def test_each_job_reruns_alone(signature_files: list[Path], tmp_path: Path) -> None:
    """A job's file is whole or absent: deleting one and rerunning that job alone gives the same bytes."""
    plan = write_plan(tmp_path, signature_files, part_rows=20, bucket_entries=300)
    run_search(plan)
    for path, job, index in ((plan.bucket_pairs(3), bucket_pairs, 3), (plan.exact_group(1), exact_groups, 1)):
        before = path.read_bytes()
        path.unlink()
        job(tmp_path, index)
        assert path.read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_union_find_over_pairs() -> None:
    """Roots are the smallest node of each component, whatever the edge order: a chain, a star, a pair."""
    a = np.array([5, 4, 3, 2, 7, 7, 9])
    b = np.array([6, 5, 4, 3, 8, 1, 10])
    assert _components(a, b, 11).tolist() == [0, 1, 2, 2, 2, 2, 2, 1, 1, 9, 9]


def test_dedup_corpus_filters_per_shard_in_input_order(shards: list[Path], tmp_path: Path) -> None:
    stats = dedup_corpus(shards, tmp_path / "out", processes=2)
    kept = list_shards(tmp_path / "out" / "kept")
    # Every row of the first shard is a removed copy: it has no kept file.
    assert [p.name for p in kept] == [f"part-{i:05d}-00000.parquet" for i in (1, 2, 3)]
    ids = [i for p in kept for i in pq.read_table(p).column("id").to_pylist()]
    inputs = [i for s in shards for i in pq.read_table(s).column("id").to_pylist()]
    assert ids == [i for i in inputs if i not in EXPECTED]
    removed = {r["id"]: r["duplicate_of"] for p in list_shards(tmp_path / "out" / "removed")
               for r in pq.read_table(p).to_pylist()}
    assert removed == {k: v for k, (v, _) in EXPECTED.items()}
    assert (stats.documents_in, stats.kept, stats.removed) == (51, 42, 9)
    assert not (tmp_path / "out" / DEDUP_WORK).exists()


def test_no_input_shards(tmp_path: Path) -> None:
    stats = dedup_corpus([], tmp_path / "out", processes=2)
    assert (stats.documents_in, stats.kept, stats.removed, stats.cluster_sizes) == (0, 0, 0, {})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["kept", "removed", "signatures"]


def test_a_shard_of_exact_copies_only(shards: list[Path], tmp_path: Path) -> None:
    """A shard whose every row is an exact copy of an earlier one leaves no rows to band: its band run is
    empty, and the stage still removes every copy (a crash here once stopped the whole dedup)."""
    first = pq.read_table(shards[1])
    copies = first.set_column(0, "id", pa.array([f"z-copy-{i}" for i in first.column("id").to_pylist()]))
    copy_shard = tmp_path / "part-00009.parquet"
    pq.write_table(copies, copy_shard)
    stats = dedup_corpus([shards[1], copy_shard], tmp_path / "out", processes=1)
    removed = {r["id"]: r["duplicate_of"] for p in list_shards(tmp_path / "out" / "removed")
               for r in pq.read_table(p).to_pylist()}
    kept = {i for p in list_shards(tmp_path / "out" / "kept") for i in pq.read_table(p).column("id").to_pylist()}
    ids = first.column("id").to_pylist()
    assert kept == set(ids) - {"dup-c"}
    assert removed == {"dup-c": "dup-b"} | {f"z-copy-{i}": "dup-b" if i == "dup-c" else i for i in ids}
    assert stats.documents_in == 2 * first.num_rows
