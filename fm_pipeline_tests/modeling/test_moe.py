from __future__ import annotations

import json

import pytest
import torch

from fm_pipeline.modeling.blocks import MLP
from fm_pipeline.modeling.checkpoint import load_checkpoint, save_checkpoint
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.moe import SwitchMLP, expert_capacity, load_balancing_loss, route_top1
from fm_pipeline.modeling.sizing import count_parameters, flops_per_token
from fm_pipeline_tests.modeling.tiny import tiny_config


def routed_layer(d_model: int = 8, experts: int = 2, capacity_factor: float = 1.0) -> SwitchMLP:
    """A layer whose router sends a token to expert i when its channel i is the largest of channels 0..E-1."""
    config = tiny_config(d_model=d_model, n_head=2, moe_experts=experts, moe_capacity_factor=capacity_factor)
    layer = build_model(config).decoder.blocks[0].mlp
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[:, :experts] = 10 * torch.eye(experts)
    return layer


def tokens_for(experts: list[int], d_model: int = 8) -> torch.Tensor:
    """(1, N, d) inputs, token n preferring `experts[n]`, with distinct content elsewhere."""
    x = torch.linspace(-1, 1, len(experts) * d_model).reshape(len(experts), d_model) * 0.1
    for n, e in enumerate(experts):
        x[n, e] = 1.0
    return x[None]


def test_capacity_is_ceil_of_factor_times_an_even_share():
    assert expert_capacity(8, 2, 1.0) == 4
    assert expert_capacity(10, 4, 1.25) == 4  # ceil(3.125)
    assert expert_capacity(10, 4, 1.0) == 3  # ceil(2.5)
    assert expert_capacity(3, 8, 1.0) == 1
    assert expert_capacity(4, 2, 5.0) == 4  # never more slots than tokens


def test_routing_fills_each_expert_to_capacity_in_token_order_and_drops_the_rest():
    logits = torch.zeros(8, 2)
    logits[:6, 0] = 1.0
    logits[6:, 1] = 1.0
    _, expert, _, slot = route_top1(logits, capacity=3)
    assert expert.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    # expert 0: tokens 0-2 take slots 0-2, tokens 3-5 overflow to the spare slot 6; expert 1: slots 3, 4
    assert slot.tolist() == [0, 1, 2, 6, 6, 6, 3, 4]


def test_overflow_tokens_pass_through_unchanged_and_kept_ones_get_their_gated_expert():
    layer = routed_layer(capacity_factor=1.0)  # 6 tokens, 2 experts: 3 slots each
    layer.train()
    x = tokens_for([0, 0, 0, 0, 1, 0])
    out = layer(x)[0]
    assert torch.equal(out[3], torch.zeros(8)) and torch.equal(out[5], torch.zeros(8))
    probs = torch.softmax(x[0] @ layer.router.weight.T, dim=-1)
    for n, e in [(0, 0), (1, 0), (2, 0), (4, 1)]:
        expected = layer.experts[e](x[0, n : n + 1])[0] * probs[n, e]
        assert torch.allclose(out[n], expected, atol=1e-6)
    assert float(layer.dropped) == pytest.approx(2 / 6)
    assert layer.load.tolist() == pytest.approx([5 / 6, 1 / 6])
    # In a block, a dropped token's residual stream comes out exactly as it went in.
    config = tiny_config(d_model=8, n_head=2, moe_experts=2, moe_capacity_factor=0.1)  # 12 tokens: 1 slot each
    block = build_model(config).decoder.blocks[0].train()
    h = torch.randn(1, 12, 8, generator=torch.Generator().manual_seed(0))
    after_attention = h + block.attn(block.norm_attn(h), mask=None, rope=None)
    out = block(h, None, None, None, None)
    kept = (block.mlp(block.norm_mlp(after_attention)).abs().sum(dim=-1) > 0)[0]
    assert int(kept.sum()) == 2 and float(block.mlp.dropped) == pytest.approx(10 / 12)
    assert torch.equal(out[0, ~kept], after_attention[0, ~kept])
    assert not torch.equal(out[0, kept], after_attention[0, kept])


