import json
import subprocess
import sys

import pytest
import torch

from fm_pipeline.compression.compress import compress
from fm_pipeline.compression.config import TECHNIQUES, CompressConfig
from fm_pipeline.compression.export import load_compressed
from fm_pipeline.compression.generate import generate, main
from fm_pipeline.compression.modules import count_weights
from fm_pipeline.compression.prune import BUDGET_SCALES, prune_structured
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline_tests.training.tiny_corpus import paragraphs


@pytest.fixture(scope="module")
def result(trained, tmp_path_factory):
    config = CompressConfig.profile(  # every technique but torchao's (slow here; test_quantize covers it)
        "cpu_small", techniques=tuple(t for t in TECHNIQUES if t != "dynamic_int8_torchao"), recovery_steps=2,
        qat_steps=2, distill_steps=2, importance_batches=1, batch_size=4, lottery_steps=2, lottery_rounds=2,
        lora_steps=4, lora_rank=2, adalora_initial_rank=3, calibration_batches=1,
        timing_rounds=1, prompt_tokens=8, new_tokens=2, eval_max_docs=3, max_ppl_ratio=1.02,
    )
    domain = [("en", p) for p in paragraphs("en")[:3]]
    general = [("de", p) for p in paragraphs("de")[:3]]
    out = tmp_path_factory.mktemp("compressed") / "biomedical"
    return compress(trained.checkpoint, trained.corpus.tokenizer, trained.corpus.tokens, domain, general, config,
                    out, log=lambda _: None, calibration_docs=[("en", p) for p in paragraphs("en")[3:6]])


