"""The candidates of issue #18: lottery tickets, static int8, Tucker, attention-map/feature and progressive
distillation, LoRA and AdaLoRA, on constructed tensors (exact) and the tiny trained model."""

import copy

import pytest
import torch
import torch.nn.functional as F

from fm_pipeline.compression.distill import (
    _attention_log_probs,
    _features,
    attention_loss,
    count_parameters,
    distill,
    make_student,
    progressive_distill,
)
from fm_pipeline.compression.export import load_compressed, save_compressed
from fm_pipeline.compression.layers import LoRALinear, StaticInt8Linear, TuckerLinear
from fm_pipeline.compression.lora import RankAllocator, SVDDeltaLinear, add_lora, budget
from fm_pipeline.compression.lottery import lottery_schedule, lottery_ticket, prune_remaining
from fm_pipeline.compression.modules import QuantizedWeight, SparseLinear, count_weights
from fm_pipeline.compression.prune import prunable_linears, set_masks
from fm_pipeline.compression.static_int8 import calibrate, quantize_static_int8
from fm_pipeline.compression.tucker import tucker2, tucker_ffn
from fm_pipeline.compression.tuning import tune


def _same_outputs(model, loaded):
    idx = torch.randint(5, 100, (2, 7))
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], model(idx)[0])


# -- lottery ticket ---------------------------------------------------------------------------------------

def test_lottery_schedule_prunes_a_share_of_the_alive_weights_each_round():
    assert lottery_schedule(1000, 0.2, 3) == [800, 640, 512]
    assert lottery_schedule(10, 0.5, 3) == [5, 3, 1]  # round(2.5) = 2 pruned (half to even), then round(1.5) = 2


def test_masked_weights_stay_exactly_zero_while_training(trained):
    model = trained.model()
    modules = [m for _, m in prunable_linears(model)]
    masks = prune_remaining(modules, [torch.ones_like(m.weight) for m in modules], 0.3)
    set_masks(modules, masks)
    before = [m.weight_orig.detach().clone() for m in modules]
    tune(model, trained.data, steps=3, lr=1e-2)
    for module, mask, old in zip(modules, masks, before, strict=True):
        assert torch.equal(module.weight[mask == 0], torch.zeros(int((mask == 0).sum())))
        assert not torch.equal(module.weight_orig[mask == 1], old[mask == 1])  # the survivors did train


def test_lottery_rounds_follow_the_schedule_and_rewind_to_the_pretrained_weights(trained):
    teacher = trained.model()
    total = sum(m.weight.numel() for _, m in prunable_linears(teacher))
    pruned, result = lottery_ticket(teacher, trained.data, rounds=2, rate=0.5, steps=0)
    assert result.alive == lottery_schedule(total, 0.5, 2)
    assert result.sparsity[-1] == 1 - result.alive[-1] / total
    # no retraining: the survivors are the pretrained weights, the largest quarter by global magnitude
    weights = torch.cat([m.weight.detach().flatten() for _, m in prunable_linears(teacher)])
    threshold = weights.abs().sort(descending=True).values[result.alive[-1] - 1]
    kept = []
    for path, module in prunable_linears(teacher):
        sparse = pruned.get_submodule(path)
        assert isinstance(sparse, SparseLinear)
        assert torch.equal(sparse.dense_weight()[sparse.mask()], module.weight.detach()[sparse.mask()])
        kept.append(module.weight.detach()[sparse.mask()])
    assert sum(k.numel() for k in kept) == result.alive[-1]
    assert torch.cat(kept).abs().min() >= threshold


def test_lottery_with_retraining_and_late_rewinding_round_trips(trained, tmp_path):
    teacher = trained.model()
    pruned, result = lottery_ticket(teacher, trained.data, rounds=2, rate=0.2, steps=2, rewind_step=1)
    total = sum(m.weight.numel() for _, m in prunable_linears(teacher))
    assert result.alive == lottery_schedule(total, 0.2, 2) and len(result.losses) == 2
    assert sum(pruned.get_submodule(p).values.numel() for p, _ in prunable_linears(teacher)) <= result.alive[-1]
    loaded, _ = load_compressed(save_compressed(tmp_path / "lt", pruned, "lottery_ticket"))
    _same_outputs(pruned, loaded)


# -- static int8 ------------------------------------------------------------------------------------------

def test_static_int8_linear_is_exact_on_the_grid():
    scale_w = torch.tensor([0.5, 0.25, 2.0])
    ints = torch.tensor([[127, -3, 5, 0], [1, 2, -127, 4], [0, 127, 7, -9]], dtype=torch.float32)
    weight = ints * scale_w[:, None]
    layer = StaticInt8Linear(QuantizedWeight.quantize(weight), torch.tensor([1.0, -2.0, 0.5]))
    layer.input_scale.fill_(0.125)
    x = torch.tensor([[[8, -3, 127, 1]], [[0, 5, -6, -127]]], dtype=torch.float32) * 0.125
    assert torch.equal(layer(x), F.linear(x, weight, layer.bias))
    beyond = x * 4  # outside the calibrated range: clipped to ±127 steps
    assert torch.equal(layer(beyond), F.linear((beyond / 0.125).clamp(-127, 127) * 0.125, weight, layer.bias))


