"""Exact and near-duplicate removal across all sources, shaped for fan-out like datatrove's MinHash.

The stage runs in four steps, each a plain function over paths so that a Dagster graph can fan the
per-shard ones out:

1. `signatures.compute_signatures` per corpus shard: an exact key and a MinHash signature per document
   (`minhash`), cut into LSH band hashes, written to a small signature file (cached by the shard's
   content hash).
2. per band, bucket documents by band hash (`clusters.find_duplicates` does this band by band, reading one
   band column at a time, so memory holds one band, not the signatures).
3. one global step over the candidate pairs only: verification, union-find, a survivor per cluster.
4. `stage.apply_dedup`: a streaming pass writing kept rows, and removed rows with `duplicate_of`; it needs
   only the removed-id map, so a fan-out gives each step some shards and its own output folders.

`stage.dedup_corpus` runs all four into one folder. Import names from the module that defines them.
"""
