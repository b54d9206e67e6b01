"""The one description of a model's shape, saved as `config.json` beside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from fm_pipeline.lake.config_dicts import known_fields

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
    layer_n_head: list[int] | None = None
    """Per-layer query heads of self-attention, when structured pruning removed some (None: `n_head` everywhere).
    Heads keep `head_dim`, so a layer's attention is `layer_n_head[i] * head_dim` wide."""
    layer_n_kv_head: list[int] | None = None
    """Per-layer key/value heads, beside `layer_n_head` (None: `n_kv_head` everywhere)."""
    layer_d_ff: list[int] | None = None
    """Per-layer MLP width after channel pruning (None: `d_ff` everywhere)."""

    moe_experts: int = 0
    """Switch-style sparse feed-forward (`modeling.moe`): this many MLPs of width `d_ff` per block, one per
    token (0: the dense MLP)."""
    moe_capacity_factor: float = 1.25
    """Tokens each expert takes in training, as a multiple of an even share (tokens / experts)."""
    moe_aux_loss_weight: float = 0.01
    """Weight of each layer's load-balancing loss in the training loss (Switch's alpha)."""
    moe_z_loss_weight: float = 0.0
    """Weight of each layer's router z-loss (ST-MoE uses 0.001); 0 leaves it out."""

    LAYER_FIELDS: ClassVar[tuple[str, ...]] = ("layer_n_head", "layer_n_kv_head", "layer_d_ff")
    MOE_FIELDS: ClassVar[tuple[str, ...]] = ("moe_experts", "moe_capacity_factor", "moe_aux_loss_weight",
                                             "moe_z_loss_weight")

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
        for name in self.LAYER_FIELDS:
            values = getattr(self, name)
            if values is not None and (len(values) != self.n_layer or min(values) < 1):
                raise ValueError(f"{name} needs {self.n_layer} positive values, not {values}")
        if self.moe_experts < 0 or self.moe_capacity_factor <= 0:
            raise ValueError("moe_experts must be >= 0 and moe_capacity_factor > 0")
        for i in range(self.n_layer):
            if self.layer_heads(i)[0] % self.layer_heads(i)[1]:
                raise ValueError(f"layer {i}: query heads are not a multiple of key/value heads")

    def layer_heads(self, layer: int) -> tuple[int, int]:
        """(query heads, key/value heads) of a layer's self-attention."""
        n_head = self.layer_n_head[layer] if self.layer_n_head is not None else self.n_head
        n_kv_head = self.layer_n_kv_head[layer] if self.layer_n_kv_head is not None else self.n_kv_head
        return n_head, n_kv_head

    def layer_ff(self, layer: int) -> int:
        """A layer's MLP width."""
        return self.layer_d_ff[layer] if self.layer_d_ff is not None else self.d_ff

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only, for `config.json`. Unset per-layer fields, and the expert fields of a dense
        model, are left out, so an unpruned dense model's config is what it was before they existed."""
        return {k: v for k, v in asdict(self).items()
                if not (k in self.LAYER_FIELDS and v is None) and not (k in self.MOE_FIELDS and not self.moe_experts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Unknown keys are refused rather than dropped, so a typo in a config file cannot go unnoticed."""
        return cls(**known_fields(cls, data))
