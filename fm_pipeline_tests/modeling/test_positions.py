from __future__ import annotations

import math

import torch

from fm_pipeline.modeling.positions import RotaryEmbedding, sinusoidal_table


def test_sinusoidal_values_follow_the_formula() -> None:
    dim = 16
    table = sinusoidal_table(50, dim)
    for pos in (0, 1, 7, 49):
        for i in range(dim // 2):
            angle = pos / 10000 ** (2 * i / dim)
            assert math.isclose(table[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-5)
            assert math.isclose(table[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-5)


def _at(rope: RotaryEmbedding, vector: torch.Tensor, position: int) -> torch.Tensor:
    """`vector` rotated as the token at `position` would be."""
    sequence = vector.expand(position + 1, -1)
    return rope(sequence)[position]


def test_rope_scores_depend_only_on_the_offset() -> None:
    torch.manual_seed(0)
    rope = RotaryEmbedding(head_dim=32, length=64)
    q, k = torch.randn(32), torch.randn(32)
    for offset in (0, 1, 5, 17):
        scores = [_at(rope, q, m) @ _at(rope, k, m + offset) for m in (0, 3, 20, 40)]
        for score in scores[1:]:
            assert torch.allclose(score, scores[0], atol=1e-4)
    # ...and do depend on it, or the test above would pass for an encoding that does nothing.
    assert not torch.allclose(_at(rope, q, 0) @ _at(rope, k, 1), _at(rope, q, 0) @ _at(rope, k, 9), atol=1e-3)


def test_rope_preserves_norms_and_leaves_position_zero_alone() -> None:
    torch.manual_seed(0)
    rope = RotaryEmbedding(head_dim=16, length=32)
    x = torch.randn(2, 3, 32, 16)
    rotated = rope(x)
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(rotated[..., 0, :], x[..., 0, :])
