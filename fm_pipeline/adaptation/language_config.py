"""Every language-adaptation knob as a plain dataclass field, with two presets: `full` (the seed's settings) and
`cpu_small` (well under a minute per language on two CPU cores with the `cpu_small` pretrained model)."""

from __future__ import annotations

from dataclasses import dataclass

from fm_pipeline.adaptation.config import LORA_TARGETS, AdaptSettings

LANGUAGE_STRATEGIES = ("continual", "adapter", "lora", "output_head", "alignment")
SHARED_WEIGHT_STRATEGIES = frozenset({"continual", "alignment"})
"""Strategies that change weights every language uses; the others add or replace a per-language part and leave
the base model as it was for every other language."""


@dataclass
class LanguageAdaptConfig(AdaptSettings):
    """What `adapt_language` does. Every strategy trains on the target language's share of `balanced_shards/train`
    with the model's own pretraining objective, `replay_share` of each batch drawn from the other languages.

    - `continual`: continued pretraining of every parameter (with replay against forgetting).
    - `adapter`: bottleneck adapters after each feed-forward layer, for this language only; base frozen.
    - `lora`: low-rank adapters on the attention and MLP projections, for this language only; base frozen.
    - `output_head`: the output projection untied from the embeddings and trained alone for this language.
    - `alignment`: continued pretraining plus `align_weight` × InfoNCE between the mean-pooled states of this
      language's sentences and their `pivot`-language translations.
    """

    strategy: str = "continual"
    steps: int = 50_000
    lr: float = 1e-5
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.1
    batch_size: int = 32
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    mlm_probability: float = 0.15
    replay_share: float = 0.25
    """Share of each batch drawn from the other languages' training text ("replay"), against forgetting."""

    adapter_reduction: int = 8
    """Bottleneck width = d_model // adapter_reduction."""
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS

    pivot: str = "en"
    """The language parallel sentences are aligned to (and whose translations give the pairs)."""
    align_weight: float = 1.0
    align_temperature: float = 0.05
    align_batch_pairs: int = 16

    eval_docs_per_lang: int | None = 200
    eval_batch_size: int = 32
    log_every: int = 10
    seed: int = 0
    device: str = "auto"


MODULAR_LR = {"adapter": 1e-3, "lora": 1e-4, "output_head": 1e-4}
"""Full-scale rates of the strategies that train a small new part from scratch (LoRA as in `config.full`)."""


def full(strategy: str) -> LanguageAdaptConfig:
    """The seed's continued-pretraining settings (lr 1e-5, 1,000 warmup steps, 50,000 steps); the per-language
    parts train alone, without replay, at the higher rates small new modules want."""
    if strategy in MODULAR_LR:
        return LanguageAdaptConfig(strategy=strategy, lr=MODULAR_LR[strategy], replay_share=0.0)
    return LanguageAdaptConfig(strategy=strategy)


CPU_SMALL_LR = {"continual": 2e-4, "adapter": 3e-3, "lora": 2e-3, "output_head": 1e-3, "alignment": 2e-4}
"""Peak rates of `cpu_small`: continual and alignment as `dapt` in `config.CPU_SMALL_LR` (the largest that keep
the other text's perplexity within a few percent), the per-language parts higher as they start from zero."""


def cpu_small(strategy: str) -> LanguageAdaptConfig:
    """For the `cpu_small` pretrained model and the sample corpus: 40 steps of 8 windows, a quarter replayed from
    the other languages where shared weights change, at most 20 val documents per language scored."""
    return LanguageAdaptConfig(
        strategy=strategy, steps=40, lr=CPU_SMALL_LR[strategy], warmup_steps=5, batch_size=8,
        replay_share=0.25 if strategy in SHARED_WEIGHT_STRATEGIES else 0.0, eval_docs_per_lang=20,
        align_batch_pairs=8, device="cpu",
    )


PROFILES = {"full": full, "cpu_small": cpu_small}
LanguageAdaptConfig.STRATEGIES, LanguageAdaptConfig.PRESETS = LANGUAGE_STRATEGIES, PROFILES
