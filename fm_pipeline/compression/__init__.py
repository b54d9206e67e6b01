"""Model compression: quantization (dynamic int8, weight-only int8/int4, quantization-aware training),
pruning (global magnitude, gradual, structured), knowledge distillation and low-rank factorization, each
candidate measured side by side (`compress.compress`) and saved without pickles (`export`).

Kept free of imports: `generate` and `export` load a published model without pulling in the training code."""
