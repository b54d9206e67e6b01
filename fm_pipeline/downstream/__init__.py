"""Downstream evaluation: labelled tasks per domain, task heads fine-tuned on a checkpoint by several strategies
and scored (token span F1, macro F1), and cross-lingual transfer of a classification head."""
