import torch

from fm_pipeline.compression.export import load_compressed, save_compressed
from fm_pipeline.compression.modules import DynamicInt8Linear, QuantEmbedding, QuantizedWeight, WeightOnlyLinear
from fm_pipeline.compression.qat import fake_quant_weight, prepare_qat, qat_int8
from fm_pipeline.compression.quantize import quantize_dynamic_int8, quantize_weight_only


def _idx(model, seed=0):
    return torch.randint(5, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(seed))


def test_int8_and_int4_round_trip_within_half_a_step():
    w = torch.randn(16, 64)
    q8 = QuantizedWeight.quantize(w, 8)
    assert q8.q.dtype == torch.int8 and q8.q.abs().max() == 127
    assert torch.all((q8.dequantize() - w).abs() <= q8.scale[:, None] / 2 + 1e-6)
    q4 = QuantizedWeight.quantize(w, 4, group_size=32)
    assert q4.q.shape == (16, 32) and q4.q.dtype == torch.uint8  # two 4-bit values per byte
    assert q4.ints().max() <= 15
    step = q4.scale.float().repeat_interleave(32, dim=1)
    assert torch.all((q4.dequantize() - w).abs() <= step / 2 + 1e-3)
    rows = torch.tensor([3, 0, 3])
    assert torch.equal(q4.dequantize(rows), q4.dequantize()[rows])


def test_dynamic_int8_quantizes_every_linear_and_shares_the_tied_table(trained):
    model = trained.model()
    quantized = quantize_dynamic_int8(model)
    assert isinstance(quantized.embed.tokens, QuantEmbedding)
    assert isinstance(quantized.head, DynamicInt8Linear)
    assert quantized.head.weight is quantized.embed.tokens.weight
    assert not any(isinstance(m, torch.nn.Linear) for m in quantized.modules())
    idx = _idx(model)
    with torch.no_grad():
        ref, out = model(idx)[0], quantized(idx)[0]
    assert torch.allclose(out, ref, atol=0.1 * ref.abs().max())
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.8


def test_quantized_models_save_load_identically_and_generate(trained, tmp_path):
    model = trained.model()
    idx = _idx(model)
    for name, quantized in [("dynamic", quantize_dynamic_int8(model)), ("w8", quantize_weight_only(model, 8)),
                            ("w4", quantize_weight_only(model, 4, 32))]:
        folder = save_compressed(tmp_path / name, quantized, name)
        loaded, info = load_compressed(folder)
        assert info["method"] == name
        with torch.no_grad():
            assert torch.equal(loaded(idx)[0], quantized(idx)[0]), name
        out = loaded.generate(idx[:1, :4], 6, temperature=0.0)
        assert out.shape == (1, 10)
    assert isinstance(loaded.decoder.blocks[0].mlp.up, WeightOnlyLinear)


def test_quantized_files_are_smaller(trained, tmp_path):
    model = trained.model()
    fp32 = save_compressed(tmp_path / "fp32", model, "fp32") / "model.safetensors"
    int8 = save_compressed(tmp_path / "int8", quantize_dynamic_int8(model), "int8") / "model.safetensors"
    int4 = save_compressed(tmp_path / "int4", quantize_weight_only(model, 4, 32), "int4") / "model.safetensors"
    assert int8.stat().st_size < 0.3 * fp32.stat().st_size  # the tied table stored once, as int8
    assert int4.stat().st_size < 0.2 * fp32.stat().st_size


def test_torchao_backend_runs_and_round_trips(trained, tmp_path):
    model = trained.model()
    quantized = quantize_dynamic_int8(model, backend="torchao")
    idx = _idx(model)
    loaded, _ = load_compressed(save_compressed(tmp_path / "tao", quantized, "tao"))
    with torch.no_grad():
        ref, out = model(idx)[0], loaded(idx)[0]
    assert torch.allclose(out, ref, atol=0.1 * ref.abs().max())


def test_fake_quantization_matches_the_real_grid_and_passes_gradients():
    w = torch.randn(8, 32, requires_grad=True)
    fq = fake_quant_weight(w)
    assert torch.allclose(fq, QuantizedWeight.quantize(w, 8).dequantize(), atol=1e-6)
    fq.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight-through


def test_qat_trains_through_fake_quantization_then_converts(trained):
    model = trained.model()
    prepared = prepare_qat(model)
    assert prepared.head.linear.weight is prepared.embed.tokens.embedding.weight  # still tied
    quantized, result = qat_int8(model, trained.data, steps=3, lr=1e-4)
    assert result.steps == 3
    assert isinstance(quantized.head, DynamicInt8Linear)
    with torch.no_grad():
        assert torch.isfinite(quantized(_idx(model))[0]).all()
