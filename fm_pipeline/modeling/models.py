"""The three classic transformer architectures, built from the same blocks:

- `DecoderOnly` (GPT, LLaMA): a causal stack, trained to predict the next token; generates text.
- `EncoderOnly` (BERT): a bidirectional stack, trained as a masked LM; gives token representations.
- `EncoderDecoder` (T5): a bidirectional encoder and a causal decoder that cross-attends to it; seq2seq.

Each `forward` returns `(logits, loss)`, the loss being None without targets. Targets equal to -100 or to
`pad_id` are not predicted.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.modeling.attention import padding_mask
from fm_pipeline.modeling.blocks import Embeddings, Stack
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.moe import SwitchMLP
from fm_pipeline.modeling.positions import LearnedPositions

IGNORE_INDEX = -100
# Projections writing into the residual stream: GPT-2 scales their init by 1/sqrt(2·n_layer) so the stream's
# variance does not grow with depth.
RESIDUAL_PROJECTIONS = ("attn.out.weight", "cross.out.weight", "mlp.down.weight")
EXPERT_PROJECTION = re.compile(r"mlp\.experts\.\d+\.down\.weight$")
"""An expert's down projection writes into the residual stream too."""


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy over the predicted positions (neither -100 nor padding)."""
    targets = targets.masked_fill(targets == pad_id, IGNORE_INDEX)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)


class LanguageModel(nn.Module):
    """What the architectures share: token embeddings (with absolute positions), the output projection onto
    the vocabulary, tied to the embeddings by default, GPT-2 initialisation and parameter counting."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = Embeddings(config)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.tokens.weight

    def init_weights(self) -> None:
        """Normal(0, 0.02) for matrices, embeddings and learned positions, zero biases, and residual projections
        at 0.02/sqrt(2·n_layer). Subclasses call it once their stacks exist."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.Embedding, LearnedPositions)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        for name, param in self.named_parameters():
            if name.endswith(RESIDUAL_PROJECTIONS) or EXPERT_PROJECTION.search(name):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def moe_layers(self) -> list[SwitchMLP]:
        """The sparse feed-forward layers, in order (none in a dense model)."""
        return [m for m in self.modules() if isinstance(m, SwitchMLP)]

    def with_moe_losses(self, loss: torch.Tensor | None) -> torch.Tensor | None:
        """In training, the LM loss plus each expert layer's load-balancing (and z-) loss at their weights, as
        Switch adds them; evaluation scores the LM loss alone, comparable with a dense model's."""
        if loss is None or not self.training or not self.config.moe_experts:
            return loss
        for layer in self.moe_layers():
            loss = loss + self.config.moe_aux_loss_weight * layer.aux_loss
            if self.config.moe_z_loss_weight:
                loss = loss + self.config.moe_z_loss_weight * layer.z_loss
        return loss

    def moe_metrics(self) -> dict[str, float]:
        """The last forward's routing, averaged over the expert layers: `moe_aux_loss` (1 when balanced),
        `moe_z_loss`, `moe_dropped` (fraction over capacity) and `moe_max_load` (the busiest expert's share of
        tokens, 1/experts when balanced). Empty for a dense model."""
        layers = self.moe_layers()
        if not layers:
            return {}

        def mean(values: list[torch.Tensor]) -> float:
            return float(torch.stack([v.detach().float() for v in values]).mean())

        return {"moe_aux_loss": mean([m.aux_loss for m in layers]), "moe_z_loss": mean([m.z_loss for m in layers]),
                "moe_dropped": mean([m.dropped for m in layers]), "moe_max_load": mean([m.load.max() for m in layers])}

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Unique parameters (a tied matrix counts once). `non_embedding` leaves out the tables that are only
        looked up (learned positions, and the token table when untied): what remains does matmul FLOPs, the N of
        6·N FLOPs per token. A tied token table stays in, as the output projection uses it (as in nanoGPT)."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if isinstance(self.embed.positions, LearnedPositions):
                total -= self.embed.positions.weight.numel()
            if not self.config.tie_embeddings:
                total -= self.embed.tokens.weight.numel()
        return total


class DecoderOnly(LanguageModel):
    """A causal language model: position t sees tokens 0..t and predicts token t+1."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.decoder = Stack(config, causal=True)
        self.init_weights()

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets: (B, T) token ids, targets being idx shifted left by one. Returns (B, T, vocab) logits."""
        logits = self.head(self.decoder(self.embed(idx)))
        loss = None if targets is None else lm_loss(logits, targets, self.config.pad_id)
        return logits, self.with_moe_losses(loss)

    def next_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, vocab) logits of the token after idx (B, T): the output projection for the last position only, as
        it is the largest matmul of a small model. One generation step; compile it for fast inference."""
        return self.head(self.decoder(self.embed(idx))[:, -1, :])

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append up to `max_new_tokens` sampled tokens to each row of idx (B, T); call `eval()` first.

        temperature <= 0 decodes greedily; `top_k` samples among the k likeliest tokens only. A row that has
        produced `eos_id` continues with `eos_id`, and generation stops once every row has. The context is
        cropped to the last `block_size` tokens, as positions beyond it were never trained."""
        finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits = self.next_logits(idx[:, -self.config.block_size :])
            if temperature <= 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                next_id = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
            if eos_id is not None:
                next_id = next_id.masked_fill(finished[:, None], eos_id)
                finished |= next_id[:, 0] == eos_id
            idx = torch.cat((idx, next_id), dim=1)
            if eos_id is not None and bool(finished.all()):
                break
        return idx


class EncoderOnly(LanguageModel):
    """A bidirectional encoder with a masked-LM head: every position sees the whole (unpadded) sequence."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = Stack(config, causal=False)
        self.init_weights()

    def encode(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d) contextual token vectors, for classification, tagging and embeddings. attention_mask: (B, T),
        1 for real tokens and 0 for padding, which no position then attends to."""
        mask = None if attention_mask is None else padding_mask(attention_mask)
        return self.encoder(self.embed(idx), mask=mask)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """targets: the original ids at masked positions, -100 elsewhere (see `objectives.mask_tokens`)."""
        logits = self.head(self.encode(idx, attention_mask))
        loss = None if targets is None else lm_loss(logits, targets, self.config.pad_id)
        return logits, self.with_moe_losses(loss)


class EncoderDecoder(LanguageModel):
    """An encoder over the source and a causal decoder over the target that cross-attends to the encoder's
    output; both share the token embeddings and the output projection (as T5)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = Stack(config, causal=False)
        self.decoder = Stack(config, causal=True, cross=True)
        self.init_weights()

    def forward(
        self,
        idx: torch.Tensor,
        decoder_idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, S) source ids, attention_mask (B, S) 1 for real source tokens; decoder_idx: (B, T) the targets
        shifted right behind a start token. Padded source positions are hidden from encoder and decoder alike."""
        mask = None if attention_mask is None else padding_mask(attention_mask)
        memory = self.encoder(self.embed(idx), mask=mask)
        logits = self.head(self.decoder(self.embed(decoder_idx), memory=memory, memory_mask=mask))
        loss = None if targets is None else lm_loss(logits, targets, self.config.pad_id)
        return logits, self.with_moe_losses(loss)


MODELS: dict[str, type[LanguageModel]] = {
    "decoder_only": DecoderOnly,
    "encoder_only": EncoderOnly,
    "encoder_decoder": EncoderDecoder,
}


def build_model(config: ModelConfig) -> LanguageModel:
    """The model class the config's `architecture` names, freshly initialised."""
    return MODELS[config.architecture](config)
