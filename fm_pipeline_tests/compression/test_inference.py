import pytest
import torch

from fm_pipeline.compression.inference import compile_for_inference
from fm_pipeline.compression.modules import DynamicInt8Linear, QuantEmbedding, WeightOnlyLinear
from fm_pipeline.compression.quantize import quantize_dynamic_int8, quantize_weight_only, resolve_backend


def test_auto_backend_follows_the_execution_mode():
    assert resolve_backend("auto", "cpu") == "torch_ao"
    assert resolve_backend("auto", "cpu", compiled=True) == "torchao"
    assert resolve_backend("auto", "cuda") == "torchao"
    assert resolve_backend("torch_ao", "cpu", compiled=True) == "torch_ao"


@pytest.mark.slow
@pytest.mark.parametrize("technique", ["fp32", "int8_torchao", "weight_int4"])
def test_compiled_generation_step_matches_eager(trained, technique):
    """Inductor compiles the step (several context lengths, batch 1 and 3, as generation feeds it), with every
    cached layer swapped for its plain form; the logits are the eager model's, within float rounding (int8:
    within one activation quantization step)."""
    model = trained.model()
    if technique == "int8_torchao":
        model = quantize_dynamic_int8(model, "torchao")
    elif technique == "weight_int4":
        model = quantize_weight_only(model, 4)
    compiled = compile_for_inference(model)
    assert "next_logits" not in vars(model)  # the original is left as it was
    assert not any(isinstance(m, (DynamicInt8Linear, WeightOnlyLinear)) for m in compiled.modules())
    assert all(m.weight.bits == 8 for m in compiled.modules() if isinstance(m, QuantEmbedding))  # a plain lookup
    generator = torch.Generator().manual_seed(0)
    tolerance = 0.05 if technique == "int8_torchao" else 1e-4
    with torch.no_grad():
        for batch, length in ((1, 8), (1, 9), (1, 12), (3, 10)):
            idx = torch.randint(5, model.config.vocab_size, (batch, length), generator=generator)
            eager, fast = model.next_logits(idx), compiled.next_logits(idx)
            assert fast.shape == (batch, model.config.vocab_size)
            assert torch.allclose(fast, eager, atol=tolerance * eager.abs().max())
        out = compiled.generate(idx, 4, temperature=0.0)
    assert out.shape == (3, 14) and torch.equal(out[:, :10], idx)
