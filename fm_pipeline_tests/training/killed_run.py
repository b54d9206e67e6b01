"""Training that dies by SIGKILL at a chosen moment, as a preempted pod or an out-of-memory kill would.

    python -m fm_pipeline_tests.training.killed_run CONFIG.json MOMENT STEP

runs `fm_pipeline.training.run` on CONFIG.json (also under torchrun) after `install_kill(MOMENT, STEP)`.
Tests that materialize assets in a child process call `install_kill` themselves. The moments are made
deterministic by wrapping the checkpoint writer rather than by racing a timer:

- `after_checkpoint`: right after the step-STEP checkpoint folder is complete on disk;
- `checkpoint_write`: halfway through writing step STEP's training state (the file is cut to half its
  size first), so a partial staging folder is left behind;
- `publish`: just before the final checkpoint is put into `out_dir`.

Only the process that writes checkpoints (rank 0) dies; torchrun then stops the other ranks.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.training import step_checkpoints as steps

MOMENTS = ("after_checkpoint", "checkpoint_write", "publish")


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(moment: str, step: int) -> None:
    """Patch the checkpoint writer of this process so that it SIGKILLs itself at `moment` of `step`."""
    name = f"{steps.STEP_PREFIX}{step:07d}"
    if moment == "after_checkpoint":
        real_save = ckpt.save_checkpoint

        def save_then_die(folder, *args, **kwargs):
            written = real_save(folder, *args, **kwargs)
            if Path(folder).name == name:
                _die()
            return written

        ckpt.save_checkpoint = save_then_die
    elif moment == "checkpoint_write":
        real_torch_save = torch.save

        def half_save_then_die(obj, f, *args, **kwargs):
            real_torch_save(obj, f, *args, **kwargs)
            if isinstance(f, (str, os.PathLike)) and name in str(f):
                os.truncate(f, os.path.getsize(f) // 2)
                _die()

        torch.save = half_save_then_die
    elif moment == "publish":
        ckpt.publish = lambda *args, **kwargs: _die()
    else:
        raise ValueError(f"moment must be one of {MOMENTS}, not {moment!r}")


def main() -> None:
    config, moment, step = sys.argv[1:4]
    torch.set_num_threads(1)  # as the in-process runs it is compared with: the same sums in the same order
    install_kill(moment, int(step))
    from fm_pipeline.training.run import main as run

    run(["--config", config])


if __name__ == "__main__":
    main()