def test_calibration_observes_every_linear_input(trained):
    model = trained.model()
    batches = trained.data.batches(2)
    seen: dict[str, float] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, a, p=p: seen.__setitem__(p, max(seen.get(p, 0.0),
                                                                                  float(a[0].abs().max()))))
             for p, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for batch in batches:
            model(batch["idx"])
    for h in hooks:
        h.remove()
    assert calibrate(model, batches) == seen
    clipped = calibrate(model, batches, percentile=99.0)
    assert set(clipped) == set(seen) and all(clipped[p] <= seen[p] for p in seen)


def test_static_int8_model_stays_close_and_round_trips(trained, tmp_path):
    teacher = trained.model()
    model, ranges = quantize_static_int8(teacher, trained.data.batches(2))
    assert {p for p, m in model.named_modules() if isinstance(m, StaticInt8Linear)} == set(ranges)
    assert model.head.weight is model.embed.tokens.weight  # one int8 table for the tied pair
    idx = torch.randint(5, 100, (1, 16))
    with torch.no_grad():
        ref, out = teacher(idx)[0].log_softmax(-1), model(idx)[0].log_softmax(-1)
    assert F.kl_div(out, ref, log_target=True, reduction="batchmean") < 0.05
    loaded, info = load_compressed(save_compressed(tmp_path / "static", model, "static_int8"))
    assert {s["kind"] for s in info["modules"].values()} == {"QuantEmbedding", "StaticInt8Linear"}
    _same_outputs(model, loaded)


# -- Tucker -----------------------------------------------------------------------------------------------

