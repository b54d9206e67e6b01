"""SentencePiece training, evaluation, and packing a corpus into token arrays."""