def test_every_technique_is_measured_and_the_choice_is_published(result):
    assert [c.name for c in result.candidates] == ["fp32", *(t for t in TECHNIQUES if t != "dynamic_int8_torchao")]
    for c in result.candidates:
        for key in ("size_bytes", "params", "domain_ppl", "domain_bpb", "general_ppl", "general_bpb",
                    "latency_ms_per_token", "throughput_tokens_per_s", "size_ratio", "domain_ppl_ratio", "speedup"):
            assert c.metrics[key] == c.metrics[key] and c.metrics[key] > 0, (c.name, key)
        assert (c.folder / "model.safetensors").is_file()
    base = result.candidate("fp32").metrics
    assert base["size_ratio"] == base["domain_ppl_ratio"] == base["speedup"] == 1.0
    chosen = result.candidate(result.chosen).metrics
    assert chosen["domain_ppl_ratio"] <= 1.02
    within = [c.metrics for c in result.candidates if c.metrics["domain_ppl_ratio"] <= 1.02]
    fast = [m for m in within if m["speedup"] >= 1.3]
    if fast:  # the smallest of those fast enough, else the fastest
        assert result.rule == "size_at_speed" and chosen["size_bytes"] == min(m["size_bytes"] for m in fast)
    else:
        assert result.rule == "fastest"
        assert chosen["latency_ms_per_token"] == min(m["latency_ms_per_token"] for m in within)
    assert result.reason.startswith("the smallest" if fast else "none with")
    assert result.contract == {"compression/method": result.chosen, "compression/size_ratio": chosen["size_ratio"],
                               "compression/ppl_ratio": chosen["domain_ppl_ratio"],
                               "compression/speedup": chosen["speedup"]}
    assert 0 < result.distillation["param_ratio"] < 0.75
    out = result.out_dir
    for name in ("model.safetensors", "config.json", "compression.json", "tokenizer.model", "comparison.md",
                 "size_vs_ppl.png", "metrics.json"):
        assert (out / name).is_file(), name
    assert (out / "size_vs_ppl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.table_markdown.count("\n") == len(result.candidates) + 2
    assert json.loads((out / "compression.json").read_text())["method"] == result.chosen
    summary = json.loads((out / "metrics.json").read_text())
    assert (summary["chosen"], summary["rule"], summary["reason"]) == (result.chosen, result.rule, result.reason)
    assert not list(out.parent.glob(f".{out.name}.*"))  # no staging, old or temporary folder left beside it


def test_pruned_int8_is_the_pruned_model_quantized(result):
    pruned, both = result.candidate("prune_structured"), result.candidate("prune_int8")
    for key in ("layer_n_head", "layer_d_ff", "recovery_steps", "removed_heads", "mlp_fraction", "check_ppl_ratio",
                "reconstruction"):
        assert both.details[key] == pruned.details[key]
    # scored and refitted on the calibration documents, block by block, each projection closer to its parent's
    assert pruned.details["calibration_text"] == "the domain's training documents"
    assert pruned.details["reconstruct_batches"] == 8 and len(pruned.details["reconstruction"]) == 2
    for block in pruned.details["reconstruction"]:
        assert block["mlp_error_after"] < block["mlp_error_before"]
    # pruned to cpu_small's budget on the calibration documents: the share it settled on is recorded
    scale = pruned.details["mlp_fraction"] / 0.625
    assert scale in BUDGET_SCALES
    assert pruned.details["check_ppl_ratio"] <= 1.015 or scale == BUDGET_SCALES[-1]
    assert both.details["backend"] == "torch_ao"
    assert both.metrics["params"] == pruned.metrics["params"] < result.candidate("fp32").metrics["params"]
    assert both.metrics["size_bytes"] < 0.4 * pruned.metrics["size_bytes"]
    model, info = load_compressed(both.folder)
    assert {spec["kind"] for spec in info["modules"].values()} == {"QuantEmbedding", "DynamicInt8Linear"}
    assert model.config.layer_d_ff == pruned.details["layer_d_ff"]


def test_published_and_candidate_models_load_and_generate(result, trained):
    idx = torch.randint(5, 100, (1, 5))
    published, _ = load_compressed(result.out_dir)
    for c in result.candidates:
        model, info = load_compressed(c.folder)
        assert info["method"] == c.name
        assert model.generate(idx, 3, temperature=0.0).shape == (1, 8)
    text = generate(result.out_dir, result.out_dir / "tokenizer.model", "The", max_new_tokens=5, seed=1)
    assert isinstance(text, str)
    assert published.config.vocab_size == trained.sp.get_piece_size()


def test_new_candidates_record_how_they_were_made(result, trained):
    lottery = result.candidate("lottery_ticket").details
    assert lottery["rewind_to"] == "pretrained weights" and len(lottery["alive"]) == 2
    assert lottery["sparsity"][-1] == pytest.approx(1 - 0.8**2, abs=1e-3)
    assert result.candidate("lottery_ticket").metrics["params"] < result.candidate("fp32").metrics["params"]
    features = result.candidate("distill_features").details
    assert (features["attention_weight"], features["hidden_weight"]) == (1.0, 1.0)
    assert [s["d_model"] for s in result.candidate("distill_progressive").details["stages"]][-1] == \
        result.candidate("distill").details["d_model"]
    adalora = result.candidate("adalora").details
    assert sum(adalora["ranks"].values()) == adalora["budget"] == 2 * len(adalora["ranks"])
    lora = result.candidate("lora")  # its base is the configured cut (not pruning's budgeted one), plus the delta
    teacher, _ = load_checkpoint(trained.checkpoint)
    small = CompressConfig.profile("cpu_small")
    base, _ = prune_structured(teacher.eval(), small.head_fraction, small.mlp_fraction, trained.data,
                               importance_batches=1)
    assert lora.details["layer_d_ff"] == base.config.layer_d_ff
    assert lora.metrics["params"] > count_weights(base)
    assert result.candidate("static_int8").details["kernel"] == "torch._int_mm"
    assert "build s" in result.table_markdown


def test_generate_cli_prints_a_continuation_without_the_training_code(result, capsys):
    assert main([str(result.candidate("dynamic_int8").folder), "--tokenizer", str(result.out_dir / "tokenizer.model"),
                 "--prompt", "The", "--max-new-tokens", "4", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.endswith("\n")  # printed (a tiny model's continuation may be blank)
    code = ("import sys; from fm_pipeline.compression.generate import main; "
            f"main([{str(result.out_dir)!r}, '--prompt', 'The', '--max-new-tokens', '4']); "
            "assert not [m for m in sys.modules if m.startswith('fm_pipeline.training')], 'training code imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_config_round_trips_and_refuses_unknown_techniques():
    config = CompressConfig.profile("cpu_small", sparsity=0.3)
    assert config.techniques == ("dynamic_int8", "weight_int4", "prune_int8") and config.sparsity == 0.3
    assert (config.objective, config.min_speedup) == ("size_at_speed", 1.3)
    assert CompressConfig.profile("thorough").techniques == TECHNIQUES
    assert CompressConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert CompressConfig(progressive_ratios=[0.8, 0.6]).progressive_ratios == (0.8, 0.6)
    with pytest.raises(ValueError, match="unknown techniques"):
        CompressConfig(techniques=("zip",))
