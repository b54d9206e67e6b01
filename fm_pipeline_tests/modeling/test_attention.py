"""Masks and grouped-query attention: what each position may see, checked on whole models."""

from __future__ import annotations

import math

import pytest
import torch

from fm_pipeline.modeling.attention import Attention, padding_mask
from fm_pipeline.modeling.models import DecoderOnly, EncoderDecoder, EncoderOnly
from fm_pipeline_tests.modeling.tiny import tiny_config

TIGHT = {"rtol": 0.0, "atol": 1e-6}


@pytest.mark.parametrize("positions", ["rope", "sinusoidal", "learned"])
def test_a_causal_model_does_not_see_the_future(positions: str) -> None:
    torch.manual_seed(0)
    model = DecoderOnly(tiny_config(positions=positions, n_kv_head=2)).eval()
    idx = torch.randint(0, 48, (3, 24))
    logits, _ = model(idx)
    for t in (0, 5, 22):
        changed = idx.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 48
        new_logits, _ = model(changed)
        assert torch.allclose(new_logits[:, : t + 1], logits[:, : t + 1], **TIGHT)
        assert not torch.allclose(new_logits[:, t + 1 :], logits[:, t + 1 :], **TIGHT)


def test_the_decoder_of_an_encoder_decoder_does_not_see_the_future() -> None:
    torch.manual_seed(0)
    model = EncoderDecoder(tiny_config("encoder_decoder")).eval()
    src, tgt = torch.randint(0, 48, (2, 20)), torch.randint(0, 48, (2, 12))
    logits, _ = model(src, tgt)
    changed = tgt.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 48
    new_logits, _ = model(src, changed)
    assert torch.allclose(new_logits[:, :6], logits[:, :6], **TIGHT)
    assert not torch.allclose(new_logits[:, 6:], logits[:, 6:], **TIGHT)


def test_an_encoder_sees_both_sides() -> None:
    torch.manual_seed(0)
    model = EncoderOnly(tiny_config("encoder_only")).eval()
    idx = torch.randint(0, 48, (2, 16))
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 48
    assert not torch.allclose(model(changed)[0][:, 0], model(idx)[0][:, 0], **TIGHT)


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids, their attention mask (row 0 has 5 padded positions, row 1 none) and a copy of the ids whose
    padded positions hold other tokens."""
    idx = torch.randint(5, 48, (2, 16))
    attention_mask = torch.ones(2, 16, dtype=torch.long)
    attention_mask[0, 11:] = 0
    idx[0, 11:] = 0
    changed = idx.clone()
    changed[0, 11:] = torch.randint(5, 48, (5,))
    return idx, attention_mask, changed


def test_padding_is_invisible_to_an_encoder() -> None:
    torch.manual_seed(0)
    model = EncoderOnly(tiny_config("encoder_only")).eval()
    idx, attention_mask, changed = _padded_batch()
    logits, _ = model(idx, attention_mask=attention_mask)
    new_logits, _ = model(changed, attention_mask=attention_mask)
    real = attention_mask.bool()
    assert torch.allclose(new_logits[real], logits[real], **TIGHT)
    # Without the mask the same change reaches the real tokens.
    assert not torch.allclose(model(changed)[0][0, :11], model(idx)[0][0, :11], **TIGHT)


def test_cross_attention_honours_the_source_padding_mask() -> None:
    torch.manual_seed(0)
    model = EncoderDecoder(tiny_config("encoder_decoder")).eval()
    src, attention_mask, changed = _padded_batch()
    tgt = torch.randint(5, 48, (2, 10))
    logits, _ = model(src, tgt, attention_mask=attention_mask)
    new_logits, _ = model(changed, tgt, attention_mask=attention_mask)
    assert torch.allclose(new_logits, logits, **TIGHT)
    assert not torch.allclose(model(changed, tgt)[0][0], model(src, tgt)[0][0], **TIGHT)


def _reference_attention(module: Attention, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Textbook multi-head attention, one head at a time: softmax(q·kᵀ/√d + mask)·v, then the output projection."""
    d, hd = module.out.in_features, module.head_dim
    q, k, v = module.qkv(x).split(d, dim=-1)
    T = x.shape[1]
    heads = []
    for h in range(module.n_head):
        cols = slice(h * hd, (h + 1) * hd)
        scores = q[..., cols] @ k[..., cols].transpose(-1, -2) / math.sqrt(hd)
        if module.causal:
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        if mask is not None:
            scores = scores.masked_fill(~mask[:, 0], float("-inf"))
        heads.append(scores.softmax(dim=-1) @ v[..., cols])
    return module.out(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("causal", [True, False])
def test_attention_with_as_many_kv_heads_as_heads_is_plain_multi_head_attention(causal: bool) -> None:
    torch.manual_seed(0)
    module = Attention(tiny_config(n_kv_head=4), causal=causal).eval()
    x = torch.randn(2, 12, 32)
    mask = None if causal else padding_mask(torch.tensor([[1] * 12, [1] * 9 + [0] * 3]))
    assert torch.allclose(module(x, mask=mask), _reference_attention(module, x, mask), atol=1e-5)


def test_grouped_query_attention_equals_mha_with_shared_kv_heads() -> None:
    """GQA with 2 KV heads for 4 query heads computes what MHA computes when heads 0-1 and 2-3 share K and V."""
    torch.manual_seed(0)
    gqa = Attention(tiny_config(n_kv_head=2), causal=True).eval()
    mha = Attention(tiny_config(n_kv_head=4), causal=True).eval()
    hd = gqa.head_dim
    wq, wk, wv = gqa.qkv.weight.split((32, 2 * hd, 2 * hd))

    def repeat(w: torch.Tensor) -> torch.Tensor:
        return w.view(2, hd, 32).repeat_interleave(2, dim=0).reshape(4 * hd, 32)

    with torch.no_grad():
        mha.qkv.weight.copy_(torch.cat((wq, repeat(wk), repeat(wv))))
        mha.out.weight.copy_(gqa.out.weight)
    x = torch.randn(2, 12, 32)
    assert torch.allclose(gqa(x), mha(x), atol=1e-6)
    assert gqa.qkv.weight.numel() < mha.qkv.weight.numel()


@pytest.mark.parametrize("n_kv_head", [1, 2, 4])
def test_grouped_query_models_keep_their_shapes(n_kv_head: int) -> None:
    for model, args in (
        (DecoderOnly(tiny_config(n_kv_head=n_kv_head)), (torch.randint(0, 48, (2, 10)),)),
        (EncoderDecoder(tiny_config("encoder_decoder", n_kv_head=n_kv_head)),
         (torch.randint(0, 48, (2, 10)), torch.randint(0, 48, (2, 7)))),
    ):
        logits, loss = model(*args)
        assert logits.shape == (2, args[-1].shape[1], 48)
        assert loss is None
