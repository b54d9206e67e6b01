"""Evaluation: perplexity and bits per UTF-8 byte, overall and per language (`perplexity`), sampled outputs
(`sampling`), baselines and plots.

Kept free of imports: `plots` and `baselines` are used without torch."""
