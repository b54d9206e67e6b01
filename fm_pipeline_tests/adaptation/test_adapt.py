import json

import pytest
import sentencepiece as spm
import torch

from fm_pipeline.adaptation.adapt import RESULT_FILE, adapt
from fm_pipeline.adaptation.config import STRATEGIES, AdaptConfig
from fm_pipeline.adaptation.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapted
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline.training.callbacks import TrainingCallback

CONTRACT_KEYS = ("eval/domain_ppl_before", "eval/domain_ppl_after", "eval/general_ppl_before",
                 "eval/general_ppl_after", "adapt/strategy")


class Recorder(TrainingCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.evals: list[tuple[int, dict[str, float]]] = []

    def on_step(self, step, metrics):
        self.steps.append(step)

    def on_eval(self, step, metrics):
        self.evals.append((step, metrics))


def _config(strategy: str, **overrides) -> AdaptConfig:
    base = dict(steps=30, lr=3e-3 if strategy == "lora" else 1e-3, warmup_steps=3, batch_size=8, replay_share=0.25,
                unfreeze_every=5, eval_docs_per_lang=3, log_every=10, device="cpu", lora_dropout=0.0,
                max_new_tokens=40, domain_vocab_size=1000)
    return AdaptConfig.profile("cpu_small", strategy, **{**base, **overrides})


def _run(domain_data, tmp_path, config, **kwargs):
    return adapt(domain_data.checkpoint, domain_data.tokenizer, domain_data.domain_train, domain_data.domain_val,
                 domain_data.general_val, tmp_path / "out", config, general_train=domain_data.general_train,
                 processes=1, **kwargs)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_adapts_end_to_end(domain_data, tmp_path, strategy):
    recorder = Recorder()
    result = _run(domain_data, tmp_path, _config(strategy), callbacks=[recorder])
    metrics = result.metrics()
    assert all(key in metrics for key in CONTRACT_KEYS) and metrics["adapt/strategy"] == strategy
    assert metrics["eval/domain_bpb_after"] < metrics["eval/domain_bpb_before"]
    assert metrics["eval/domain_ppl_after"] < metrics["eval/domain_ppl_before"]
    assert recorder.steps == [10, 20, 30] and [s for s, _ in recorder.evals] == [0, 30]
    assert recorder.evals[0][1]["domain_ppl"] == metrics["eval/domain_ppl_before"]

    out = tmp_path / "out"
    model, config = load_checkpoint(out)  # a plain checkpoint, whatever the strategy
    saved = json.loads((out / RESULT_FILE).read_text())
    assert saved["strategy"] == strategy and saved["config"]["steps"] == 30
    total = sum(p.numel() for p in model.parameters())
    if strategy == "lora":
        assert 0 < result.trainable_params < 0.2 * result.total_params
        assert result.total_params == total + result.trainable_params  # the adapters, merged away on save
    else:
        assert result.trainable_params == result.total_params == total
    if strategy == "vocab_expansion":
        sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
        assert result.tokenizer == out / "tokenizer.model"
        assert config.vocab_size == sp.get_piece_size() == result.vocab["vocab_size"]
        assert result.vocab["new_tokens"] > 0
        assert result.vocab["tokens_per_word_after"] < result.vocab["tokens_per_word_before"]
        assert metrics["eval/domain_ppl_after_own_tokens"] == result.domain_after["val_ppl"]
    else:
        assert not (out / "tokenizer.model").exists() and result.tokenizer == domain_data.tokenizer
        assert result.vocab is None and config.vocab_size == model.config.vocab_size


def test_unmerged_lora_keeps_the_base_checkpoint_and_the_adapter(domain_data, tmp_path):
    result = _run(domain_data, tmp_path, _config("lora", merge=False, steps=5, replay_share=0.0))
    out = tmp_path / "out"
    assert result.merged is False and (out / ADAPTER_WEIGHTS).is_file() and (out / ADAPTER_CONFIG).is_file()
    base, _ = load_checkpoint(out)
    original, _ = load_checkpoint(domain_data.checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), original.state_dict().values(),
                                                  strict=True))
    merged = load_adapted(out)
    assert any(not torch.equal(a, b) for a, b in zip(merged.state_dict().values(), base.state_dict().values(),
                                                      strict=True))


def test_probe_is_measured_before_and_after(domain_data, tmp_path):
    result = _run(domain_data, tmp_path, _config("dapt", steps=5), probe_docs=domain_data.probe_docs)
    assert 0.0 <= result.probe_before <= 1.0 and 0.0 <= result.probe_after <= 1.0
    row = result.row()
    assert row["probe_accuracy"] == f"{result.probe_before:.3f} → {result.probe_after:.3f}"
    assert set(row) >= {"strategy", "trainable_params", "domain_ppl", "general_ppl", "probe_accuracy", "wall_s"}


def test_replay_needs_the_general_corpus(domain_data, tmp_path):
    with pytest.raises(ValueError, match="general_train"):
        adapt(domain_data.checkpoint, domain_data.tokenizer, domain_data.domain_train, domain_data.domain_val,
              domain_data.general_val, tmp_path / "out", _config("dapt"), processes=1)
    assert not (tmp_path / "out").exists()
