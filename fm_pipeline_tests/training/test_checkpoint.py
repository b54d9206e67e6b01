import contextlib
import os
import pickle
import shutil

import pytest
import torch

from fm_pipeline.lake import staging
from fm_pipeline.modeling import checkpoint as ckpt
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.training import step_checkpoints as steps

ARCHITECTURES = ("decoder_only", "encoder_only", "encoder_decoder")


def _inputs(architecture: str) -> dict[str, torch.Tensor]:
    idx = torch.randint(5, 64, (2, 12), generator=torch.Generator().manual_seed(1))
    return {"idx": idx, "decoder_idx": idx[:, :6]} if architecture == "encoder_decoder" else {"idx": idx}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_round_trip_gives_identical_logits_and_keeps_tied_embeddings(tmp_path, architecture):
    config = ModelConfig(architecture=architecture, vocab_size=64, n_layer=2, n_head=2, d_model=16, block_size=16)
    torch.manual_seed(0)
    model = build_model(config).eval()
    ckpt.save_checkpoint(tmp_path / "ck", model, config, state=None)
    loaded, loaded_config = ckpt.load_checkpoint(tmp_path / "ck")
    loaded.eval()

    assert loaded_config == config
    assert torch.equal(model(**_inputs(architecture))[0], loaded(**_inputs(architecture))[0])
    assert loaded.head.weight.data_ptr() == loaded.embed.tokens.weight.data_ptr()  # still one tensor


def test_training_state_loads_with_weights_only(tmp_path, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    state = {"step": 3, "rng": torch.get_rng_state(), "nested": {"betas": (0.9, 0.95), "none": None}}
    folder = tmp_path / "ck"
    folder.mkdir()
    torch.save(state, folder / ckpt.STATE)
    loaded = ckpt.load_training_state(folder)
    assert loaded["step"] == 3 and torch.equal(loaded["rng"], state["rng"])
    assert calls and all(kw.get("weights_only") is True for kw in calls)


class Exploit:
    """Unpickling this would call a function (print, standing in for os.system)."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_a_state_file_that_would_run_code_is_refused(tmp_path, capsys):
    folder = tmp_path / "ck"
    folder.mkdir()
    torch.save({"step": Exploit()}, folder / ckpt.STATE)
    with pytest.raises(pickle.UnpicklingError):
        ckpt.load_training_state(folder)
    assert "pwned" not in capsys.readouterr().out


def test_prune_keeps_the_newest(tmp_path):
    config = ModelConfig(vocab_size=32, n_layer=1, n_head=1, d_model=8, block_size=8)
    model = build_model(config)
    for step in (10, 20, 30):
        ckpt.save_checkpoint(steps.step_folder(tmp_path, step), model, config, {"step": step})
    steps.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in steps.list_checkpoints(tmp_path)] == ["step-0000020", "step-0000030"]


class Crash(Exception):
    pass


class StopAt:
    """Wraps file operations; the `n`-th call raises instead of running, as if the process died there."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def wrap(self, real):
        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.n:
                raise Crash
            return real(*args, **kwargs)
        return call


@pytest.mark.parametrize("exchange", [True, False], ids=["rename_exchange", "fallback"])
def test_publish_shows_the_old_or_the_new_checkpoint_wherever_it_stops(tmp_path, monkeypatch, exchange):
    """A publish stopped at any file operation leaves `out` holding one whole checkpoint, old or new, never
    the weights of one with the config of the other (which would not even load: their shapes differ). The
    fallback for filesystems without RENAME_EXCHANGE may leave `out` absent for a moment, never mixed."""
    folders = {}
    for width in (8, 16):
        config = ModelConfig(vocab_size=32, n_layer=1, n_head=1, d_model=width, block_size=8)
        folders[width] = ckpt.save_checkpoint(tmp_path / f"w{width}", build_model(config), config, None)
    out = tmp_path / "lake" / "pretrained_checkpoint"
    if not exchange:
        monkeypatch.setattr(staging, "exchange", lambda a, b: False)
    operations = [(os, "link"), (os, "replace"), (os, "rename"), (shutil, "copyfile")]
    if exchange:
        operations.append((staging, "exchange"))
    seen = set()
    for n in range(1, 20):
        ckpt.publish(folders[8], out)
        stop = StopAt(n)
        with monkeypatch.context() as patched:
            for module, name in operations:
                patched.setattr(module, name, stop.wrap(getattr(module, name)))
            with contextlib.suppress(Crash):
                ckpt.publish(folders[16], out, {"note.txt": b"new"})
        if out.exists() or exchange:
            width = ckpt.load_checkpoint(out)[1].d_model
            assert (out / "note.txt").exists() == (width == 16)
            seen.add(width)
        if stop.calls < n:  # this publish finished before the n-th operation
            break
    assert seen == {8, 16} and ckpt.load_checkpoint(out)[1].d_model == 16
    assert sorted(p.name for p in out.parent.iterdir()) == ["pretrained_checkpoint"]  # leftovers swept
