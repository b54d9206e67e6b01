import json

import mlflow
import pytest
from mlflow import MlflowClient

from fm_pipeline.defs.mlflow_logger import MlflowLogger, flatten
from fm_pipeline.defs.train_launch import main
from fm_pipeline.training.loop import train
from fm_pipeline_tests.training.tiny_corpus import tiny_config


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A throwaway SQLite store (it has the model registry) with artifacts beside it; creating its tables
    takes seconds, so the module shares it."""
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root}/m.db")
    experiment = mlflow.create_experiment("tiny", artifact_location=(root / "artifacts").as_uri())
    yield experiment
    mlflow.set_tracking_uri(previous)


def test_flatten():
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a": 1, "b.c": 2, "b.d.e": 3}


def test_a_training_run_fills_the_active_mlflow_run_and_registers_the_model(tiny_corpus, tmp_path, tracking):
    logger = MlflowLogger(registered_model="tiny-lm")
    config = tiny_config(tiny_corpus, tmp_path / "out", steps=12, log_every=3, eval_every=6, checkpoint_every=6,
                         val_docs_dir=str(tiny_corpus.val_docs), eval_docs_per_lang=2)
    with mlflow.start_run(experiment_id=tracking) as run:
        result = train(config, [logger])
    client = MlflowClient()
    data = client.get_run(run.info.run_id).data

    assert data.params["lr"] == str(config.lr) and data.params["model.n_layer"] == "2"
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert data.params["model.vocab_size"] == str(saved["vocab_size"])
    assert data.params["n_params"] == str(result.n_params) and len(data.params["tokenizer_sha256"]) == 64
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [3, 6, 9, 12]
    assert {"train/lr", "train/grad_norm", "train/tokens_per_s", "eval/val_loss", "eval/val_ppl", "eval/val_bpb",
            "eval/val_bpb/en", "eval/val_ppl/de"} <= set(data.metrics)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/val_loss")] == [6, 12]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "tokenizer.model", "checkpoint"} <= artifacts
    checkpoint = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert checkpoint == {"checkpoint/model.safetensors", "checkpoint/config.json", "checkpoint/tokenizer.model"}

    (version,) = client.search_model_versions("name='tiny-lm'")
    assert version.version == logger.model_version == 1 and version.run_id == run.info.run_id
    assert version.source.endswith("/artifacts/checkpoint")


def test_the_cli_logs_into_an_existing_run(tiny_corpus, tmp_path, tracking):
    """What a parent process does before launching torchrun: create the run, pass its id."""
    config = tiny_config(tiny_corpus, tmp_path / "out", steps=4, log_every=2, eval_every=0, checkpoint_every=4)
    config.to_json(tmp_path / "train.json")
    run_id = MlflowClient().create_run(tracking).info.run_id
    main(["--config", str(tmp_path / "train.json"), "--mlflow-run-id", run_id, "--registered-model", "cli-lm"])

    assert (tmp_path / "out" / "train_result.json").is_file()
    assert len(MlflowClient().get_metric_history(run_id, "train/loss")) == 2
    assert MlflowClient().search_model_versions("name='cli-lm'")[0].run_id == run_id
