from __future__ import annotations

import math

import pytest
import torch

from fm_pipeline.modeling.config import ARCHITECTURES
from fm_pipeline.modeling.models import DecoderOnly, EncoderDecoder, EncoderOnly, build_model
from fm_pipeline.modeling.objectives import make_batch, window_length
from fm_pipeline.modeling.sizing import count_parameters
from fm_pipeline_tests.modeling.tiny import tiny_config

VOCAB = 48
SENTINELS = list(range(47, 39, -1))


def test_shapes_of_the_three_architectures() -> None:
    idx, tgt = torch.randint(0, VOCAB, (3, 20)), torch.randint(0, VOCAB, (3, 9))
    logits, loss = DecoderOnly(tiny_config())(idx, idx)
    assert logits.shape == (3, 20, VOCAB) and loss.shape == ()
    encoder = EncoderOnly(tiny_config("encoder_only"))
    logits, loss = encoder(idx, idx)
    assert logits.shape == (3, 20, VOCAB) and loss.shape == ()
    assert encoder.encode(idx).shape == (3, 20, 32)
    logits, loss = EncoderDecoder(tiny_config("encoder_decoder"))(idx, tgt, tgt)
    assert logits.shape == (3, 9, VOCAB) and loss.shape == ()


def test_build_model_picks_the_class_and_refuses_overlong_input() -> None:
    assert type(build_model(tiny_config("encoder_decoder"))) is EncoderDecoder
    with pytest.raises(ValueError, match="block_size"):
        build_model(tiny_config())(torch.zeros(1, 25, dtype=torch.long))


def test_padding_and_ignored_targets_carry_no_loss() -> None:
    torch.manual_seed(0)
    model = DecoderOnly(tiny_config())
    idx = torch.randint(5, VOCAB, (2, 12))
    targets = torch.randint(5, VOCAB, (2, 12))
    logits, loss = model(idx, targets)
    partial = targets.clone()
    partial[0, 6:] = 0  # pad_id
    partial[1, :3] = -100
    keep = partial > 0
    expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(model(idx, partial)[1], expected)
    assert not torch.allclose(loss, expected)


def test_init_follows_gpt2() -> None:
    torch.manual_seed(0)
    config = tiny_config(n_layer=8, d_model=256, n_head=4, vocab_size=2000)
    model = DecoderOnly(config)
    block = model.decoder.blocks[0]
    assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert block.mlp.up.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual = 0.02 / math.sqrt(2 * config.n_layer)
    assert block.attn.out.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert block.mlp.down.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert model.head.weight is model.embed.tokens.weight


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("tied", [True, False])
def test_num_parameters_matches_the_analytic_count(architecture: str, tied: bool) -> None:
    config = tiny_config(architecture, positions="learned", tie_embeddings=tied, bias=True, norm="layernorm")
    model = build_model(config)
    assert model.num_parameters(non_embedding=False) == count_parameters(config)
    assert model.num_parameters(non_embedding=True) == count_parameters(config, non_embedding=True)
    positions = config.block_size * config.d_model
    untied_table = 0 if tied else config.vocab_size * config.d_model
    assert model.num_parameters(False) - model.num_parameters(True) == positions + untied_table


def _corpus() -> torch.Tensor:
    """A token stream with structure to learn: a fixed 'sentence' of 11 tokens repeated with a random word
    substituted here and there."""
    generator = torch.Generator().manual_seed(0)
    sentence = torch.tensor([5, 9, 12, 7, 30, 18, 22, 6, 14, 27, 3])
    stream = sentence.repeat(400)
    noise = torch.rand(len(stream), generator=generator) < 0.05
    return torch.where(noise, torch.randint(5, 39, stream.shape, generator=generator), stream)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_loss_goes_down_on_a_tiny_corpus(architecture: str) -> None:
    torch.manual_seed(0)
    config = tiny_config(architecture, mlp="swiglu")
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    stream, generator = _corpus(), torch.Generator().manual_seed(1)
    length = window_length(architecture, config.block_size)
    losses = []
    for _ in range(60):
        starts = torch.randint(0, len(stream) - length, (16,), generator=generator)
        windows = torch.stack([stream[s : s + length] for s in starts.tolist()])
        batch = make_batch(architecture, windows, vocab_size=VOCAB, special_ids=(0, 1, 2, 3),
                           sentinel_ids=SENTINELS, generator=generator)
        _, loss = model(**batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > math.log(VOCAB) - 1.0
    assert last < 0.6 * first, losses


def test_generate_appends_tokens_and_stops_at_eos() -> None:
    torch.manual_seed(0)
    model = DecoderOnly(tiny_config()).eval()
    prompt = torch.randint(5, VOCAB, (2, 4))
    out = model.generate(prompt, max_new_tokens=30, top_k=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 34) and torch.equal(out[:, :4], prompt)

    greedy = model.generate(prompt, max_new_tokens=6, temperature=0)
    assert torch.equal(greedy, model.generate(prompt, max_new_tokens=6, temperature=0))
    eos = int(greedy[0, 4])  # the first token row 0 produces greedily
    stopped = model.generate(prompt, max_new_tokens=6, temperature=0, eos_id=eos)
    assert stopped[0, 4] == eos and (stopped[0, 4:] == eos).all()
    assert stopped.shape[1] <= 10


def test_top_k_one_is_greedy() -> None:
    torch.manual_seed(0)
    model = DecoderOnly(tiny_config()).eval()
    prompt = torch.randint(5, VOCAB, (3, 4))
    sampled = model.generate(prompt, 8, top_k=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sampled, model.generate(prompt, 8, temperature=0))
