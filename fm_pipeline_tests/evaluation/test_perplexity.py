import math

import pytest
import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.evaluation.perplexity import LossTally, document_windows, evaluate_packed, evaluate_texts
from fm_pipeline.lake.parquet_io import read_docs
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import Objective, fit_to_tokenizer
from fm_pipeline.tokenization.packed import PackedTokens


class Uniform(nn.Module):
    """Equal logits for every token: each predicted token costs exactly ln(vocab) nats."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.unused = nn.Parameter(torch.zeros(1))  # where evaluation looks up the device

    def forward(self, idx, targets=None, decoder_idx=None):
        shape = (decoder_idx if decoder_idx is not None else idx).shape
        return torch.zeros(*shape, self.config.vocab_size), None


def test_tally_by_hand():
    """Two documents: 3 tokens costing 1, 2 and 3 nats over 4 bytes, then 1 token of 2 nats over 2 bytes."""
    tally = LossTally()
    tally.add(nats=6.0, predicted=3, tokens=3, n_bytes=4)
    tally.add(nats=2.0, predicted=1, tokens=1, n_bytes=2)
    metrics = tally.metrics()
    assert metrics["val_loss"] == pytest.approx(8 / 4)
    assert metrics["val_ppl"] == pytest.approx(math.exp(2.0))
    assert metrics["val_bpb"] == pytest.approx(8 / math.log(2) / 6)  # total nats / ln 2 / total bytes


@pytest.fixture(scope="module")
def sp(tiny_corpus) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))


def test_bpb_of_a_uniform_model_is_log2_vocab_per_predicted_token_over_bytes(sp):
    vocab = sp.get_piece_size()
    model = Uniform(fit_to_tokenizer(ModelConfig(block_size=8), sp))
    docs = [("en", "The lighthouse keeper climbed the stairs."), ("de", "Die Brücke über dem Fluss ist alt.")]
    result = evaluate_texts(model, sp, docs)

    for lang, text in docs:
        predicted = len(sp.encode(text)) + 1  # BOS ... EOS: every token after BOS is predicted, EOS included
        expected_bpb = predicted * math.log2(vocab) / len(text.encode("utf-8"))  # "ü" is two bytes
        assert result["by_lang"][lang]["val_bpb"] == pytest.approx(expected_bpb)
        assert result["by_lang"][lang]["val_loss"] == pytest.approx(math.log(vocab))
    assert result["val_ppl"] == pytest.approx(vocab)
    total_predicted = sum(len(sp.encode(t)) + 1 for _, t in docs)
    total_bytes = sum(len(t.encode("utf-8")) for _, t in docs)
    assert result["val_bpb"] == pytest.approx(total_predicted * math.log2(vocab) / total_bytes)


def test_packed_bpb_uses_the_files_bytes_per_token(tiny_corpus, sp):
    packed = PackedTokens.open(tiny_corpus.tokens, "val")
    config = fit_to_tokenizer(ModelConfig(block_size=16), sp)
    result = evaluate_packed(Uniform(config), packed, Objective.for_model(config, sp), batch_size=4)
    assert result["val_loss"] == pytest.approx(math.log(config.vocab_size))
    per_token = math.log2(config.vocab_size)
    assert result["val_bpb"] == pytest.approx(per_token * packed.num_tokens / packed.header["text_bytes"])


@pytest.mark.parametrize("length", [2, 8, 9, 10, 17, 25])
def test_windows_predict_every_token_after_the_first_exactly_once(length):
    ids = torch.arange(length)
    windows = document_windows(ids, "decoder_only", block_size=8)
    assert all(len(w) <= 9 for w in windows)
    assert torch.equal(torch.cat([w[1:] for w in windows]), ids[1:])
    masked = document_windows(ids, "encoder_only", block_size=8)
    assert torch.equal(torch.cat(masked), ids) and all(2 <= len(w) <= 8 for w in masked)


@pytest.mark.parametrize("architecture", ["encoder_only", "encoder_decoder"])
def test_masked_objectives_evaluate_reproducibly(tiny_corpus, sp, architecture):
    torch.manual_seed(0)
    model = build_model(fit_to_tokenizer(ModelConfig(architecture=architecture, n_layer=1, n_head=2, d_model=16,
                                                     block_size=16), sp))
    docs = list(read_docs(tiny_corpus.val_docs))
    first = evaluate_texts(model, sp, docs, max_docs_per_lang=2)
    assert first == evaluate_texts(model, sp, docs, max_docs_per_lang=2)
    assert set(first["by_lang"]) == {"en", "de", "fr", "es"}
    assert abs(first["val_loss"] - math.log(model.config.vocab_size)) < 1.0  # untrained: about ln(vocab)


def test_batched_windows_score_what_one_window_at_a_time_scores(tiny_corpus, sp):
    """Documents of one to several windows, batched across documents and padded at the end: the same nats per
    language as scoring each window alone (up to float rounding), and the same token counts exactly."""
    torch.manual_seed(0)
    model = build_model(fit_to_tokenizer(ModelConfig(n_layer=2, n_head=2, d_model=32, block_size=16), sp))
    docs = list(read_docs(tiny_corpus.val_docs))
    assert len({len(sp.encode(t)) // 16 for _, t in docs}) > 1, "documents of different window counts"
    one = evaluate_texts(model, sp, docs, max_docs_per_lang=3)
    for batch_size in (2, 5, 64):
        batched = evaluate_texts(model, sp, docs, max_docs_per_lang=3, batch_size=batch_size)
        assert batched.keys() == one.keys() and batched["by_lang"].keys() == one["by_lang"].keys()
        for lang, metrics in one["by_lang"].items():
            for key, value in metrics.items():
                assert batched["by_lang"][lang][key] == pytest.approx(value, rel=1e-5), (batch_size, lang, key)
        assert batched["val_bpb"] == pytest.approx(one["val_bpb"], rel=1e-5)
