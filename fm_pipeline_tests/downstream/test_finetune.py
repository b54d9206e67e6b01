"""Task heads and the fine-tuning strategies on the tiny checkpoint, with real task examples: head shapes,
the layer groups the ULMFiT schedules see, deterministic scores, and the evaluation table."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
import sentencepiece as spm
import torch

from fm_pipeline.downstream.crosslingual import crosslingual_transfer, sample_parallel_set
from fm_pipeline.downstream.evaluate import AFTER, BEFORE, downstream_metrics, downstream_rows, evaluate_downstream
from fm_pipeline.downstream.finetune import run_strategy, train_task_model
from fm_pipeline.downstream.heads import IGNORE, TaskModel, collate, encode, task_layer_groups
from fm_pipeline.downstream.task_config import STRATEGIES, TaskTrainConfig
from fm_pipeline.downstream.tasks import read_task
from fm_pipeline.modeling.checkpoint import load_checkpoint

CONFIG = TaskTrainConfig(epochs=2, batch_size=8)


def small(name: str, train: int = 24, test: int = 12):
    data = read_task(name)
    return replace(data, train=data.train[:train], test=data.test[:test])


def test_heads_have_one_output_per_label_and_every_parameter_a_group(domain_data, one_thread):
    backbone, _ = load_checkpoint(domain_data.checkpoint)
    ner, fin = small("ncbi_disease"), small("financial_sentiment")
    model = TaskModel(backbone, {ner.name: len(ner.labels), fin.name: len(fin.labels)},
                      {ner.name: ner.spec.kind, fin.name: fin.spec.kind})
    sp = spm.SentencePieceProcessor(model_file=str(domain_data.tokenizer))
    enc = encode(ner, ner.train[:4], sp, 32)
    ids, mask, targets = collate(enc, [0, 1, 2, 3], sp.pad_id(), torch.device("cpu"))
    assert model(ner.name, ids, mask).shape == (4, ids.shape[1], 3)
    assert targets.shape == ids.shape and int((targets != IGNORE).sum()) == sum(len(w) for w in enc.words)
    assert all(len(w) <= len(e.tokens) for w, e in zip(enc.words, ner.train[:4], strict=True))
    enc = encode(fin, fin.train[:5], sp, 32)
    ids, mask, targets = collate(enc, list(range(5)), sp.pad_id(), torch.device("cpu"))
    assert model(fin.name, ids, mask).shape == (5, 3) and targets.tolist() == [
        fin.labels.index(e.label) for e in fin.train[:5]]
    groups = task_layer_groups(model)
    names = [n for g in groups for n in g]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert groups[0][:4] == ["heads.ncbi_disease.weight", "heads.ncbi_disease.bias",
                             "heads.financial_sentiment.weight", "heads.financial_sentiment.bias"]
    assert len(groups) == backbone.config.n_layer + 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_scores_the_same_twice(domain_data, one_thread, strategy):
    task = small("financial_sentiment")
    others = [small("scicite")]
    a = run_strategy(domain_data.checkpoint, domain_data.tokenizer, task, strategy, CONFIG, others)
    b = run_strategy(domain_data.checkpoint, domain_data.tokenizer, task, strategy, CONFIG, others)
    assert a.f1 == b.f1 and 0.0 <= a.f1 <= 1.0
    assert a.steps == 2 * (3 + (3 if strategy == "multi_task_learning" else 0))  # 24 examples in batches of 8


def test_gradual_unfreezing_leaves_the_embeddings_untouched_early(domain_data, one_thread):
    task = small("financial_sentiment", train=8)
    before, _ = load_checkpoint(domain_data.checkpoint)
    trained = train_task_model(domain_data.checkpoint, domain_data.tokenizer, [task], "gradual_unfreezing",
                               replace(CONFIG, epochs=1))
    assert torch.equal(trained.model.backbone.embed.tokens.weight, before.embed.tokens.weight)


def test_evaluation_table_has_the_baseline_row_and_flat_keys(domain_data, one_thread):
    tasks = {"ncbi_disease": small("ncbi_disease")}
    checkpoints = {BEFORE: (domain_data.checkpoint, domain_data.tokenizer),
                   AFTER: (domain_data.checkpoint, domain_data.tokenizer)}
    scores = evaluate_downstream(checkpoints, list(tasks), ["discriminative_lr"], replace(CONFIG, epochs=1),
                                 multi_task=["ncbi_disease"])
    assert [(s.task, s.strategy, s.checkpoint) for s in scores] == [
        ("ncbi_disease", "discriminative_lr", BEFORE), ("ncbi_disease", "discriminative_lr", AFTER)]
    assert scores[0].f1 == scores[1].f1  # one checkpoint on both sides: the same seeded run
    rows = downstream_rows(scores)
    assert [r["checkpoint"] for r in rows] == ["pretrained (baseline)", "domain-adapted"]
    assert rows[0]["change"] is None and rows[1]["change"] == 0.0
    metrics = downstream_metrics(scores, "discriminative_lr")
    assert set(metrics) == {"downstream/ncbi_disease/f1_before", "downstream/ncbi_disease/f1_after",
                            "downstream/ncbi_disease/discriminative_lr/f1_before",
                            "downstream/ncbi_disease/discriminative_lr/f1_after"}
    with pytest.raises(ValueError, match="unknown strategies"):
        evaluate_downstream(checkpoints, list(tasks), ["bitfit"], CONFIG)


def test_crosslingual_sets_are_parallel_and_transfer_is_scored_per_language(domain_data, one_thread):
    passages = sample_parallel_set()
    assert Counter(p.lang for p in passages) == {"en": 17, "ko": 5, "es": 4, "fr": 4, "de": 4}
    assert {p.label for p in passages if p.lang != "en"} == {p.label for p in passages if p.lang == "en"} == {
        "ref-en-0001", "ref-en-0002", "ref-en-0003", "ref-en-0004"}
    a = crosslingual_transfer(domain_data.checkpoint, domain_data.tokenizer, passages, CONFIG)
    b = crosslingual_transfer(domain_data.checkpoint, domain_data.tokenizer, passages, CONFIG)
    assert a == b
    assert [(s.lang, s.passages) for s in a] == [("de", 4), ("en", 17), ("es", 4), ("fr", 4), ("ko", 5)]
    assert all(0.0 <= s.accuracy <= 1.0 for s in a)
