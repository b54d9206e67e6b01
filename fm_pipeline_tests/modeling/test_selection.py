from __future__ import annotations

import pytest

from fm_pipeline.modeling.config import ARCHITECTURES
from fm_pipeline.modeling.selection import TASK_ARCHITECTURES, Requirements, decide_architecture, select_architecture


@pytest.mark.parametrize(
    ("task", "architecture"),
    [
        ("text_generation", "decoder_only"),
        ("chat", "decoder_only"),
        ("code generation", "decoder_only"),
        ("classification", "encoder_only"),
        ("Named-Entity Recognition", "encoder_only"),
        ("NER", "encoder_only"),
        ("embedding", "encoder_only"),
        ("sentiment_analysis", "encoder_only"),
        ("translation", "encoder_decoder"),
        ("summarization", "encoder_decoder"),
        ("seq2seq", "encoder_decoder"),
    ],
)
def test_tasks_map_to_the_seed_architectures(task: str, architecture: str) -> None:
    assert select_architecture(task) == architecture


def test_every_mapping_names_a_buildable_architecture() -> None:
    assert set(TASK_ARCHITECTURES.values()) == set(ARCHITECTURES)


def test_unknown_tasks_are_refused() -> None:
    with pytest.raises(ValueError, match="known"):
        select_architecture("image_segmentation")


def test_the_task_alone_decides_as_the_table_does() -> None:
    for task, architecture in TASK_ARCHITECTURES.items():
        decision = decide_architecture(Requirements(task=task))
        assert decision.architecture == architecture
        assert decision.reasons[0] == f"task: +3 {architecture}: {task!r} is a task for {architecture}"


def test_shape_can_overrule_the_task() -> None:
    # a "generation" task whose 2048-token input needs both sides and yields 128 tokens is a seq2seq one
    decision = decide_architecture(Requirements(task="generation", seq_len=2048, output_tokens=128,
                                                bidirectional=True))
    assert decision.votes == {"decoder_only": 3, "encoder_only": 0, "encoder_decoder": 4}
    assert decision.architecture == "encoder_decoder"
    assert [r.split(":")[0] for r in decision.reasons] == ["task", "shape", "shape"]
    # nothing generated: a single bidirectional pass
    labels = decide_architecture(Requirements(task="classification", output_tokens=0))
    assert labels.architecture == "encoder_only" and labels.votes["encoder_only"] == 5


def test_compute_breaks_ties_and_is_reported() -> None:
    chat = Requirements(task="chat", seq_len=512, output_tokens=512, compute_budget_flops=1e17)
    decision = decide_architecture(chat)
    assert decision.architecture == "decoder_only" and decision.votes["decoder_only"] == 6
    assert any(r.startswith("compute: +1 decoder_only: training budget 1e+17") for r in decision.reasons)
    tight = decide_architecture(Requirements(task="summarization", seq_len=4096, output_tokens=256,
                                             latency_critical=True, kv_cache_bytes_per_token=2**16,
                                             memory_budget_bytes=2**27))
    assert tight.votes == {"decoder_only": 0, "encoder_only": 0, "encoder_decoder": 3 + 2 + 2 + 1 + 1}
    assert "needs 272.0 MiB > 128.0 MiB" in tight.reasons[-1]
    fits = decide_architecture(Requirements(task="chat", seq_len=100, output_tokens=100,
                                            kv_cache_bytes_per_token=1024, memory_budget_bytes=2**30))
    assert fits.reasons[-1].startswith("compute: KV cache for 200 tokens (0.2 MiB) fits")
    with pytest.raises(ValueError):
        decide_architecture(Requirements(task="astrology"))
