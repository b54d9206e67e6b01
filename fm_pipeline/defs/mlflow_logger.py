"""MLflow for training runs: params, metrics, artifacts and a registered model version. A `TrainingCallback`
(the library's logging interface) that lives in the Dagster layer, as only its assets and the op's torchrun
launcher (`train_launch`) log to MLflow.

The caller owns the MLflow run (the Dagster resource starts and ends it); this only writes into it. MLflow is
imported by the functions that log, in the training process, not when the code location loads (`defs.resources`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fm_pipeline.modeling.checkpoint_files import CONFIG, WEIGHTS
from fm_pipeline.training.callbacks import RunInfo, TrainingCallback, TrainResult


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`: MLflow params are flat."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class MlflowLogger(TrainingCallback):
    """Logs a training run into the already-active MLflow run and registers the final model.

    The caller owns the run (starts and ends it); this only writes into it: params (the whole config
    flattened, parameter count, tokenizer checksum), `train/*` metrics per logged step, `eval/*` metrics,
    the training config and tokenizer as artifacts, and the final checkpoint as `checkpoint/`, registered
    as a new version of `registered_model` (skipped when None).
    """

    def __init__(self, registered_model: str | None = "fm-pipeline-pretrained") -> None:
        self.registered_model = registered_model
        self.tokenizer_path: Path | None = None
        self.model_version: int | None = None

    @staticmethod
    def _run_id() -> str:
        import mlflow

        run = mlflow.active_run()
        if run is None:
            raise RuntimeError("MlflowLogger needs an active MLflow run (mlflow.start_run) around training")
        return run.info.run_id

    def on_train_start(self, info: RunInfo) -> None:
        import mlflow

        self._run_id()
        params = {
            **flatten(info.config.to_dict()),
            **flatten({"model": info.model_config}),
            "n_params": info.n_params,
            "tokenizer_sha256": info.tokenizer_sha256,
            "device": info.device,
            "world_size": info.world_size,
        }
        mlflow.log_params({k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()})
        mlflow.log_dict(info.config.to_dict(), "config.json")
        self.tokenizer_path = Path(info.config.tokenizer_path)
        mlflow.log_artifact(str(self.tokenizer_path))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({f"train/{k}": v for k, v in metrics.items() if math.isfinite(v)}, step=step)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({f"eval/{k}": v for k, v in metrics.items() if math.isfinite(v)}, step=step)

    def on_train_end(self, result: TrainResult) -> None:
        """Upload the model files (not the optimizer state) with the tokenizer, so the registered version
        is self-contained, then register it."""
        import mlflow

        self._run_id()
        files = [result.checkpoint / WEIGHTS, result.checkpoint / CONFIG]
        for path in [*files, *([self.tokenizer_path] if self.tokenizer_path else [])]:
            mlflow.log_artifact(str(path), "checkpoint")
        if self.registered_model:
            self.model_version = register_logged_checkpoint(self.registered_model)


def register_checkpoint(name: str, source_uri: str, run_id: str) -> int:
    """Register a checkpoint folder (by artifact URI) as a new version of `name`, linked to its run.

    A plain safetensors folder is not an MLflow-format model, so `runs:/` URIs do not resolve for it and
    `mlflow.register_model` on its artifact URI would not record the run; the client API does both.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return int(client.create_model_version(name, source_uri, run_id=run_id).version)


def register_logged_checkpoint(name: str, artifact_path: str = "checkpoint") -> int:
    """Register the folder `artifact_path` the active run has logged as a new version of `name`, tag the run
    `registered_model_version: <name>/<version>` and return the version."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("registering a logged checkpoint needs an active MLflow run")
    version = register_checkpoint(name, mlflow.get_artifact_uri(artifact_path), run.info.run_id)
    mlflow.set_tag("registered_model_version", f"{name}/{version}")
    return version


def log_adaptation_run(result: Any, config: Any, registered_model: str | None,
                       extra_files: Sequence[Path] = ()) -> str | None:
    """An adaptation (domain or language) into the active run: its config as params, `adapt.strategy`, finite
    final metrics, the checkpoint folder and `extra_files` as `checkpoint/`; then registers that folder as a
    version of `registered_model` and returns `<name>/<version>`, unless None."""
    import mlflow

    mlflow.log_params({k: str(v) for k, v in flatten({"adapt": config.to_dict()}).items()})
    mlflow.set_tag("adapt.strategy", config.strategy)
    mlflow.log_metrics({k: float(v) for k, v in result.metrics().items()
                        if isinstance(v, (int, float)) and math.isfinite(v)})
    for path in [*sorted(Path(result.checkpoint).iterdir()), *extra_files]:
        mlflow.log_artifact(str(path), "checkpoint")
    if registered_model is None:
        return None
    return f"{registered_model}/{register_logged_checkpoint(registered_model)}"
