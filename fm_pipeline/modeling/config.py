"""The one description of a model's shape, saved as `config.json` beside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

ARCHITECTURES = ("decoder_only", "encoder_only", "encoder_decoder")
NORMS = ("rmsnorm", "layernorm")
POSITIONS = ("rope", "sinusoidal", "learned")
MLPS = ("gelu", "swiglu")


def swiglu_hidden(d_model: int, multiple_of: int = 64) -> int:
    """8/3·d rounded up to a multiple of 64: a SwiGLU MLP has three matrices, so this width keeps its parameters
    and FLOPs equal to a 4·d GELU MLP's (as in LLaMA)."""
    hidden = int(8 * d_model / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


@dataclass
class ModelConfig:
    """Every shape knob as a plain field (nanoGPT style). `n_kv_head` and `d_ff` left as None are resolved on
    construction, so a saved config is explicit and loads back to the same model.

    For encoder_decoder, `n_layer` is the depth of each stack (as T5 counts it)."""

    architecture: str = "decoder_only"
    vocab_size: int = 32000
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_kv_head: int | None = None
    d_model: int = 384
    d_ff: int | None = None
    mlp: str = "gelu"
    norm: str = "rmsnorm"
    positions: str = "rope"
    dropout: float = 0.0
    bias: bool = False
    tie_embeddings: bool = True
    pad_id: int = 0
    mask_id: int = 4

    def __post_init__(self) -> None:
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.d_ff is None:
            self.d_ff = swiglu_hidden(self.d_model) if self.mlp == "swiglu" else 4 * self.d_model
        for name, allowed in (("architecture", ARCHITECTURES), ("norm", NORMS), ("positions", POSITIONS),
                              ("mlp", MLPS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head {self.n_head} is not a multiple of n_kv_head {self.n_kv_head}")
        if self.positions == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE rotates pairs of channels: head_dim {self.head_dim} must be even")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only, for `config.json`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Unknown keys are refused rather than dropped, so a typo in a config file cannot go unnoticed."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {unknown}")
        return cls(**data)