def test_in_eval_mode_nothing_is_dropped_so_a_row_does_not_depend_on_its_batch():
    layer = routed_layer(capacity_factor=1.0).eval()
    x = tokens_for([0, 0, 0, 0, 1, 0])
    out = layer(x)[0]
    assert float(layer.dropped) == 0.0 and bool((out.abs().sum(dim=-1) > 0).all())
    model = build_model(tiny_config(moe_experts=4)).eval()
    rows = torch.randint(5, 48, (3, 16), generator=torch.Generator().manual_seed(0))
    together = model(rows)[0]
    alone = torch.cat([model(rows[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_the_load_balancing_loss_is_one_for_a_uniform_router_and_grows_with_collapse():
    experts = 4
    uniform = torch.full((64, experts), 1.0 / experts)
    for expert in (torch.zeros(64, dtype=torch.long), torch.arange(64) % experts):
        assert float(load_balancing_loss(uniform, expert)) == pytest.approx(1.0, abs=1e-7)
    losses = []
    for bias in (0.0, 1.0, 3.0, 10.0):  # ever more mass on expert 0
        logits = torch.randn(64, experts, generator=torch.Generator().manual_seed(0)) * 0.01
        logits[:, 0] += bias
        probs, expert, _, _ = route_top1(logits, capacity=64)
        losses.append(float(load_balancing_loss(probs, expert)))
    assert losses == sorted(losses) and losses[0] == pytest.approx(1.0, abs=0.05)
    assert losses[-1] == pytest.approx(experts, rel=1e-3)
    layer = routed_layer(experts=2).train()
    with torch.no_grad():
        layer.router.weight.zero_()
    layer(torch.randn(1, 10, 8))
    assert float(layer.aux_loss.detach()) == pytest.approx(1.0, abs=1e-7)


def test_gradients_reach_every_expert_that_receives_tokens_and_the_router():
    layer = routed_layer(experts=2, capacity_factor=2.0).train()
    x = tokens_for([0, 1, 0, 1, 0]).requires_grad_()
    layer(x).square().sum().backward()
    for expert in layer.experts:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in expert.parameters())
    assert layer.router.weight.grad.abs().sum() > 0
    layer.zero_grad()
    layer(tokens_for([0, 0, 0])).square().sum().backward()  # expert 1 gets nothing: no gradient
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in layer.experts[1].parameters())
    assert all(p.grad.abs().sum() > 0 for p in layer.experts[0].parameters())


def test_the_training_loss_adds_the_weighted_balancing_loss_and_evaluation_does_not():
    config = tiny_config(moe_experts=4, moe_aux_loss_weight=0.5, moe_z_loss_weight=0.25)
    model = build_model(config).train()
    idx = torch.randint(5, 48, (2, 16), generator=torch.Generator().manual_seed(1))
    logits, loss = model(idx, idx)
    lm = torch.nn.functional.cross_entropy(logits.flatten(0, 1), idx.flatten())
    extra = sum(0.5 * m.aux_loss + 0.25 * m.z_loss for m in model.moe_layers())
    assert torch.allclose(loss, lm + extra)
    metrics = model.moe_metrics()
    assert set(metrics) == {"moe_aux_loss", "moe_z_loss", "moe_dropped", "moe_max_load"}
    model.eval()
    logits, loss = model(idx, idx)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits.flatten(0, 1), idx.flatten()))
    assert build_model(tiny_config()).moe_metrics() == {}


def test_a_moe_model_trains_and_round_trips_through_a_checkpoint_bit_identically(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(moe_experts=4)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.randint(5, 48, (8, 25), generator=torch.Generator().manual_seed(2))
    losses = []
    for _ in range(40):
        _, loss = model(data[:, :-1], data[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 1.0
    save_checkpoint(tmp_path / "ckpt", model, config, state=None)
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["moe_experts"] == 4 and saved["moe_capacity_factor"] == 1.25
    loaded, loaded_config = load_checkpoint(tmp_path / "ckpt")
    assert loaded_config == config
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    model.eval()
    loaded.eval()
    assert torch.equal(model(data[:, :-1])[0], loaded(data[:, :-1])[0])
    prompt = data[:2, :5]
    assert torch.equal(model.generate(prompt, 8, temperature=0), loaded.generate(prompt, 8, temperature=0))


def test_a_dense_config_saves_no_expert_fields():
    assert not any(k.startswith("moe_") for k in tiny_config().to_dict())
    with pytest.raises(ValueError):
        tiny_config(moe_experts=-1)


@pytest.mark.parametrize("architecture", ["decoder_only", "encoder_only", "encoder_decoder"])
def test_parameter_counts_total_and_active(architecture):
    dense, sparse = tiny_config(architecture), tiny_config(architecture, moe_experts=4)
    assert count_parameters(sparse) == build_model(sparse).num_parameters(non_embedding=False)
    mlp = sum(p.numel() for p in MLP(dense).parameters())
    layers = build_model(sparse).moe_layers()
    routers = sum(m.router.weight.numel() for m in layers)
    assert count_parameters(sparse, active=True) == count_parameters(dense) + routers
    assert count_parameters(sparse) == count_parameters(dense) + routers + 3 * mlp * len(layers)
    per_token = 3 if architecture == "encoder_decoder" else 6
    assert flops_per_token(sparse) == flops_per_token(dense) + per_token * routers


def test_torch_compile_traces_the_sparse_layer_in_one_graph():
    torch.manual_seed(0)
    model = build_model(tiny_config(moe_experts=4)).train()
    idx = torch.randint(5, 48, (2, 16), generator=torch.Generator().manual_seed(3))
    _, eager = model(idx, idx)
    eager_aux = model.moe_metrics()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # fullgraph: a graph break raises
    _, traced = compiled(idx, idx)
    assert torch.allclose(eager, traced)
    assert model.moe_metrics() == pytest.approx(eager_aux)
    traced.backward()
    assert all(p.grad is not None for m in model.moe_layers() for p in m.router.parameters())
