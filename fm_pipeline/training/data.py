"""Training windows drawn from a packed token split, reproducible and resumable from a small state dict."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fm_pipeline.tokenization.packed import PackedTokens


class WindowSampler:
    """Batches of `length`-token windows from this rank's shard of a split.

    `packing="random"` starts windows anywhere in the rank's contiguous slice of the token stream;
    `packing="documents"` starts them at document starts (documents i with i % world_size == rank), so a
    window begins with BOS and runs on into the following documents. The position in the data is the state of
    a private generator (which also draws the objective's masks), so saving it and loading it back replays the
    same batches.
    """

    def __init__(
        self, packed: PackedTokens, length: int, batch_size: int, seed: int,
        rank: int = 0, world_size: int = 1, packing: str = "random",
    ) -> None:
        n = packed.num_tokens
        if packing == "random":
            lo, hi = rank * n // world_size, (rank + 1) * n // world_size
            self.starts = None
            self.bounds = (lo, hi - length + 1)
            if self.bounds[1] <= lo:
                raise ValueError(f"rank {rank}'s slice of {hi - lo} tokens is shorter than a {length}-token window")
        elif packing == "documents":
            starts = np.asarray(packed.offsets[:-1], dtype=np.int64)[rank::world_size]
            self.starts = starts[starts + length <= n]
            if len(self.starts) == 0:
                raise ValueError(f"no document start leaves room for a {length}-token window")
        else:
            raise ValueError(f"packing must be 'random' or 'documents', not {packing!r}")
        self.tokens = packed.tokens
        self.length = length
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + rank)
        self.batches = 0

    def next_batch(self) -> torch.Tensor:
        """(batch_size, length) int64 token ids."""
        if self.starts is None:
            starts = torch.randint(*self.bounds, (self.batch_size,), generator=self.generator).tolist()
        else:
            picks = torch.randint(len(self.starts), (self.batch_size,), generator=self.generator)
            starts = self.starts[picks.numpy()].tolist()
        self.batches += 1
        windows = np.stack([self.tokens[s : s + self.length] for s in starts]).astype(np.int64)
        return torch.from_numpy(windows)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.batches = int(state["batches"])
