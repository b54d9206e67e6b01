import pytest
import sentencepiece as spm
import torch

from fm_pipeline.adaptation.vocab import extend_tokenizer, find_terms, grow_vocabulary, tokens_per_word, word_counts
from fm_pipeline_tests.adaptation.conftest import domain_texts, tiny_model


@pytest.fixture(scope="module")
def base(tiny_corpus) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return domain_texts("biomedical")


@pytest.fixture(scope="module")
def terms(base, texts):
    return find_terms(base, texts, max_terms=50, min_count=3, min_base_pieces=3, domain_vocab_size=1000)


def test_terms_are_frequent_words_the_base_tokenizer_splits(base, texts, terms):
    assert len(terms) == 50
    counts = word_counts(base, texts)
    for term in terms:
        assert term.piece.startswith("\u2581") and term.piece[1:].replace("-", "").isalnum()
        assert term.count == counts[term.piece[1:]] >= 3
        assert list(term.base_ids) == base.encode(term.piece[1:]) and len(term.base_ids) >= 3
        assert base.id_to_piece(base.piece_to_id(term.piece)) != term.piece  # not already a piece
    saved = [t.saved for t in terms]
    assert saved == sorted(saved, reverse=True)


def test_expanded_tokenizer_keeps_old_ids_and_encodes_terms_whole(tiny_corpus, base, texts, terms, tmp_path):
    pieces = [t.piece for t in terms]
    new = extend_tokenizer(tiny_corpus.tokenizer, pieces, tmp_path / "tokenizer.model")
    reloaded = spm.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
    n = base.get_piece_size()
    assert reloaded.get_piece_size() == new.get_piece_size() == n + len(pieces)
    for i in range(n):
        assert reloaded.id_to_piece(i) == base.id_to_piece(i)
        assert reloaded.get_score(i) == base.get_score(i)
        assert reloaded.is_control(i) == base.is_control(i)
    for i, piece in enumerate(pieces, start=n):
        assert reloaded.id_to_piece(i) == piece
        assert reloaded.encode(piece[1:]) == [i]
        assert reloaded.encode(f"The {piece[1:]} was") == [*base.encode("The"), i, *base.encode("was")]
    for text in texts[:5]:
        assert reloaded.decode(reloaded.encode(text)) == base.decode(base.encode(text))
    before, after = tokens_per_word(base, texts), tokens_per_word(reloaded, texts)
    assert after < before - 0.1


@pytest.mark.parametrize("tied", [True, False])
def test_grown_model_keeps_old_rows_and_starts_new_ones_at_the_mean(tiny_corpus, tied):
    model = tiny_model(tiny_corpus, tie_embeddings=tied)
    old_embed = model.embed.tokens.weight.detach().clone()
    old_head = model.head.weight.detach().clone()
    n = old_embed.shape[0]
    sources = [[10, 11, 12], [7, 300], [42]]
    grow_vocabulary(model, sources)

    embed, head = model.embed.tokens.weight, model.head.weight
    assert embed.shape == head.shape == (n + 3, 32) and model.config.vocab_size == n + 3
    assert torch.equal(embed[:n], old_embed) and torch.equal(head[:n], old_head)
    for row, ids in enumerate(sources, start=n):
        assert torch.equal(embed[row], old_embed[ids].mean(dim=0))
        assert torch.equal(head[row], old_head[ids].mean(dim=0))
    assert (head is embed) == tied
    assert embed.requires_grad and head.requires_grad
    logits, loss = model(torch.tensor([[1, n, n + 2]]), torch.tensor([[n, n + 1, 5]]))
    assert logits.shape == (1, 3, n + 3) and torch.isfinite(loss)
