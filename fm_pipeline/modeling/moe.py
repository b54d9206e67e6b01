"""A Switch-style sparse feed-forward layer (Fedus et al. 2021): `moe_experts` MLPs of the dense width, of which
each token uses one, chosen by a learned router. Parameters grow with the experts; the compute per token stays
that of one dense MLP (plus the router).

- The router runs in float32 even under bf16 autocast: its softmax decides discrete choices, and Switch found
  low-precision routing unstable.
- Top-1: a token goes to its likeliest expert, and that expert's output is scaled by the router probability,
  which is how the router gets a gradient.
- Capacity: in training each expert takes at most ceil(capacity_factor · tokens / experts) tokens, in token
  order (row-major over the batch); the overflow skips the layer, its output is zero, so the residual carries
  the token through unchanged. This bounds each expert's work to a static size. In eval mode nothing is
  dropped (capacity = all tokens), so a token's output never depends on the other rows of its batch and
  generation is the same at any batch size.
- Dispatch is by index, not by a (tokens, experts, capacity) one-hot: every token gets a slot
  `expert · capacity + position` (or the one spare slot past the end when it overflows), the experts run on
  their (capacity, d) slices, and outputs are gathered back. Shapes depend only on the input's shape, so
  `torch.compile` traces it in one graph.
- The load-balancing loss `experts · Σ_i f_i · P_i` (f_i: fraction of tokens whose top choice is expert i,
  P_i: mean router probability of expert i) is 1 for a uniform router and reaches `experts` when one expert
  gets everything; the router z-loss (ST-MoE) `mean(logsumexp(logits)²)` keeps logits small. Both are kept
  on the layer after each forward (`aux_loss`, `z_loss`, with `load`, the fraction routed to each expert, and
  `dropped`, the fraction over capacity) for the model to add to its loss and the loop to log.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def expert_capacity(tokens: int, experts: int, capacity_factor: float) -> int:
    """Slots per expert: ceil(capacity_factor · tokens / experts), at least 1 and at most `tokens`."""
    return max(1, min(tokens, math.ceil(capacity_factor * tokens / experts)))


def route_top1(logits: torch.Tensor, capacity: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-1 routing of (N, E) float32 router logits -> (probs (N, E), expert (N,), gate (N,), slot (N,)).

    `slot` is `expert · capacity + position`, position being the token's rank among the tokens routed to the
    same expert (in order); a token at position >= capacity gets slot `E · capacity`, the spare one."""
    experts = logits.size(-1)
    probs = logits.softmax(dim=-1)
    expert = probs.argmax(dim=-1)
    gate = probs.gather(1, expert[:, None]).squeeze(1)
    chosen = F.one_hot(expert, experts)
    position = (chosen.cumsum(dim=0) * chosen).sum(dim=-1) - 1
    slot = torch.where(position < capacity, expert * capacity + position, experts * capacity)
    return probs, expert, gate, slot


def load_balancing_loss(probs: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
    """Switch's auxiliary loss, experts · Σ_i f_i · P_i, over (N, E) router probabilities and (N,) choices."""
    experts = probs.size(-1)
    fraction = F.one_hot(expert, experts).float().mean(dim=0)
    return experts * (fraction * probs.mean(dim=0)).sum()


class SwitchMLP(nn.Module):
    """`experts` feed-forward layers behind a top-1 router; a drop-in for `blocks.MLP` on (B, T, d) inputs."""

    def __init__(self, experts: nn.ModuleList, d_model: int, capacity_factor: float) -> None:
        super().__init__()
        self.router = nn.Linear(d_model, len(experts), bias=False)
        self.experts = experts
        self.capacity_factor = capacity_factor
        self.aux_loss = torch.zeros(())
        self.z_loss = torch.zeros(())
        self.load = torch.zeros(len(experts))
        self.dropped = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        tokens, experts = flat.size(0), len(self.experts)
        capacity = expert_capacity(tokens, experts, self.capacity_factor) if self.training else tokens
        with torch.autocast(x.device.type, enabled=False):
            logits = F.linear(flat.float(), self.router.weight.float())
        probs, expert, gate, slot = route_top1(logits, capacity)
        # Which token fills each slot: the spare slot's entry (overflow) is never read, an empty slot reads the
        # appended zero row.
        filled = torch.full((experts * capacity + 1,), tokens, dtype=torch.long, device=x.device)
        filled = filled.scatter(0, slot, torch.arange(tokens, device=x.device))
        padded = torch.cat((flat, flat.new_zeros(1, shape[-1])))
        inputs = padded[filled[:-1]].view(experts, capacity, shape[-1])
        outputs = torch.cat([expert_mlp(inputs[i]) for i, expert_mlp in enumerate(self.experts)])
        outputs = torch.cat((outputs, outputs.new_zeros(1, shape[-1])))
        out = outputs[slot] * gate[:, None].to(outputs.dtype)

        self.aux_loss = load_balancing_loss(probs, expert)
        self.z_loss = torch.logsumexp(logits, dim=-1).square().mean()
        self.load = F.one_hot(expert, experts).float().mean(dim=0).detach()
        self.dropped = (slot == experts * capacity).float().mean().detach()
        return out.view(shape)
