from pathlib import Path

import fm_pipeline
from fm_pipeline.curation.dedup.signatures import compute_signatures
from fm_pipeline.curation.domain_corpus import DomainCorpusConfig, build_domain_corpus
from fm_pipeline.curation.filter_stage import FilterConfig
from fm_pipeline.lake.documents import CORPUS_SCHEMA, Document
from fm_pipeline.lake.parquet_io import ShardWriter, iter_rows, list_shards

DOMAIN = Path(fm_pipeline.__file__).parent / "sample_data" / "domain"
CONFIG = DomainCorpusConfig(filter=FilterConfig(processes=1))


def _ids(folder: Path) -> set[str]:
    return {row["id"] for row in iter_rows(list_shards(folder), columns=["id"])}


def test_legal_sample_is_filtered_deduped_and_split_with_every_document_accounted_for(tmp_path):
    stats = build_domain_corpus("legal", DOMAIN / "legal", tmp_path / "legal", [], CONFIG)
    assert stats.documents_in == 15 == stats.filter_kept + stats.filter_rejected
    assert stats.rejected_by_reason == {"c4:too_few_sentences": 2, "gopher_repetition:dup_5gram_frac": 1}
    assert stats.kept == stats.filter_kept - stats.exact_duplicates - stats.near_duplicates
    train, val = _ids(tmp_path / "legal" / "train"), _ids(tmp_path / "legal" / "val")
    assert not train & val and len(train) + len(val) == stats.kept and len(val) == stats.val_documents == 2
    assert stats.in_general_corpus == 0

    rerun = build_domain_corpus("legal", DOMAIN / "legal", tmp_path / "legal", [], CONFIG)
    assert _ids(tmp_path / "legal" / "val") == val and rerun == stats


def test_domain_text_already_in_the_general_corpus_is_reported(tmp_path):
    first = build_domain_corpus("biomedical", DOMAIN / "biomedical", tmp_path / "bio", [], CONFIG)
    assert first.in_general_corpus == 0
    copied = next(iter_rows(list_shards(tmp_path / "bio" / "train")))
    general = tmp_path / "general"
    with ShardWriter(general, CORPUS_SCHEMA) as writer:
        writer.write(Document(id="web-1", text=copied["text"] + "\nShare this page.", source="common_crawl",
                              lang="en").to_row())
        writer.write(Document(id="web-2", text=(DOMAIN / "README.md").read_text(), source="common_crawl",
                              lang="en").to_row())
    signatures = [compute_signatures(shard, tmp_path / "sigs" / f"{i}.parquet", CONFIG.minhash)
                  for i, shard in enumerate(writer.shards)]

    stats = build_domain_corpus("biomedical", DOMAIN / "biomedical", tmp_path / "bio", signatures, CONFIG)
    assert stats.in_general_corpus == 1
    assert stats.overlap_examples == {copied["id"]: "web-1"}
