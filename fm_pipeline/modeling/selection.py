"""Which architecture a task wants, after the usual comparison of the three families:

- `encoder_only` (BERT): understanding, a label or span per text or per token, which wants context from both
  sides: classification, sentiment, NER, extractive question answering, embeddings and retrieval.
- `decoder_only` (GPT, LLaMA): open-ended generation continuing a prefix: text and code generation, chat and
  dialogue, language modelling.
- `encoder_decoder` (T5): sequence-to-sequence, a whole input conditioning an output of another length:
  translation, summarization, data-to-text, paraphrase, structured generation.

Summarization is often listed under both decoders and encoder-decoders; as a conditional rewrite of a given
input it goes to `encoder_decoder` here, like translation.

`decide_architecture` goes further, for `architecture: auto`: it weighs the task with the shape of input and
output (sequence length, whether the output's length differs from the input's, whether bidirectional context
is needed) and compute (training budget, inference latency, KV-cache memory), and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


# `architecture: auto`: the task, then the shape of input and output, then compute, each a vote with its reason.

GENERATES = {"decoder_only": True, "encoder_decoder": True, "encoder_only": False}
LONG_INPUT_RATIO = 4
"""An input at least this many times longer than the output (summarization-like) favours an encoder: it reads
the input once, bidirectionally, and the decoder's self-attention and KV cache cover the output only."""
SMALL_BUDGET_FLOPS = 1e18
"""Below this training budget (Chinchilla: about 90M parameters on 1.8B tokens), the objective's learning
signal per FLOP matters: next-token prediction scores every position, masked LM and span corruption ~15%."""


@dataclass(frozen=True)
class Requirements:
    """What `decide_architecture` weighs, in the usual three groups; None means "not stated"."""

    task: str = "language_modeling"
    seq_len: int | None = None
    """Input tokens per example."""
    output_tokens: int | None = None
    """Tokens generated per example: 0 for a label, tag or embedding; None to go by the task."""
    bidirectional: bool | None = None
    """Whether each position needs context from both sides (None: as the task implies)."""
    compute_budget_flops: float | None = None
    latency_critical: bool = False
    """Inference latency matters more than training cost (online serving)."""
    kv_cache_bytes_per_token: float | None = None
    """Bytes a decoder's KV cache takes per cached token (from `sizing.memory_estimate`), to weigh against
    `memory_budget_bytes`."""
    memory_budget_bytes: float | None = None
    """Inference memory for the KV cache of one sequence."""


@dataclass(frozen=True)
class Decision:
    architecture: str
    votes: dict[str, int]
    reasons: list[str] = field(default_factory=list)
    """One line per vote: its criteria group, the architecture it favours, and why."""


def decide_architecture(req: Requirements) -> Decision:
    """The architecture with the most votes (ties go to the task's own). Task type votes 3; input/output
    shape 2 each (output generated or not, bidirectional context, a long input for a short output); compute
    1 each (a small training budget, inference latency, KV-cache memory). The reasons say which fired."""
    by_task = select_architecture(req.task)
    votes = dict.fromkeys(GENERATES, 0)
    reasons: list[str] = []

    def vote(group: str, architecture: str, weight: int, why: str) -> None:
        votes[architecture] += weight
        reasons.append(f"{group}: +{weight} {architecture}: {why}")

    vote("task", by_task, 3, f"{req.task!r} is a task for {by_task}")
    generates = GENERATES[by_task] if req.output_tokens is None else req.output_tokens > 0
    bidirectional = by_task != "decoder_only" if req.bidirectional is None else req.bidirectional
    if not generates:
        vote("shape", "encoder_only", 2, "no text is generated: one pass labels the text or each token")
    elif bidirectional:
        vote("shape", "encoder_decoder", 2, "output is generated from an input that needs context from both "
                                            "sides: a bidirectional encoder and a causal decoder")
    else:
        vote("shape", "decoder_only", 2, "output continues the input causally: one causal stack")
    if generates and req.seq_len and req.output_tokens and req.seq_len >= LONG_INPUT_RATIO * req.output_tokens:
        vote("shape", "encoder_decoder", 2, f"input ({req.seq_len} tokens) at least {LONG_INPUT_RATIO}x the output "
                                            f"({req.output_tokens}): read once by the encoder, the decoder attends "
                                            "over the output only")
    if req.compute_budget_flops is not None and req.compute_budget_flops < SMALL_BUDGET_FLOPS and generates:
        vote("compute", "decoder_only", 1, f"training budget {req.compute_budget_flops:.2g} FLOPs is small: "
                                           "next-token prediction learns from every position")
    if req.latency_critical:
        fast = "encoder_only" if not generates else (
            "encoder_decoder" if bidirectional or (req.seq_len or 0) > (req.output_tokens or 0) else "decoder_only")
        vote("compute", fast, 1, "latency: " + ("a single forward pass, no decoding loop" if not generates else
                                                "fewest sequential decoding steps over the shortest cache"))
    if generates and req.kv_cache_bytes_per_token and req.memory_budget_bytes:
        cached = (req.seq_len or 0) + (req.output_tokens or 0)
        need = cached * req.kv_cache_bytes_per_token
        if need > req.memory_budget_bytes:
            vote("compute", "encoder_decoder", 1, f"a decoder's KV cache for {cached} tokens needs {need / 2**20:.1f} "
                                                  f"MiB > {req.memory_budget_bytes / 2**20:.1f} MiB: an encoder-"
                                                  "decoder caches the output's self-attention only")
        else:
            reasons.append(f"compute: KV cache for {cached} tokens ({need / 2**20:.1f} MiB) fits the memory budget")
    best = max(votes.values())
    winner = by_task if votes[by_task] == best else next(a for a, v in votes.items() if v == best)
    return Decision(winner, votes, reasons)
