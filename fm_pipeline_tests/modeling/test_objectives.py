from __future__ import annotations

import pytest
import torch

from fm_pipeline.modeling.objectives import make_batch, mask_tokens, span_corrupt, span_counts, window_length

SPECIALS = (0, 1, 2, 3)
MASK_ID = 4
SENTINELS = list(range(999, 899, -1))  # T5 style: the top of a 1000-token vocabulary, counting down


def test_mask_tokens_follows_bert_proportions() -> None:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 900, (256, 512), generator=generator)
    ids[:, ::16] = 2  # a special token every 16 positions
    inputs, labels = mask_tokens(ids, MASK_ID, 1000, SPECIALS, generator)

    chosen = labels != -100
    special = ids == 2
    assert not (chosen & special).any()
    assert torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    assert chosen[~special].float().mean().item() == pytest.approx(0.15, abs=0.003)

    n = chosen.sum().item()
    masked = (inputs == MASK_ID) & chosen
    kept = (inputs == ids) & chosen
    replaced = chosen & ~masked & ~kept
    assert masked.sum().item() / n == pytest.approx(0.8, abs=0.01)
    # A random replacement can draw the original token (p ≈ 1/895), which then counts as kept.
    assert replaced.sum().item() / n == pytest.approx(0.1, abs=0.01)
    assert kept.sum().item() / n == pytest.approx(0.1, abs=0.01)
    assert not torch.isin(inputs[replaced], torch.tensor([*SPECIALS, MASK_ID])).any()


def test_mask_tokens_is_reproducible_with_a_seeded_generator() -> None:
    ids = torch.randint(5, 100, (4, 64))
    first = mask_tokens(ids, MASK_ID, 100, SPECIALS, torch.Generator().manual_seed(7))
    second = mask_tokens(ids, MASK_ID, 100, SPECIALS, torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def _reconstruct(inputs: list[int], targets: list[int], sentinels: set[int]) -> list[int]:
    """Put each span of the targets back in place of its sentinel in the inputs."""
    spans: dict[int, list[int]] = {}
    current = None
    for token in targets:
        if token in sentinels:
            current = spans.setdefault(token, [])
        else:
            current.append(token)
    return [t for token in inputs for t in (spans[token] if token in sentinels else [token])]


@pytest.mark.parametrize("length", [20, 64, 256])
def test_span_corruption_round_trips(length: int) -> None:
    generator = torch.Generator().manual_seed(length)
    ids = torch.randint(5, 899, (8, length), generator=generator)
    inputs, targets = span_corrupt(ids, SENTINELS, generator=generator)
    noise, spans = span_counts(length)
    assert inputs.shape == (8, length - noise + spans)
    assert targets.shape == (8, noise + spans)
    for row, inp, tgt in zip(ids.tolist(), inputs.tolist(), targets.tolist(), strict=True):
        assert _reconstruct(inp, tgt, set(SENTINELS)) == row
        assert [t for t in tgt if t in SENTINELS] == SENTINELS[:spans]


def test_span_corruption_draws_different_spans_per_row() -> None:
    ids = torch.arange(5, 261).repeat(16, 1)
    inputs, _ = span_corrupt(ids, SENTINELS, generator=torch.Generator().manual_seed(0))
    assert len({tuple(row) for row in inputs.tolist()}) == 16


def test_span_counts_follow_density_and_mean_span() -> None:
    assert span_counts(512) == (77, 26)
    assert span_counts(100, noise_density=0.3, mean_span=5) == (30, 6)


def test_span_corruption_needs_a_sentinel_per_span() -> None:
    with pytest.raises(ValueError, match="sentinel"):
        span_corrupt(torch.randint(5, 100, (2, 256)), [999, 998])


def test_make_batch_gives_each_architecture_its_forward_arguments() -> None:
    generator = torch.Generator().manual_seed(0)
    common = dict(vocab_size=1000, special_ids=SPECIALS, sentinel_ids=SENTINELS, generator=generator)

    windows = torch.randint(5, 899, (3, window_length("decoder_only", 32)))
    batch = make_batch("decoder_only", windows, **common)
    assert set(batch) == {"idx", "targets"}
    assert torch.equal(batch["idx"][:, 1:], batch["targets"][:, :-1])
    assert batch["idx"].shape == (3, 32)

    windows = torch.randint(5, 899, (3, window_length("encoder_only", 32)))
    batch = make_batch("encoder_only", windows, **common)
    assert set(batch) == {"idx", "targets"}
    assert batch["idx"].shape == batch["targets"].shape == (3, 32)

    batch = make_batch("encoder_decoder", windows, **common)
    assert set(batch) == {"idx", "decoder_idx", "targets"}
    assert torch.equal(batch["decoder_idx"][:, 0], torch.zeros(3, dtype=torch.long))
    assert torch.equal(batch["decoder_idx"][:, 1:], batch["targets"][:, :-1])

    with pytest.raises(ValueError, match="architecture"):
        make_batch("rnn", windows, **common)
