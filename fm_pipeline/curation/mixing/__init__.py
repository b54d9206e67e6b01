"""Language mixing: the train/val shards the model sees, in a planned language mix.

`plan` turns target shares (or a temperature) into per-language sampling rates; `split` picks the val
documents, stratified by language; `sampling` draws copies and shuffles, by keyed hashes; `balance` is the
streaming stage that applies them to the deduplicated shards, and `audit` recounts its output from disk.
Import names from the module that defines them.
"""
