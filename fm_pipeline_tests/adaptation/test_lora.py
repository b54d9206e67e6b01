import pytest
import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.adaptation.lora import (
    LoraSpec,
    adapter_state,
    add_lora,
    load_adapted,
    merge_lora,
    parameter_counts,
    save_adapter,
    target_linears,
    unload_lora,
)
from fm_pipeline.modeling.checkpoint import load_checkpoint, save_checkpoint
from fm_pipeline.modeling.objectives import Objective
from fm_pipeline.tokenization.packed import PackedTokens
from fm_pipeline.training.data import WindowSampler
from fm_pipeline.training.finetune import FinetuneConfig, finetune
from fm_pipeline_tests.adaptation.conftest import tiny_model

SPEC = LoraSpec(r=4, alpha=8, dropout=0.0)


def _train(model: nn.Module, tiny_corpus, steps: int = 10) -> None:
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    sampler = WindowSampler(PackedTokens.open(tiny_corpus.tokens, "train"), 33, 8, seed=0)
    finetune(model, sampler, Objective.for_model(model.config, sp),
             FinetuneConfig(steps=steps, lr=1e-2, warmup_steps=1, log_every=steps))


@pytest.mark.parametrize("architecture, targets", [
    ("decoder_only", {"qkv", "out", "up", "down"}),
    ("encoder_decoder", {"qkv", "q", "kv", "out", "up", "down"}),
])
def test_trainable_share_is_exactly_the_adapters(tiny_corpus, architecture, targets):
    model = tiny_model(tiny_corpus, architecture)
    base_total = sum(p.numel() for p in model.parameters())
    linears = target_linears(model, SPEC.targets)
    assert {name.rsplit(".", 1)[-1] for name in linears} == targets
    expected = sum(SPEC.r * (m.in_features + m.out_features) for m in linears.values())
    add_lora(model, SPEC)
    trainable, total = parameter_counts(model)
    assert trainable == expected
    assert total == base_total + expected
    assert all(".lora_" in name for name, p in model.named_parameters() if p.requires_grad)


def test_training_leaves_base_weights_bit_identical_and_merging_keeps_the_logits(tiny_corpus, tmp_path):
    model = tiny_model(tiny_corpus)
    base = {name: p.detach().clone() for name, p in model.state_dict().items()}
    tuner = add_lora(model, SPEC)
    lora_before = {k: v.clone() for k, v in adapter_state(model).items()}
    _train(model, tiny_corpus)

    for name, p in model.state_dict().items():
        if ".lora_" not in name:
            assert torch.equal(p, base[name.replace(".base_layer", "")]), name
    assert all(not torch.equal(v, lora_before[k]) for k, v in adapter_state(model).items() if "lora_B" in k)

    idx = torch.randint(5, model.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        adapted_logits, _ = model(idx)
        base_model = tiny_model(tiny_corpus)
        base_model.load_state_dict(base)
        base_logits, _ = base_model(idx)
    assert not torch.allclose(adapted_logits, base_logits, atol=1e-3)  # the adapter changed the function

    merged = merge_lora(tuner)
    assert not any(".lora_" in name or "base_layer" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        merged_logits, _ = merged(idx)
    torch.testing.assert_close(merged_logits, adapted_logits, rtol=1e-4, atol=1e-4)

    save_checkpoint(tmp_path / "merged", merged, merged.config, None)
    loaded, _ = load_checkpoint(tmp_path / "merged")
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], merged_logits)


def test_unmerged_checkpoint_is_the_base_plus_an_adapter(tiny_corpus, tmp_path):
    model = tiny_model(tiny_corpus)
    base = {name: p.detach().clone() for name, p in model.state_dict().items()}
    tuner = add_lora(model, SPEC)
    _train(model, tiny_corpus, steps=3)
    idx = torch.randint(5, model.config.vocab_size, (1, 16), generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        adapted_logits, _ = model(idx)
    state = adapter_state(model)
    plain = unload_lora(tuner)
    save_checkpoint(tmp_path / "ckpt", plain, plain.config, None)
    save_adapter(tmp_path / "ckpt", state, SPEC)

    base_only, _ = load_checkpoint(tmp_path / "ckpt")
    assert all(torch.equal(p, base[name]) for name, p in base_only.state_dict().items())
    for merge in (True, False):
        restored = load_adapted(tmp_path / "ckpt", merge=merge).eval()
        with torch.no_grad():
            torch.testing.assert_close(restored(idx)[0], adapted_logits, rtol=1e-4, atol=1e-4)
