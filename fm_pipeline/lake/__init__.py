"""Lake plumbing every stage shares: where the lake is, the document record and its Parquet files, atomic
writes and folder swaps, content fingerprints, the process pool and lineage records. It imports nothing else
from the project."""
