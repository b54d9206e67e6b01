import pytest
import torch

from fm_pipeline.compression.export import load_compressed, save_compressed
from fm_pipeline.compression.modules import SparseLinear
from fm_pipeline.compression.prune import (
    BUDGET_SCALES,
    cubic_sparsity,
    prunable_linears,
    prune_structured,
    prune_unstructured,
    remove_structures,
)


def _idx(model):
    return torch.randint(5, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))


def _zero_fraction(model) -> float:
    weights = [m.dense_weight() for _, m in model.named_modules() if isinstance(m, SparseLinear)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def test_unstructured_50_percent_leaves_half_zeros_and_runs(trained):
    model = trained.model()
    total = sum(m.weight.numel() for _, m in prunable_linears(model))
    pruned = prune_unstructured(model, 0.5)
    assert _zero_fraction(pruned) == round(0.5 * total) / total
    sparse = [m for m in pruned.modules() if isinstance(m, SparseLinear)]
    assert len(sparse) == 4 * model.config.n_layer  # qkv, out, up, down per block
    dense = torch.cat([m.weight.detach().abs().flatten() for _, m in prunable_linears(model)])
    threshold = dense.kthvalue(round(0.5 * total)).values
    for (_, original), kept in zip(prunable_linears(model), sparse, strict=True):
        assert torch.all(original.weight.detach().abs()[kept.dense_weight() != 0] >= threshold)
    with torch.no_grad():
        assert torch.isfinite(pruned(_idx(model))[0]).all()


def test_recovery_and_gradual_pruning_keep_the_sparsity(trained):
    model = trained.model()
    for gradual in (False, True):
        pruned = prune_unstructured(model, 0.5, trained.data, recovery_steps=6, gradual=gradual, prune_every=2)
        assert _zero_fraction(pruned) == pytest.approx(0.5, abs=1e-4)
    assert cubic_sparsity(0, 0.5, 10) == 0.0 and cubic_sparsity(10, 0.5, 10) == 0.5
    assert cubic_sparsity(5, 0.5, 10) > 0.25  # front-loaded


def test_pruned_model_round_trips_and_is_smaller_on_disk(trained, tmp_path):
    model = trained.model()
    pruned = prune_unstructured(model, 0.5)
    dense = save_compressed(tmp_path / "dense", model, "fp32")
    folder = save_compressed(tmp_path / "sparse", pruned, "prune")
    loaded, _ = load_compressed(folder)
    idx = _idx(model)
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], pruned(idx)[0])
    assert loaded.generate(idx[:1, :4], 5, temperature=0.0).shape == (1, 9)
    blocks = sum(m.weight.numel() for _, m in prunable_linears(model)) * 4
    saved = (dense / "model.safetensors").stat().st_size - (folder / "model.safetensors").stat().st_size
    assert saved > 0.4 * blocks  # 4 bytes per weight -> 0.5 + 1/32 bytes


def test_structured_removes_the_named_heads_and_channels(trained, tmp_path):
    model = trained.model()
    cfg = model.config
    hd = cfg.head_dim
    smaller = remove_structures(model, heads={0: [1, 3]}, channels={1: list(range(0, cfg.d_ff, 2))})
    assert smaller.config.layer_n_head == [cfg.n_head - 2, cfg.n_head]
    assert smaller.config.layer_d_ff == [cfg.d_ff, cfg.d_ff // 2]
    attn = smaller.decoder.blocks[0].attn
    assert attn.qkv.weight.shape == ((cfg.n_head - 2) * 3 * hd, cfg.d_model)
    assert attn.out.weight.shape == (cfg.d_model, (cfg.n_head - 2) * hd)
    old = model.decoder.blocks[0].attn
    # the kept heads 0 and 2 are the old ones: query rows, and output columns
    assert torch.equal(attn.qkv.weight[hd:2 * hd], old.qkv.weight[2 * hd:3 * hd])
    assert torch.equal(attn.out.weight[:, hd:2 * hd], old.out.weight[:, 2 * hd:3 * hd])
    assert torch.equal(smaller.decoder.blocks[1].mlp.down.weight, model.decoder.blocks[1].mlp.down.weight[:, 1::2])
    assert sum(p.numel() for p in smaller.parameters()) < sum(p.numel() for p in model.parameters())
    loaded, _ = load_compressed(save_compressed(tmp_path / "s", smaller, "prune_structured"))
    idx = _idx(model)
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], smaller(idx)[0])
    assert loaded.generate(idx[:1, :4], 5, temperature=0.0).shape == (1, 9)


