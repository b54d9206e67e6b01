"""Exact and near-duplicate removal across all sources, in the staged, sharded scheme of datatrove and NeMo
Curator: no step holds the corpus, each holds one shard, one key range, one bucket, or the pairs.

Every step is a plain function of (work folder, job index), so a Dagster graph can fan each one out; the
plan (`plan.write_plan`) says how many jobs each step has and what they share:

1. `signatures.compute_signatures` per corpus shard: an exact key and a MinHash signature per document
   (`minhash`) and its LSH band hashes, in a small signature file (cached by the shard's content hash).
2. `buckets.write_exact_run` per signature file, then `buckets.exact_groups` per exact key range.
3. `buckets.write_band_run` per signature file, then `buckets.bucket_pairs` per bucket (a band range, or a
   hash range of one band): candidate pairs, verified on their signatures.
4. `clusters.connect`, once: union-find over exact groups and verified pairs, a survivor per cluster.
5. `stage.filter_shard` per input shard: kept rows, and removed rows with `duplicate_of`.

`stage.dedup_corpus` runs them in order over one process pool into one folder; `clusters.find_duplicates`
runs 2-4 over signature files and returns the removed map. Import names from the module that defines them.
"""
