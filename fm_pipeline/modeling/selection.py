"""Which architecture a task wants, after the usual comparison of the three families:

- `encoder_only` (BERT): understanding, a label or span per text or per token, which wants context from both
  sides: classification, sentiment, NER, extractive question answering, embeddings and retrieval.
- `decoder_only` (GPT, LLaMA): open-ended generation continuing a prefix: text and code generation, chat and
  dialogue, language modelling.
- `encoder_decoder` (T5): sequence-to-sequence, a whole input conditioning an output of another length:
  translation, summarization, data-to-text, paraphrase, structured generation.

Summarization is often listed under both decoders and encoder-decoders; as a conditional rewrite of a given
input it goes to `encoder_decoder` here, like translation.
"""

from __future__ import annotations

TASK_ARCHITECTURES: dict[str, str] = {
    **dict.fromkeys(
        ("classification", "text_classification", "sentiment_analysis", "ner", "named_entity_recognition",
         "token_classification", "question_answering", "extractive_qa", "embedding", "retrieval", "understanding"),
        "encoder_only",
    ),
    **dict.fromkeys(
        ("generation", "text_generation", "code_generation", "chat", "dialogue", "language_modeling",
         "completion"),
        "decoder_only",
    ),
    **dict.fromkeys(
        ("seq2seq", "translation", "summarization", "data_to_text", "paraphrase", "structured_generation"),
        "encoder_decoder",
    ),
}


def select_architecture(task_type: str) -> str:
    """The architecture for `task_type` (case, spaces and hyphens ignored: "Named entity recognition" works).
    Unknown tasks raise ValueError listing the known ones, rather than falling back to a silent default."""
    key = task_type.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in TASK_ARCHITECTURES:
        raise ValueError(f"unknown task type {task_type!r}; known: {sorted(TASK_ARCHITECTURES)}")
    return TASK_ARCHITECTURES[key]
