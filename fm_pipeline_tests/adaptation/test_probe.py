import sentencepiece as spm
import torch

from fm_pipeline.adaptation.probe import hidden_states, linear_probe, pooled_features, probe_accuracy
from fm_pipeline_tests.adaptation.conftest import domain_texts, tiny_model


def _blobs(per_class: int, classes: int, dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around well-separated centres: class c at 10·e_c plus noise of deviation 0.1."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    centres = 10 * torch.eye(dim)[:classes]
    return centres[labels] + 0.1 * torch.randn(len(labels), dim, generator=generator), labels


def test_separable_features_are_classified_perfectly():
    x, y = _blobs(per_class=20, classes=4)
    test = torch.arange(len(y)) % 4 == 3
    result = linear_probe(x, y, test)
    assert result.accuracy == 1.0 and result.train_accuracy == 1.0
    assert (result.n_train, result.n_test) == (60, 20)


def test_accuracy_counts_the_wrong_test_labels():
    x, y = _blobs(per_class=20, classes=3)
    test = torch.arange(len(y)) % 4 == 3  # 15 test points
    flipped = torch.nonzero(test).flatten()[:2]  # two test points labelled as another class
    y = y.clone()
    y[flipped] = (y[flipped] + 1) % 3
    result = linear_probe(x, y, test)
    assert result.accuracy == 13 / 15
    assert result.train_accuracy == 1.0


def test_hidden_states_are_what_the_output_projection_reads(tiny_corpus):
    idx = torch.randint(5, 300, (2, 20), generator=torch.Generator().manual_seed(0))
    for architecture in ("decoder_only", "encoder_only"):
        model = tiny_model(tiny_corpus, architecture).eval()
        with torch.no_grad():
            logits, _ = model(idx)
            torch.testing.assert_close(model.head(hidden_states(model, idx)), logits)
    model = tiny_model(tiny_corpus, "encoder_decoder").eval()
    with torch.no_grad():
        assert hidden_states(model, idx).shape == (2, 20, 32)


def test_probe_runs_on_real_hidden_states(tiny_corpus):
    model = tiny_model(tiny_corpus)
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    texts = domain_texts("legal")[:3]
    features, owners = pooled_features(model, sp, texts, max_windows=4)
    lengths = [len(sp.encode(t)) + 2 for t in texts]
    assert all(n >= 4 * 32 for n in lengths)  # long documents: 4 full windows each
    assert features.shape == (12, 32) and owners.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    with torch.no_grad():
        first = hidden_states(model, torch.tensor([sp.encode(texts[0], add_bos=True)[:32]])).mean(dim=1)
    torch.testing.assert_close(features[0], first[0])

    docs = {d: domain_texts(d)[:8] for d in ("biomedical", "legal", "financial", "scientific")}
    result = probe_accuracy(model, sp, docs, max_windows=2)
    assert result.n_test == 4 * 2 * 2  # documents 3 and 7 of each domain, two windows each
    assert result.n_train == 4 * 6 * 2
    assert 0.0 <= result.accuracy <= 1.0 and result.train_accuracy > 0.5


def test_batched_windows_pool_what_one_window_at_a_time_pools(tiny_corpus):
    """Short documents (one short window each) and long ones, batched across documents with padding: every
    window's pooled vector as when it is scored alone, in the same order."""
    model = tiny_model(tiny_corpus)
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    texts = [domain_texts("legal")[0], "A short clause binds both parties.", domain_texts("biomedical")[1],
             "Le contrat prend effet à la signature des deux parties et reste valable un an."]
    alone, owners_alone = pooled_features(model, sp, texts, max_windows=3, batch_size=1)
    batched, owners = pooled_features(model, sp, texts, max_windows=3, batch_size=5)
    assert owners.tolist() == owners_alone.tolist() == [0, 0, 0, 1, 2, 2, 2, 3]
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    short = torch.tensor([sp.encode(texts[1], add_bos=True, add_eos=True)])
    with torch.no_grad():
        torch.testing.assert_close(batched[3], hidden_states(model, short).mean(dim=1)[0], rtol=1e-5, atol=1e-5)
