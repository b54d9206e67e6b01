"""Pretraining: the loop for all three objectives (`loop.train`), data windows, checkpoints, MLflow logging
(`mlflow_logger`) and the torchrun entry point (`python -m fm_pipeline.training.run`)."""
