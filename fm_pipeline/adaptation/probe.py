"""A linear probe of what the model's representations know about domains: mean-pooled final hidden states of
token windows, a multinomial logistic regression separating the domains, accuracy on held-out documents.

The split is by document (every `test_every`-th document of each domain is held out), so windows of one
document never sit on both sides; training is full-batch L-BFGS from zero weights, so the result is
deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn

from fm_pipeline.modeling.attention import padding_mask

MIN_WINDOW = 16  # a document's last, shorter window is pooled only when it has at least this many tokens


def hidden_states(model: nn.Module, idx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, d) final hidden states (after the stack's final norm, before the output projection): the
    decoder's for decoder_only, the encoder's for encoder_only and encoder_decoder (what a classifier on a T5
    encoder pools). `mask` (B, T), 1 on real tokens, keeps an encoder's attention off right padding (a causal
    decoder never lets padding reach a real position)."""
    if model.config.architecture == "decoder_only":
        return model.decoder(model.embed(idx))
    if mask is None:
        return model.encoder(model.embed(idx))
    return model.encoder(model.embed(idx), mask=padding_mask(mask))


def mean_pooled(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, d) means of (B, T, d) hidden states over each row's first `lengths[b]` positions (the rest is
    padding)."""
    real = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    return (hidden * real).sum(dim=1) / lengths[:, None].to(hidden.dtype)


@torch.no_grad()
def pooled_features(
    model: nn.Module, sp: spm.SentencePieceProcessor, texts: Sequence[str], block_size: int | None = None,
    max_windows: int = 8, batch_size: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, d), document index (N,)): one mean-pooled vector per `block_size`-token window, up to
    `max_windows` consecutive windows from each document's start. A decoder_only model pools `batch_size`
    windows of several documents per forward pass, a short last window padded at its end (causal attention
    never looks ahead, so its real positions are unchanged) and pooled over its real tokens only."""
    block_size = block_size or model.config.block_size
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    windows, owners = [], []
    for doc, text in enumerate(texts):
        ids = torch.tensor(sp.encode(text, add_bos=True, add_eos=True), dtype=torch.long)
        full = min(len(ids) // block_size, max_windows)
        windows += list(ids[: full * block_size].view(full, block_size)) if full else []
        rest = ids[full * block_size : (full + 1) * block_size]
        if full < max_windows and (len(rest) >= MIN_WINDOW or not full) and len(rest):
            windows.append(rest)
        owners += [doc] * (len(windows) - len(owners))
    causal = model.config.architecture == "decoder_only"
    step = batch_size if causal else 1
    features = []
    for i in range(0, len(windows), step):
        chunk = windows[i : i + step]
        lengths = torch.tensor([len(w) for w in chunk])
        batch = torch.zeros((len(chunk), int(lengths.max())), dtype=torch.long)
        for row, window in enumerate(chunk):
            batch[row, : len(window)] = window
        features.append(mean_pooled(hidden_states(model, batch.to(device)).float().cpu(), lengths))
    model.train(was_training)
    return torch.cat(features), torch.tensor(owners)


@dataclass(frozen=True)
class ProbeResult:
    accuracy: float
    """On the held-out documents' windows."""
    train_accuracy: float
    n_train: int
    n_test: int


def linear_probe(
    features: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, l2: float = 1e-3, max_iter: int = 200,
) -> ProbeResult:
    """Fit a multinomial logistic regression on the rows where `test` is False (features standardized with
    the training rows' mean and deviation, L2 penalty `l2` on the weights) and score the rows where it is
    True."""
    x = features.double()
    train = ~test
    mean, std = x[train].mean(dim=0), x[train].std(dim=0).clamp_min(1e-8)
    x = (x - mean) / std
    classes = int(labels.max()) + 1
    weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x[train] @ weight + bias, labels[train]) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (x @ weight + bias).argmax(dim=1)
    correct = predicted == labels

    def share(mask: torch.Tensor) -> float:
        return float(correct[mask].double().mean()) if bool(mask.any()) else float("nan")

    return ProbeResult(share(test), share(train), int(train.sum()), int(test.sum()))


def probe_accuracy(
    model: nn.Module, sp: spm.SentencePieceProcessor, docs_by_domain: Mapping[str, Sequence[str]],
    max_windows: int = 8, test_every: int = 4, batch_size: int = 32,
) -> ProbeResult:
    """Domain classification from the model's pooled hidden states: domains are labelled in sorted order, and
    document i of a domain is held out when i % test_every == test_every - 1."""
    feats, labels, test = [], [], []
    for label, domain in enumerate(sorted(docs_by_domain)):
        f, owner = pooled_features(model, sp, docs_by_domain[domain], max_windows=max_windows,
                                   batch_size=batch_size)
        feats.append(f)
        labels.append(torch.full((len(f),), label))
        test.append(owner % test_every == test_every - 1)
    return linear_probe(torch.cat(feats), torch.cat(labels), torch.cat(test))
