"""Every adaptation knob as a plain dataclass field, with two presets: `full` (the seed's settings) and
`cpu_small` (minutes per domain on two CPU cores with the `cpu_small` pretrained model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, TypeVar

from fm_pipeline.lake.config_dicts import known_fields, plain_dict

STRATEGIES = ("dapt", "vocab_expansion", "lora", "gradual_unfreezing", "discriminative_lr")
LORA_TARGETS = ("qkv", "q", "kv", "out", "up", "down")
"""The attention (fused QKV, cross-attention Q and KV, output) and MLP projections of `modeling.blocks`."""


Settings = TypeVar("Settings", bound="AdaptSettings")


class AdaptSettings:
    """What the domain and the language adaptation configs share: the strategy and replay share checked, JSON
    dicts that refuse unknown keys (a misspelt knob fails loudly), and presets by name (`PRESETS`, each a
    function of the strategy)."""

    STRATEGIES: ClassVar[tuple[str, ...]]
    PRESETS: ClassVar[dict[str, Callable[[str], Any]]]
    strategy: str
    replay_share: float
    lora_targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.strategy not in self.STRATEGIES:
            raise ValueError(f"strategy must be one of {self.STRATEGIES}, not {self.strategy!r}")
        if not 0.0 <= self.replay_share < 1.0:
            raise ValueError(f"replay_share must be in [0, 1), not {self.replay_share}")
        self.lora_targets = tuple(self.lora_targets)

    def to_dict(self) -> dict[str, Any]:
        return plain_dict(self)

    @classmethod
    def from_dict(cls: type[Settings], data: dict[str, Any]) -> Settings:
        return cls(**known_fields(cls, data))

    @classmethod
    def profile(cls: type[Settings], name: str, strategy: str | None = None, **overrides: Any) -> Settings:
        """A preset for `strategy` (the config's default one when None) with any field overridden."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown profile {name!r}; choose from {sorted(cls.PRESETS)}")
        return replace(cls.PRESETS[name](strategy or cls.__dataclass_fields__["strategy"].default), **overrides)


@dataclass
class AdaptConfig(AdaptSettings):
    """What `adapt` does. The defaults are the seed's full-scale settings for domain-adaptive pretraining.

    Strategies (every one trains with `training.finetune` on the model's own pretraining objective):
    - `dapt`: continued pretraining of every parameter on the domain corpus.
    - `vocab_expansion`: new pieces for frequent domain terms, embedding and output rows grown (mean init),
      then continued pretraining as `dapt` with the new tokenizer.
    - `lora`: low-rank adapters on the attention and MLP projections, the base frozen.
    - `gradual_unfreezing`: ULMFiT's schedule, the top layer group first, one more every `unfreeze_every` steps.
    - `discriminative_lr`: ULMFiT's learning rates, each layer group down divided by `layer_lr_decay`.
    """

    strategy: str = "dapt"
    steps: int = 50_000
    lr: float = 1e-5
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.1
    batch_size: int = 32
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    mlm_probability: float = 0.15
    """Share of tokens masked for encoder_only models (80/10/10 as in BERT)."""
    replay_share: float = 0.0
    """Share of each batch drawn from the general training corpus ("replay"), against catastrophic forgetting;
    needs `general_train` in `adapt`."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    merge: bool = True
    """Save LoRA merged into the weights (a plain checkpoint); otherwise the base weights plus the adapter."""

    max_new_tokens: int = 500
    """At most this many domain terms become new pieces (the ones saving the most tokens)."""
    min_term_count: int = 3
    """A term must occur at least this many times in the domain training text."""
    min_base_pieces: int = 3
    """...and the base tokenizer must split it into at least this many pieces."""
    domain_vocab_size: int = 4000
    """Size of the SentencePiece model trained on the domain text to find terms (a soft limit)."""

    unfreeze_every: int | None = None
    """Steps between two unfreezings; None spreads them over the first half of training."""
    layer_lr_decay: float = 2.6

    eval_docs_per_lang: int | None = 200
    """Documents per language of the general validation set scored before and after (None: all)."""
    probe_windows_per_doc: int = 8
    eval_batch_size: int = 32
    """Windows per forward pass when scoring perplexity and pooling the probe's features (decoder_only)."""
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    """"auto" (CUDA when present), "cpu", "cuda" or "cuda:N"."""



def full(strategy: str) -> AdaptConfig:
    """The seed's settings: lr 1e-5, 1,000 warmup steps, 50,000 steps, MLM probability 0.15. LoRA trains far
    fewer parameters from zero and wants a larger rate: 1e-4 (the LoRA paper used 2e-4 on GPT-2)."""
    return AdaptConfig(strategy=strategy, lr=1e-4 if strategy == "lora" else 1e-5)


CPU_SMALL_LR = {"dapt": 2e-4, "vocab_expansion": 1.5e-4, "lora": 2e-3, "gradual_unfreezing": 3e-4,
                "discriminative_lr": 1e-3}
"""Peak learning rates of `cpu_small`, measured on the sample domains (`python -m benchmarks.adapt`): the largest
that keep general perplexity within a few percent. Discriminative rates start higher, as in ULMFiT: only the
top group trains at this rate, the embeddings at 1/2.6^4 of it."""


def cpu_small(strategy: str) -> AdaptConfig:
    """For the `cpu_small` pretrained model (4 layers, 128 wide, block 128) and the sample domain corpus (~12k
    training tokens per domain): 60 steps of 8 windows (about 5 passes), a quarter of each batch replayed from
    the general corpus; about a minute per domain on two CPU cores, evaluation included."""
    return AdaptConfig(
        strategy=strategy, steps=60, lr=CPU_SMALL_LR[strategy], warmup_steps=10, batch_size=8,
        replay_share=0.25, unfreeze_every=10, eval_docs_per_lang=50, device="cpu",
    )


PROFILES = {"full": full, "cpu_small": cpu_small}
AdaptConfig.STRATEGIES, AdaptConfig.PRESETS = STRATEGIES, PROFILES
