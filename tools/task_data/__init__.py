"""`python -m tools.task_data`: build the labelled downstream task sets shipped in
`fm_pipeline/sample_data/domain/tasks/<domain>/` from public data (see that folder's README for sources and licences).

- `ncbi_disease.jsonl`: the NCBI disease corpus' devel mentions (`ncbi_disease_devel_mentions.tsv`, character
  offsets as spyysalo/ncbi-disease's standoff files give them) over the same abstracts in
  `FM_SHARED_CORPORA/domain/biomedical.jsonl`, split into sentences and word tokens, tagged BIO.
- `scicite.jsonl`: the first 117 lines of allenai/scibert's SciCite `dev.txt` (`scicite_dev_head.jsonl`).
- `cuad_clauses.jsonl`: clauses of the CUAD v1 contracts in `FM_SHARED_CORPORA/domain/legal.jsonl` whose section
  heading names a clause type; the heading is the label and is removed from the text.

- `financial_sentiment.jsonl`: `financial_sentiment.tsv`, sentences written for this project.

Rerunning rewrites the files
byte-identically.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = HERE.parents[1] / "fm_pipeline" / "sample_data" / "domain" / "tasks"
