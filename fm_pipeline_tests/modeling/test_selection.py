from __future__ import annotations

import pytest

from fm_pipeline.modeling.config import ARCHITECTURES
from fm_pipeline.modeling.selection import TASK_ARCHITECTURES, select_architecture


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