def test_removing_a_head_equals_zeroing_its_output(trained):
    model = trained.model()
    hd = model.config.head_dim
    smaller = remove_structures(model, heads={1: [2]}, channels={0: [5, 7]})
    with torch.no_grad():
        model.decoder.blocks[1].attn.out.weight[:, 2 * hd:3 * hd] = 0
        model.decoder.blocks[0].mlp.down.weight[:, [5, 7]] = 0
        idx = _idx(model)
        assert torch.allclose(smaller(idx)[0], model(idx)[0], atol=1e-5)


def test_grouped_query_heads_go_by_whole_groups(trained):
    from fm_pipeline.modeling.config import ModelConfig
    from fm_pipeline.modeling.models import build_model

    model = build_model(ModelConfig(vocab_size=64, n_layer=1, n_head=4, n_kv_head=2, d_model=32, block_size=16))
    with pytest.raises(ValueError, match="together"):
        remove_structures(model, heads={0: [0]})
    smaller = remove_structures(model, heads={0: [0, 1]})
    assert smaller.config.layer_n_head == [2] and smaller.config.layer_n_kv_head == [1]
    smaller(torch.randint(0, 64, (1, 8)))


def test_prune_structured_picks_by_importance_and_recovers(trained):
    model = trained.model()
    smaller, removed = prune_structured(model, head_fraction=0.5, mlp_fraction=0.5, data=trained.data,
                                        importance_batches=2, recovery_steps=3)
    assert all(len(h) == model.config.n_head // 2 for h in removed["heads"].values())
    assert smaller.config.layer_d_ff == [model.config.d_ff // 2] * model.config.n_layer
    with torch.no_grad():
        assert torch.isfinite(smaller(_idx(model))[0]).all()


def _batch_loss(batches):
    def loss(model) -> float:
        with torch.no_grad():
            return sum(float(model(**b)[1]) for b in batches) / len(batches)
    return loss


def test_pruning_to_a_budget_takes_the_largest_share_that_fits(trained):
    """Each share is pruned on its own and measured; the budget must pick the first (largest) share within it,
    and with a budget no share meets (below 1.0: pruning never helps this much) the smallest is kept."""
    import math

    model = trained.model().eval()
    check = _batch_loss(trained.data.batches(4)[2:])  # not the importance batches (the first 2 of the same seed)
    base = check(model)
    ratios = []
    for scale in BUDGET_SCALES:
        smaller, _ = prune_structured(model, 0.5 * scale, 0.75 * scale, trained.data, importance_batches=2)
        ratios.append(math.exp(check(smaller) - base))
    assert ratios == sorted(ratios, reverse=True) and ratios[0] > ratios[-1]  # more pruning costs more here
    budget = (ratios[1] + ratios[2]) / 2  # the 0.75 share is over it, the 0.5 share within
    smaller, removed = prune_structured(model, 0.5, 0.75, trained.data, importance_batches=2,
                                        max_ppl_ratio=budget, check_loss=check)
    assert removed["scale"] == BUDGET_SCALES[2]
    assert removed["check_ppl_ratio"] == round(ratios[2], 5)
    assert smaller.config.layer_d_ff == [model.config.d_ff - round(0.75 * 0.5 * model.config.d_ff)] * 2
    _, removed = prune_structured(model, 0.5, 0.75, trained.data, importance_batches=2, max_ppl_ratio=0.5,
                                  check_loss=check)
    assert removed["scale"] == BUDGET_SCALES[-1] and removed["check_ppl_ratio"] == round(ratios[-1], 5)
    with pytest.raises(ValueError, match="both"):
        prune_structured(model, 0.5, 0.75, trained.data, max_ppl_ratio=1.02)
