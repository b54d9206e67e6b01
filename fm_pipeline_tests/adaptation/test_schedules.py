import pytest
import sentencepiece as spm
import torch

from fm_pipeline.adaptation.schedules import GradualUnfreezing, discriminative_lr, layer_groups
from fm_pipeline.modeling.objectives import Objective
from fm_pipeline.tokenization.packed import PackedTokens
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.finetune import FinetuneConfig, finetune
from fm_pipeline.training.optim import build_optimizer
from fm_pipeline_tests.adaptation.conftest import tiny_model

BLOCK = ("norm_attn.weight", "attn.qkv.weight", "attn.out.weight", "norm_mlp.weight", "mlp.up.weight",
         "mlp.down.weight")


def _block(prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in BLOCK]


def test_layer_groups_top_to_bottom(tiny_corpus):
    groups = layer_groups(tiny_model(tiny_corpus, n_layer=3))
    assert groups == [_block("decoder.blocks.2") + ["decoder.norm.weight"], _block("decoder.blocks.1"),
                      _block("decoder.blocks.0"), ["embed.tokens.weight"]]  # the tied head is the embedding
    untied = layer_groups(tiny_model(tiny_corpus, tie_embeddings=False))
    assert sorted(untied[0]) == sorted(_block("decoder.blocks.1") + ["decoder.norm.weight", "head.weight"])
    assert untied[-1] == ["embed.tokens.weight"]


def test_encoder_decoder_groups_put_the_decoder_on_top(tiny_corpus):
    groups = layer_groups(tiny_model(tiny_corpus, "encoder_decoder"))
    firsts = [g[0].rsplit(".", 2)[0] for g in groups]
    assert firsts == ["decoder.blocks.1", "decoder.blocks.0", "encoder.blocks.1", "encoder.blocks.0", "embed"]
    assert "decoder.norm.weight" in groups[0] and "encoder.norm.weight" in groups[2]
    model = tiny_model(tiny_corpus, "encoder_decoder")
    assert sorted(n for g in groups for n in g) == sorted(n for n, _ in model.named_parameters())


def test_gradual_unfreezing_freezes_exactly_what_it_says(tiny_corpus):
    model = tiny_model(tiny_corpus, n_layer=3)
    groups = layer_groups(model)
    schedule = GradualUnfreezing(model, every=3)
    expected_groups = {1: 1, 3: 1, 4: 2, 6: 2, 7: 3, 10: 4, 100: 4}
    for step, k in expected_groups.items():
        schedule(step)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable == {n for g in groups[:k] for n in g}, step


def test_gradual_unfreezing_in_training_changes_only_the_unfrozen_groups(tiny_corpus):
    model = tiny_model(tiny_corpus, n_layer=3)
    groups = layer_groups(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    sampler = WindowSampler(PackedTokens.open(tiny_corpus.tokens, "train"), 33, 8, seed=0)
    finetune(model, sampler, Objective.for_model(model.config, sp),
             FinetuneConfig(steps=4, lr=1e-2, warmup_steps=1), before_step=GradualUnfreezing(model, every=2))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(groups[0] + groups[1])


@pytest.mark.parametrize("decay", [2.6, 2.0])
def test_discriminative_learning_rates_divide_by_decay_per_group(tiny_corpus, decay):
    model = tiny_model(tiny_corpus, n_layer=3)
    scale = discriminative_lr(model, decay)
    for depth, names in enumerate(layer_groups(model)):
        for name in names:
            assert scale(name) == decay ** -depth
    assert scale("decoder.blocks.2.mlp.up.weight") == 1.0
    assert scale("decoder.blocks.1.mlp.up.weight") == 1 / decay
    optimizer = build_optimizer(model, 1e-3, 0.0, (0.9, 0.95), "cpu", lr_scale=scale)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for depth, names in enumerate(layer_groups(model)):
        params = dict(model.named_parameters())
        assert {rate[id(params[n])] for n in names} == {1e-3 * decay ** -depth}