def test_tucker2_recovers_a_constructed_low_rank_tensor_exactly():
    torch.manual_seed(0)
    u, v = torch.randn(20, 4, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    cores = torch.randn(5, 4, 3, dtype=torch.float64)
    weights = list(u @ cores @ v.T)
    fu, fv, fcores = tucker2(weights, 4, 3)
    assert torch.allclose(fu @ fcores @ fv.T, torch.stack(weights), atol=1e-10)
    assert torch.allclose(fu.T @ fu, torch.eye(4, dtype=torch.float64), atol=1e-12)
    low = tucker2(weights, 2, 2)
    assert not torch.allclose(low[0] @ low[2] @ low[1].T, torch.stack(weights), atol=1e-3)
    with pytest.raises(ValueError):
        tucker2(weights, 21, 3)


def test_tucker_ffn_shares_factors_across_layers_and_round_trips(trained, tmp_path):
    teacher = trained.model()
    model, done = tucker_ffn(teacher, rank_ratio=0.25)
    assert set(done) == {"mlp.up", "mlp.down"}
    ups = [b.mlp.up for b in model.decoder.blocks]
    assert all(isinstance(m, TuckerLinear) for m in ups) and ups[0].factors is ups[1].factors
    out_dim, in_dim = teacher.decoder.blocks[0].mlp.up.weight.shape
    r_in = round(in_dim / 4)
    r_out = min(round(out_dim / 4), 2 * r_in)  # capped at 2 layers × r_in
    assert done["mlp.up"] == {"rank_out": r_out, "rank_in": r_in, "weights_before": 2 * out_dim * in_dim,
                              "weights_after": out_dim * r_out + in_dim * r_in + 2 * r_out * r_in}
    saved = sum(d["weights_before"] - d["weights_after"] for d in done.values())
    assert count_weights(model) == count_weights(teacher) - saved
    loaded, info = load_compressed(save_compressed(tmp_path / "tucker", model, "tucker"))
    assert len(info["shared_factors"]) == 2
    assert loaded.decoder.blocks[0].mlp.down.factors is loaded.decoder.blocks[1].mlp.down.factors
    _same_outputs(model, loaded)


# -- attention-map, feature and progressive distillation -----------------------------------------------------

def test_attention_maps_are_the_ones_attention_uses(trained):
    model = trained.model()
    attn, block = model.decoder.blocks[0].attn, model.decoder.blocks[0]
    x = block.norm_attn(model.embed(torch.randint(5, 100, (2, 9))))
    with torch.no_grad():
        probs = _attention_log_probs(attn, x, model.decoder.rope).exp()
        heads = attn.qkv(x).view(2, 9, -1, attn.head_dim).transpose(1, 2)
        v = heads[:, attn.n_head + attn.n_kv_head:].repeat_interleave(attn.n_head // attn.n_kv_head, dim=1)
        mixed = (probs @ v).transpose(1, 2).reshape(2, 9, -1)
        assert torch.allclose(attn.out(mixed), attn(x, rope=model.decoder.rope), atol=1e-5)
    assert torch.equal(probs.triu(1), torch.zeros_like(probs))  # causal


def test_attention_loss_is_zero_for_equal_maps_and_groups_teacher_heads():
    torch.manual_seed(0)
    student = torch.randn(2, 2, 5, 5).log_softmax(-1)
    assert attention_loss([student], [student.exp()]) == pytest.approx(0.0, abs=1e-6)
    teacher = student.exp().repeat_interleave(2, dim=1)  # 4 heads, each pair equal to one student head
    assert attention_loss([student], [teacher]) == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(2, 4, 5, 5).softmax(-1)
    assert attention_loss([student], [other]) > 0


def test_feature_distillation_trains_the_student_projections_too(trained):
    teacher = trained.model()
    student = make_student(teacher, n_layer=1, param_ratio=0.5)
    qkv = student.decoder.blocks[0].attn.qkv.weight.detach().clone()
    student, result = distill(teacher, student, trained.data, steps=2, lr=1e-3, hidden_weight=1.0,
                              attention_weight=1.0)
    assert result.steps == 2 and not torch.equal(student.decoder.blocks[0].attn.qkv.weight, qkv)
    _, hidden, maps = _features(student, torch.randint(5, 100, (1, 6)), attention=True)
    assert len(hidden) == len(maps) == 1 and maps[0].shape == (1, student.config.n_head, 6, 6)


def test_progressive_distillation_goes_through_each_size(trained):
    teacher = trained.model()
    final, stages = progressive_distill(teacher, (0.8, 0.5), trained.data, steps=2, lr=1e-3)
    assert [s["param_ratio"] for s in stages] == sorted((s["param_ratio"] for s in stages), reverse=True)
    total = count_parameters(teacher.config)
    assert count_parameters(final.config) / total == stages[-1]["param_ratio"]
    assert stages[-1]["param_ratio"] == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError):
        progressive_distill(teacher, (0.5, 0.8), trained.data)


# -- LoRA / AdaLoRA ---------------------------------------------------------------------------------------

def test_lora_starts_at_the_base_and_merges_exactly():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    lora = LoRALinear.wrap(base, 2)
    x = torch.randn(3, 6)
    assert torch.equal(lora(x), base(x))
    with torch.no_grad():
        lora.b.normal_()
    lora.train()
    trained_path = lora(x)
    lora.eval()
    assert torch.allclose(lora(x), trained_path, atol=1e-6)
    assert torch.allclose(lora(x), base(x) + x @ (lora.b @ lora.a).T, atol=1e-6)


def test_lora_trains_only_the_delta_and_counts_base_plus_delta(trained, tmp_path):
    teacher = trained.model()
    base = copy.deepcopy(teacher)
    n_base = count_weights(base)
    model = add_lora(base, 4)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith((".a", ".b"))}
    model, _ = distill(teacher, model, trained.data, steps=2, lr=1e-2)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in frozen.items())
    delta = sum(4 * (m.base.in_features + m.base.out_features) for m in model.modules() if isinstance(m, LoRALinear))
    assert count_weights(model) == n_base + delta
    loaded, _ = load_compressed(save_compressed(tmp_path / "lora", model, "lora"))
    _same_outputs(model, loaded)


def test_adalora_budget_schedule():
    # warmup to step 10, then 10 + ceil(30 · (1 - (t - 10) / 70)³), the target from step 80 (the last fifth)
    assert [budget(t, 100, 40, 10) for t in (0, 10, 11, 45, 79, 80, 100)] == [40, 40, 39, 14, 11, 10, 10]


def test_adalora_gives_the_rank_to_the_layer_that_needs_a_delta():
    torch.manual_seed(0)
    a, b = SVDDeltaLinear(torch.nn.Linear(8, 8), 4), SVDDeltaLinear(torch.nn.Linear(8, 8), 4)
    needed = torch.randn(8, 2) @ torch.randn(2, 8)  # layer a's target is its base plus a rank-2 delta
    allocator = RankAllocator([a, b], target_total=2, total_steps=200, interval=5)
    params = [p for layer in (a, b) for p in (layer.p, layer.lam, layer.q)]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    for step in range(1, 201):
        allocator.before_step(step)
        x = torch.randn(16, 8)
        with torch.no_grad():
            target_a, target_b = a.base(x) + x @ needed.T, b.base(x)
        loss = F.mse_loss(a(x), target_a) + F.mse_loss(b(x), target_b) + allocator.regularizer()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    allocator.finish()
    assert (int(a.mask.sum()), int(b.mask.sum())) == (2, 0)
    lora = a.to_lora()
    assert isinstance(lora, LoRALinear) and lora.rank == 2 and b.to_lora() is b.base
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.allclose(lora.eval()(x), a(x), atol=1e-5)
