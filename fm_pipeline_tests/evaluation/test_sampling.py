import pytest
import sentencepiece as spm
import torch

from fm_pipeline.evaluation.sampling import sample
from fm_pipeline.modeling.config import ModelConfig
from fm_pipeline.modeling.models import build_model
from fm_pipeline.modeling.objectives import fit_to_tokenizer


@pytest.mark.parametrize("architecture", ["decoder_only", "encoder_only", "encoder_decoder"])
def test_each_architecture_answers_every_prompt_reproducibly(tiny_corpus, architecture):
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    torch.manual_seed(0)
    config = fit_to_tokenizer(ModelConfig(architecture=architecture, n_layer=1, n_head=2, d_model=16,
                                          block_size=32), sp)
    model = build_model(config)
    prompts = ["The harbor", "Die Brücke"]
    outputs = sample(model, sp, prompts, max_new_tokens=6)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    assert outputs == sample(model, sp, prompts, max_new_tokens=6)
    assert model.training  # the mode is restored
