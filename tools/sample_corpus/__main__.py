"""`python -m tools.sample_corpus`: rewrite the generated part of the sample corpus (see the package docstring)."""

from __future__ import annotations

import shutil

from tools.sample_corpus import RAW, SEEDS
from tools.sample_corpus.broken import write_broken
from tools.sample_corpus.code_files import write_code
from tools.sample_corpus.crawl_files import write_common_crawl
from tools.sample_corpus.documents import build_documents, load_pages
from tools.sample_corpus.pdf_files import write_pdfs
from tools.sample_corpus.planted_md import render_planted


def main() -> None:
    pages = load_pages(SEEDS / "common_crawl" / "pages")
    notices = (SEEDS / "common_crawl" / "notices.txt").read_text(encoding="utf-8").strip().split("\n\n")
    docs = build_documents(pages)

    for folder in (RAW / "common_crawl", RAW / "code_repositories"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    record_ids = write_common_crawl(RAW / "common_crawl", docs, pages)
    broken = write_broken(RAW / "common_crawl" / "broken", notices)
    code_rows = write_code(RAW / "code_repositories", SEEDS / "code_repositories")
    (RAW / "PLANTED.md").write_text(render_planted(docs, record_ids, broken, code_rows), encoding="utf-8")
    pdfs = write_pdfs(RAW / "academic_papers", SEEDS / "academic_papers" / "pdf")
    print(f"wrote {len(docs)} common_crawl documents, {len(code_rows)} code files and {len(pdfs)} PDFs under {RAW}")


if __name__ == "__main__":
    main()
