"""Document quality rules, datatrove-style: one small class per published rule family, one module per family.

Each family is a `rule.Rule`: a `name`, and `check(view)`, which returns None to keep the document or
`"<family>:<rule>"` naming the first of its rules that fails. Thresholds are dataclass fields whose
defaults are the published ones (Gopher: Rae et al. 2021, table A1; C4: Raffel et al. 2020;
FineWeb: Penedo et al. 2024; code: StarCoder / The Stack). Rules only judge: none rewrites text.

Speed matters more than elegance here (every document of every source passes through): a
`view.TextView` splits a document once and every family reads the same words, lines and counts;
counting is pushed into C (str methods, regexes, `Counter`, `zip`), and the n-gram repetition
rules first try a cheap upper bound and only count exactly when the bound is not enough.
`rule.run_rules` shares one view across a whole rule list; `profiles` holds the lists.
"""
