import sentencepiece as spm
import torch

from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import Objective, fit_to_tokenizer
from fm_pipeline.tokenization.packed import PackedTokens
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.finetune import FinetuneConfig, finetune
from fm_pipeline.training.optim import build_optimizer


def _setup(tiny_corpus):
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    config = fit_to_tokenizer(ModelConfig(n_layer=2, n_head=2, d_model=32, block_size=32), sp)
    torch.manual_seed(0)
    model = build_model(config)
    objective = Objective.for_model(config, sp)
    sampler = WindowSampler(PackedTokens.open(tiny_corpus.tokens, "train"), 33, 8, seed=0)
    return model, objective, sampler


def test_loss_goes_down(tiny_corpus):
    model, objective, sampler = _setup(tiny_corpus)
    result = finetune(model, sampler, objective, FinetuneConfig(steps=100, lr=3e-3, warmup_steps=5, log_every=20))
    assert [h["step"] for h in result.history] == [20, 40, 60, 80, 100]
    assert result.history[-1]["loss"] < result.history[0]["loss"] - 0.3


def test_frozen_parameters_stay_put_and_unfrozen_ones_train_from_then_on(tiny_corpus):
    model, objective, sampler = _setup(tiny_corpus)
    model.requires_grad_(False)
    top = model.decoder.blocks[-1]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = []

    def unfreeze_top_at_step_3(step: int) -> None:
        seen.append(step)
        if step == 3:
            top.requires_grad_(True)

    finetune(model, sampler, objective, FinetuneConfig(steps=5, lr=1e-2, warmup_steps=1),
             before_step=unfreeze_top_at_step_3)
    assert seen == [1, 2, 3, 4, 5]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {f"decoder.blocks.1.{n}" for n, _ in top.named_parameters()}


def test_lr_scale_multiplies_each_parameters_rate(tiny_corpus):
    model, objective, sampler = _setup(tiny_corpus)
    result = finetune(model, sampler, objective, FinetuneConfig(steps=1, lr=1e-3, warmup_steps=0, log_every=1),
                      lr_scale=lambda name: 0.25 if name.startswith("decoder.blocks.0.") else 1.0)
    assert result.history[0]["lr"] == 1e-3

    optimizer = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu",
                                lr_scale=lambda name: 0.25 if name.startswith("decoder.blocks.0.") else 1.0)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert rate[id(p)] == (0.25e-3 if name.startswith("decoder.blocks.0.") else 1e-3), name
