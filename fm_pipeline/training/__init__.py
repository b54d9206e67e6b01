"""Pretraining: the loop for all three objectives (`loop.train`), data windows, checkpoints, the callback
interface that progress and MLflow logging plug into (`callbacks`; the MLflow one is the Dagster layer's) and
the torchrun entry point (`python -m fm_pipeline.training.run`)."""
