"""ULMFiT's fine-tuning schedules (Howard & Ruder, 2018) over a model's layer groups, top to bottom.

Layer groups: each transformer block is one group; the top block of a stack carries that stack's final norm,
and the topmost group also carries the output projection; the embeddings are the bottom group. In an
encoder-decoder the decoder's blocks come first (they are nearer the output), then the encoder's. A tied output
projection is the embedding matrix, so it belongs to the bottom group.

- Gradual unfreezing: train the top group only, then unfreeze one more group every `every` steps, so the
  lower, more general layers change last and least.
- Discriminative learning rates: group d from the top trains at lr / decay^d (decay 2.6 in ULMFiT).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

STACKS = ("decoder", "encoder")  # top stack first


def layer_groups(model: nn.Module) -> list[list[str]]:
    """Parameter names (as `named_parameters` gives them, a tied matrix once) per layer group, top group first.
    Every parameter is in exactly one group; one that fits none raises, so a new module cannot go unscheduled."""
    prefixes: list[tuple[str, ...]] = []
    for stack in STACKS:
        module = getattr(model, stack, None)
        if module is None:
            continue
        n = len(module.blocks)
        for i in reversed(range(n)):
            prefixes.append((f"{stack}.blocks.{i}.", *((f"{stack}.norm.",) if i == n - 1 else ())))
    if not prefixes:
        raise ValueError(f"{type(model).__name__} has no decoder or encoder stack to schedule")
    prefixes[0] = (*prefixes[0], "head.")
    prefixes.append(("embed.",))
    groups: list[list[str]] = [[] for _ in prefixes]
    for name, _ in model.named_parameters():
        depth = next((d for d, group in enumerate(prefixes) if name.startswith(group)), None)
        if depth is None:
            raise ValueError(f"parameter {name!r} belongs to no layer group")
        groups[depth].append(name)
    return groups


def layer_depths(model: nn.Module, groups: list[list[str]] | None = None) -> dict[str, int]:
    """Parameter name -> its group's depth from the top (0 for the top group); `groups` defaults to
    `layer_groups(model)` (a model wrapping a language model, such as a task head on top, passes its own)."""
    return {name: depth for depth, names in enumerate(groups or layer_groups(model)) for name in names}


def discriminative_lr(model: nn.Module, decay: float = 2.6,
                      groups: list[list[str]] | None = None) -> Callable[[str], float]:
    """`lr_scale` for `training.finetune`: decay ** -depth, 1 for the top group, 1/2.6 for the next..."""
    depths = layer_depths(model, groups)
    return lambda name: decay ** -depths[name]


class GradualUnfreezing:
    """A `before_step` for `training.finetune`: at step s (from 1) the top 1 + (s - 1) // every groups train
    and every other parameter is frozen."""

    def __init__(self, model: nn.Module, every: int, groups: list[list[str]] | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 step, not {every}")
        self.groups = groups or layer_groups(model)
        self.params = dict(model.named_parameters())
        self.every = every
        self.unfrozen = -1

    def groups_at(self, step: int) -> int:
        """How many groups, from the top, train at `step`."""
        return min(len(self.groups), 1 + (step - 1) // self.every)

    def __call__(self, step: int) -> None:
        k = self.groups_at(step)
        if k == self.unfrozen:
            return
        for depth, names in enumerate(self.groups):
            for name in names:
                self.params[name].requires_grad_(depth < k)
        self.unfrozen = k
