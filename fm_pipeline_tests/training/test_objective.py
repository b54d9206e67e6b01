import pytest
import sentencepiece as spm

from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.objectives import Objective, fit_to_tokenizer
from fm_pipeline.modeling.sizing import chinchilla_optimal, count_parameters
from fm_pipeline.training.loop import resolve_model_config
from fm_pipeline_tests.training.tiny_corpus import paragraphs, tiny_config


@pytest.fixture(scope="module")
def sp(tiny_corpus) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))


def test_the_model_takes_the_tokenizers_vocabulary_and_special_ids(sp):
    config = fit_to_tokenizer(ModelConfig(architecture="encoder_decoder", vocab_size=32000, pad_id=7, mask_id=9,
                                          block_size=64), sp)
    assert (config.vocab_size, config.pad_id, config.mask_id) == (sp.get_piece_size(), 0, 4)
    objective = Objective.for_model(config, sp)
    assert objective.special_ids == (0, 1, 2, 3, 4)  # <PAD> <UNK> <BOS> <EOS> <MASK>
    # No <extra_id_N> pieces: T5's place for sentinels, the top of the vocabulary.
    assert objective.sentinel_ids[:2] == (config.vocab_size - 1, config.vocab_size - 2)


def test_a_masked_lm_needs_a_mask_piece(tmp_path):
    spm.SentencePieceTrainer.train(sentence_iterator=iter(paragraphs("en")), model_prefix=str(tmp_path / "plain"),
                                   vocab_size=200, num_threads=1, minloglevel=2)
    plain = spm.SentencePieceProcessor(model_file=str(tmp_path / "plain.model"))
    with pytest.raises(ValueError, match="mask piece"):
        fit_to_tokenizer(ModelConfig(architecture="encoder_only"), plain)
    assert fit_to_tokenizer(ModelConfig(architecture="decoder_only"), plain).vocab_size == 200


def test_a_compute_budget_picks_the_model(tiny_corpus, sp):
    config = resolve_model_config(tiny_config(tiny_corpus, "unused", budget={"compute": 1e12}), sp)
    assert config.vocab_size == sp.get_piece_size() and config.block_size == 32
    assert count_parameters(config) == pytest.approx(chinchilla_optimal(1e12)[0], rel=0.5)
