import copy

import pytest
import torch

from fm_pipeline.compression.distill import (
    distill,
    distillation_loss,
    hidden_loss,
    layer_map,
    make_student,
    student_config,
)
from fm_pipeline.compression.export import load_compressed, save_compressed
from fm_pipeline.compression.lowrank import factorize, low_rank, rank_for_energy
from fm_pipeline.compression.modules import LowRankLinear
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model


def test_distillation_loss_is_zero_when_student_equals_teacher():
    logits = torch.randn(2, 5, 50)
    targets = torch.randint(5, 50, (2, 5))
    assert distillation_loss(logits, logits.clone(), targets, temperature=2.0, alpha=1.0) == 0
    mixed = distillation_loss(logits, logits.clone(), targets, temperature=2.0, alpha=0.3)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert mixed == pytest.approx(0.7 * ce.item(), rel=1e-5)  # only the hard-label part remains
    assert distillation_loss(torch.randn(2, 5, 50), logits, targets, alpha=1.0) > 0
    hidden = [torch.randn(2, 5, 8) for _ in range(2)]
    eye = torch.nn.ModuleList(torch.nn.Linear(8, 8, bias=False) for _ in range(2))
    for p in eye:
        torch.nn.init.eye_(p.weight)
    assert hidden_loss(hidden, [h.clone() for h in hidden], eye) == 0


def test_student_has_about_the_asked_share_of_parameters():
    teacher = ModelConfig(vocab_size=8192, n_layer=4, n_head=4, d_model=128, block_size=128)
    count = lambda c: sum(p.numel() for p in build_model(c).parameters())  # noqa: E731
    student = student_config(teacher, param_ratio=0.5)
    assert student.n_layer == 4 and student.d_model < 128 and student.head_dim % 2 == 0
    assert count(student) / count(teacher) == pytest.approx(0.5, abs=0.05)
    assert student_config(teacher, n_layer=2, param_ratio=None).n_layer == 2
    assert layer_map(2, 4) == [1, 3]


def test_distillation_trains_the_student_and_it_round_trips(trained, tmp_path):
    teacher = trained.model()
    student = make_student(teacher, param_ratio=0.5)
    before = copy.deepcopy(student.state_dict())
    teacher_state = copy.deepcopy(teacher.state_dict())
    student, result = distill(teacher, student, trained.data, steps=4, lr=1e-3, hidden_weight=1.0)
    assert result.steps == 4
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert all(torch.equal(teacher_state[k], v) for k, v in teacher.state_dict().items())  # teacher frozen
    assert all(p.requires_grad for p in teacher.parameters())  # while it teaches only: copies of it may train
    loaded, _ = load_compressed(save_compressed(tmp_path / "student", student, "distill"))
    idx = torch.randint(5, 100, (1, 6))
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], student(idx)[0])
    assert loaded.generate(idx, 4, temperature=0.0).shape == (1, 10)


def test_same_width_student_starts_from_teacher_layers(trained):
    teacher = trained.model()
    student = make_student(teacher, n_layer=1, param_ratio=None)
    assert torch.equal(student.decoder.blocks[0].mlp.up.weight, teacher.decoder.blocks[-1].mlp.up.weight)
    assert torch.equal(student.embed.tokens.weight, teacher.embed.tokens.weight)


def test_svd_at_full_rank_reproduces_the_layer():
    torch.manual_seed(0)
    linear = torch.nn.Linear(24, 40, bias=True)
    low = factorize(linear, rank=24)
    x = torch.randn(3, 24)
    assert torch.allclose(low(x), linear(x), atol=1e-5)
    assert rank_for_energy(torch.linalg.svdvals(linear.weight.detach()), 1.0) == 24


def test_rank_follows_energy():
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])  # energies 9, 4, 1 of 14
    assert rank_for_energy(s, 9 / 14) == 1
    assert rank_for_energy(s, 0.9) == 2
    assert rank_for_energy(s, 1.0) == 3


def test_low_rank_model_factorizes_only_where_it_saves_and_round_trips(trained, tmp_path):
    teacher = trained.model()
    model, ranks = low_rank(teacher, energy=0.5)
    assert ranks
    for path, rank in ranks.items():
        module = model.get_submodule(path)
        assert isinstance(module, LowRankLinear) and module.rank == rank
        assert rank * (module.a.in_features + module.b.out_features) < module.a.in_features * module.b.out_features
    loaded, info = load_compressed(save_compressed(tmp_path / "lr", model, "lowrank"))
    assert set(info["modules"]) == set(ranks)
    idx = torch.randint(5, 100, (1, 6))
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], model(idx)[0])
