"""Every training knob as a plain dataclass field (nanoGPT style), with a JSON round trip and two presets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fm_pipeline.lake.config_dicts import known_fields, plain_dict
from fm_pipeline.modeling.config import ModelConfig

RESUME_MODES = ("auto", "never", "must")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model's shape; `vocab_size` is taken from the tokenizer at train time."""
    budget: dict[str, Any] | None = None
    """When set, keyword arguments of `modeling.sizing.config_from_budget`, which then replaces `model`."""

    token_dir: str = ""
    """A `tokenized_corpus` folder with `train.*` and `val.*` token files."""
    tokenizer_path: str = ""
    val_docs_dir: str | None = None
    """`balanced_shards/val` (Parquet with text, lang): when set, the final evaluation adds bits per byte
    per language from the raw text."""
    out_dir: str = "checkpoints"

    steps: int = 1000
    max_seconds: float | None = None
    """Stop early once training steps (evaluation excluded) have taken this long, then checkpoint and
    evaluate as at the last step: a time budget, e.g. "the best model in 3 minutes". The schedule still
    spans `steps`, and a resumed run counts the time trained before the interruption."""
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    packing: str = "random"
    """"random" windows anywhere, or "documents": windows that start at a document start."""

    eval_every: int = 250
    eval_batches: int = 20
    eval_docs_per_lang: int = 100
    """Documents per language read from `val_docs_dir` for the final evaluation."""
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10

    seed: int = 1337
    device: str = "auto"
    """"auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N"."""
    dtype: str = "bfloat16"
    """Autocast dtype on CUDA, "bfloat16" or "float32". CPUs always train in float32: bf16 autocast is about
    17x slower on them."""
    compile: bool = False
    code_version: str = ""
    """Names the code that trains (the Dagster asset's code version): part of the run identity, so after a
    change to the model or the loop a run never resumes a state the old code wrote."""
    resume: str = "auto"
    """"auto": continue from the newest step checkpoint of the same run (the same training-relevant fields, the
    same tokenizer and the same token files; see `training.resume`) when there is one, and clear a state left by
    another run; "never": clear any state and start at step 0; "must": continue, or fail when there is no state
    of the same run to continue."""

    def __post_init__(self) -> None:
        if self.resume not in RESUME_MODES:
            raise ValueError(f"resume must be one of {RESUME_MODES}, not {self.resume!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return plain_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Unknown keys are refused, so a misspelt knob fails loudly instead of silently keeping its default."""
        data = known_fields(cls, data)
        if isinstance(data.get("model"), dict):
            data["model"] = ModelConfig.from_dict(data["model"])
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)

    def to_json_text(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_json(self, path: Path) -> None:
        Path(path).write_text(self.to_json_text(), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> TrainConfig:
        """A preset (`cpu_small` or `gpu`) with any field overridden."""
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose from {sorted(PROFILES)}")
        return replace(PROFILES[name](), **overrides)


def cpu_small() -> TrainConfig:
    """A 4-layer, 128-wide GPT for the sample corpus on 2 CPU cores, in fp32: 300 steps of 16 x 128 tokens
    (about 6 passes over the sample's ~95k training tokens), a few minutes."""
    return TrainConfig(
        model=ModelConfig(n_layer=4, n_head=4, d_model=128, block_size=128),
        steps=300, batch_size=16, lr=1e-3, min_lr=1e-4, warmup_steps=30, weight_decay=0.1,
        eval_every=100, eval_batches=10, checkpoint_every=100, log_every=10, device="cpu",
    )


def gpu() -> TrainConfig:
    """GPT-2 small (12 layers, 12 heads, 768 wide, 1024 context) for one H100: bf16 autocast, compiled,
    16 x 1024 tokens per micro-batch, 8 micro-batches (131k tokens) per step."""
    return TrainConfig(
        model=ModelConfig(n_layer=12, n_head=12, d_model=768, block_size=1024),
        steps=5000, batch_size=16, grad_accum=8, lr=6e-4, min_lr=6e-5, warmup_steps=200, weight_decay=0.1,
        eval_every=500, eval_batches=50, checkpoint_every=1000, log_every=10, device="auto", compile=True,
    )


PROFILES = {"cpu_small": cpu_small, "gpu": gpu}
