import math

import pytest
import sentencepiece as spm
import torch

from fm_pipeline.compression.prune import prune_structured, remove_structures
from fm_pipeline.compression.reconstruct import reconstruct_pruned
from fm_pipeline.compression.tuning import TuneData
from fm_pipeline_tests.training.tiny_corpus import paragraphs


def _loss(model, batches) -> float:
    with torch.no_grad():
        return sum(model(**b)[1].item() for b in batches) / len(batches)


def test_refitting_an_unpruned_model_gives_back_its_own_weights(trained):
    """Nothing removed: the least-squares solution is the parent's projections themselves (the targets are
    exactly what they compute), so a solver with a transposed or misplaced weight would fail here."""
    model = trained.model().eval()
    copy = remove_structures(model)
    for block in copy.decoder.blocks:  # start away from the answer
        torch.nn.init.normal_(block.attn.out.weight)
        torch.nn.init.normal_(block.mlp.down.weight)
    report = reconstruct_pruned(model, copy, trained.data.batches(4), ridge=0.0)
    for ours, theirs in zip(copy.decoder.blocks, model.decoder.blocks, strict=True):
        torch.testing.assert_close(ours.attn.out.weight, theirs.attn.out.weight, atol=2e-4, rtol=1e-3)
        torch.testing.assert_close(ours.mlp.down.weight, theirs.mlp.down.weight, atol=2e-4, rtol=1e-3)
    assert all(r["attn_error_before"] > 0.5 and r["attn_error_after"] < 1e-6 for r in report)
    assert all(r["mlp_error_after"] < 1e-6 for r in report)


def test_refit_brings_a_pruned_model_back_towards_its_parent_on_unseen_batches(trained):
    model = trained.model().eval()
    batches = trained.data.batches(10)
    fit, held_out = batches[:6], batches[6:]
    cut, _ = prune_structured(model, 0.5, 0.75, trained.data, importance_batches=2)
    refit, removed = prune_structured(model, 0.5, 0.75, trained.data, importance_batches=2, reconstruct_batches=6)
    assert refit.config.layer_n_head == cut.config.layer_n_head == [2, 2]
    report = removed["reconstruction"]
    assert len(report) == 2
    for block in report:
        assert block["attn_error_after"] < block["attn_error_before"]
        assert block["mlp_error_after"] < block["mlp_error_before"]
    # only the refitted projections changed
    for ours, theirs in zip(refit.decoder.blocks, cut.decoder.blocks, strict=True):
        assert torch.equal(ours.attn.qkv.weight, theirs.attn.qkv.weight)
        assert torch.equal(ours.mlp.up.weight, theirs.mlp.up.weight)
        assert not torch.equal(ours.mlp.down.weight, theirs.mlp.down.weight)
    parent, before, after = (_loss(m, held_out) for m in (model, cut, refit))
    assert before - parent > 0.02  # the cut costs something to recover
    assert after < before - 0.5 * (before - parent)  # the refit wins back at least half of it
    assert fit  # the refit batches are the first 6 of the same seed: `held_out` was never fitted


def test_pruning_to_a_budget_with_a_refit_tries_the_full_share_first(trained):
    model = trained.model().eval()
    calls = []

    def check(m) -> float:
        calls.append(m.config.layer_d_ff)
        return _loss(m, trained.data.batches(8)[6:])

    smaller, removed = prune_structured(model, 0.5, 0.75, trained.data, importance_batches=2, max_ppl_ratio=2.0,
                                        check_loss=check, reconstruct_batches=4)
    assert removed["scale"] == 1.0 and math.isfinite(removed["check_ppl_ratio"])
    assert calls == [None, smaller.config.layer_d_ff]  # the parent, then the full share: it fits, nothing else
    with pytest.raises(ValueError, match="calibration data"):
        prune_structured(model, 0.5, 0.75, None, reconstruct_batches=4)


def test_calibration_batches_come_from_documents_held_in_memory(trained):
    sp: spm.SentencePieceProcessor = trained.sp
    texts = paragraphs("en")[:4]
    data = TuneData.from_texts(texts, sp, trained.model().config, batch_size=2)
    ids = [sp.encode(t, add_bos=True, add_eos=True) for t in texts]
    assert data.tokens.tokens.tolist() == [i for doc in ids for i in doc]
    assert data.tokens.offsets.tolist() == [0, *torch.tensor([len(d) for d in ids]).cumsum(0).tolist()]
    assert [data.tokens.document(i).tolist() for i in range(4)] == ids
    first_two = TuneData.from_texts(texts, sp, trained.model().config, max_tokens=len(ids[0]) + 1)
    assert len(first_two.tokens) == 2  # it stops once the budget is reached, not before
    batch = data.batches(1)[0]
    assert batch["idx"].shape == (2, trained.model().config.block_size)
