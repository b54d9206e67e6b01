"""A few model outputs for prompts, to eyeball what a checkpoint has learned.

decoder_only continues the prompt by sampling. The other architectures do not generate free text; they show
their fill-in instead: encoder_only predicts `max_new_tokens` mask tokens appended to the prompt (BERT),
encoder_decoder decodes, greedily, the span hidden behind a sentinel appended to the prompt (T5).
"""

from __future__ import annotations

from collections.abc import Sequence

import sentencepiece as spm
import torch
from torch import nn

from fm_pipeline.modeling.objectives import Objective


@torch.no_grad()
def sample(
    model: nn.Module, sp: spm.SentencePieceProcessor, prompts: Sequence[str], max_new_tokens: int = 48,
    temperature: float = 0.8, top_k: int | None = 50, seed: int = 0,
) -> list[str]:
    """The continuation (or fill-in) of each prompt, without the prompt itself."""
    config = model.config
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    for prompt in prompts:
        ids = [sp.bos_id(), *sp.encode(prompt)]
        if config.architecture == "decoder_only":
            generator = torch.Generator(device).manual_seed(seed)
            idx = torch.tensor([ids], device=device)
            out = model.generate(idx, max_new_tokens, temperature, top_k, eos_id=sp.eos_id(), generator=generator)
            new = out[0, len(ids) :].tolist()
        elif config.architecture == "encoder_only":
            ids = [*ids, *[config.mask_id] * max_new_tokens, sp.eos_id()][-config.block_size :]
            logits, _ = model(torch.tensor([ids], device=device))
            new = logits[0, -max_new_tokens - 1 : -1].argmax(-1).tolist()
        else:
            new = _fill_span(model, sp, ids, max_new_tokens, device)
        outputs.append(sp.decode([i for i in new if i != sp.eos_id()]))
    model.train(was_training)
    return outputs


def _fill_span(model: nn.Module, sp: spm.SentencePieceProcessor, ids: list[int], max_new_tokens: int,
               device: torch.device) -> list[int]:
    """T5 fill-in: the encoder sees `prompt <sentinel_0>`; the decoder, started from the pad id, writes
    `<sentinel_0> span...`, and the span ends at the next sentinel or EOS."""
    config = model.config
    sentinels = Objective.for_model(config, sp).sentinel_ids
    src = torch.tensor([[*ids, sentinels[0], sp.eos_id()][-config.block_size :]], device=device)
    dec = [config.pad_id]
    for _ in range(max_new_tokens + 1):
        logits, _ = model(src, torch.tensor([dec[-config.block_size :]], device=device))
        next_id = int(logits[0, -1].argmax())
        if next_id == sp.eos_id() or (next_id in sentinels and len(dec) > 1):
            break
        dec.append(next_id)
    return [i for i in dec[1:] if i not in sentinels]
