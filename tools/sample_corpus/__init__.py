"""Build the sample corpus's `common_crawl` and `code_repositories` sources, and the PDFs of
`academic_papers/pdf/`, from `seed_texts/`.

Run from the repository root: `python -m tools.sample_corpus`. It rewrites `raw/common_crawl/`,
`raw/code_repositories/`, `raw/academic_papers/pdf/` and `raw/PLANTED.md` (which lists every planted case) under
`fm_pipeline/sample_data/`. The output is byte-identical on every run: seeded `random.Random`, sorted inputs,
gzip with mtime 0 and fixed WARC dates and record ids. A development tool: the pipeline reads only `raw/`.
"""

from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seed_texts"
RAW = Path(__file__).resolve().parents[2] / "fm_pipeline" / "sample_data" / "raw"
