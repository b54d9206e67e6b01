"""Language adaptation on the tiny multilingual corpus (the sample books in en, de, fr, es) with the tiny
pretrained model: the replay share is exact in every batch, forgetting has one row per other language, and
each strategy's checkpoint folder reproduces the adapted model exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm
import torch
from safetensors.torch import load_file

import fm_pipeline
from fm_pipeline.adaptation.adapt import MixedSampler, replay_rows, replay_sampler
from fm_pipeline.adaptation.bottleneck import set_language
from fm_pipeline.adaptation.language import (
    adapt_language,
    evaluate_languages,
    load_language_model,
    split_by_language,
)
from fm_pipeline.adaptation.language_config import LanguageAdaptConfig
from fm_pipeline.lake.parquet_io import list_shards
from fm_pipeline.modeling.checkpoint import load_checkpoint
from fm_pipeline.tokenization.packed import PackedTokens
from fm_pipeline_tests.training.tiny_corpus import LANGS, paragraphs

REFERENCE = Path(fm_pipeline.__file__).parent / "sample_data" / "raw" / "reference_data"


def reference_rows() -> list[dict[str, str]]:
    """The sample's reference articles as balanced_shards rows (`lang` from the id, `meta` as JSON)."""
    rows = []
    for name in ("reference_en.jsonl", "reference_multilingual.jsonl"):
        for line in (REFERENCE / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows.append({"id": r["id"], "text": r["text"], "lang": r["id"].split("-")[1],
                         "meta": json.dumps(r.get("meta") or {})})
    return rows


def tiny_train_count(lang: str) -> int:
    return sum(1 for i, _ in enumerate(paragraphs(lang)) if i % 5 != 4)


def config(strategy: str, **overrides) -> LanguageAdaptConfig:
    return LanguageAdaptConfig.profile("cpu_small", strategy, **{"steps": 6, "eval_docs_per_lang": 4, **overrides})


def logits(model: torch.nn.Module, sp: spm.SentencePieceProcessor) -> torch.Tensor:
    ids = torch.tensor([sp.encode(paragraphs("de")[0], add_bos=True)[:32]])
    with torch.no_grad():
        return model.eval()(ids)[0]


def test_replay_rows_round_the_share_and_keep_one_target_row():
    assert [replay_rows(8, 0.25), replay_rows(8, 0.0), replay_rows(4, 0.9), replay_rows(6, 0.5)] == [2, 0, 3, 3]


def test_split_by_language_and_the_replay_share_is_exact_in_every_batch(tiny_corpus, tmp_path):
    n_de, n_other = split_by_language(tiny_corpus.root / "shards" / "train", "de", tmp_path / "de", tmp_path / "rest")
    assert n_de == tiny_train_count("de")
    assert n_other == sum(tiny_train_count(lang) for lang in LANGS if lang != "de")
    sampler = replay_sampler(tiny_corpus.tokenizer, list_shards(tmp_path / "de"), list_shards(tmp_path / "rest"),
                             tmp_path / "tokens", 33, 8, 0.25, seed=0, processes=1)
    assert isinstance(sampler, MixedSampler)
    target = np.lib.stride_tricks.sliding_window_view(PackedTokens.open(tmp_path / "tokens", "domain").tokens, 33)
    replay = np.lib.stride_tricks.sliding_window_view(PackedTokens.open(tmp_path / "tokens", "general").tokens, 33)
    for _ in range(3):
        batch = sampler.next_batch().numpy()
        assert batch.shape == (8, 33)
        sides = [((target == row).all(axis=1).any(), (replay == row).all(axis=1).any()) for row in batch]
        assert sides == [(True, False)] * 6 + [(False, True)] * 2


def test_continual_forgetting_has_one_row_per_other_language_and_the_folder_reproduces_it(domain_data,
                                                                                          tiny_corpus, tmp_path):
    shards = tiny_corpus.root / "shards"
    result = adapt_language(domain_data.checkpoint, tiny_corpus.tokenizer, shards / "train", shards / "val", "de",
                            tmp_path / "de", config("continual"), processes=1)
    rows = result.forgetting()
    assert [r["lang"] for r in rows] == ["en", "es", "fr"]
    for row in rows:
        assert row["ppl_change"] == pytest.approx(row["ppl_after"] / row["ppl_before"] - 1)
    m = result.metrics()
    assert m["eval/lang_ppl_before"] == result.before["de"]["val_ppl"]
    assert m["eval/max_forgetting"] == max(r["ppl_change"] for r in rows)
    assert result.target_train_documents == tiny_train_count("de") and result.trainable_params == result.total_params
    assert result.replay_share == 0.25 and result.retrieval_before is None  # the books have no translations
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    docs = [(lang, text) for lang, text in _val_docs(shards / "val")]
    assert evaluate_languages(load_language_model(tmp_path / "de"), sp, docs, config("continual")) == result.after
    assert m["eval/lang_bpb_after"] < m["eval/lang_bpb_before"]


def _val_docs(folder: Path) -> list[tuple[str, str]]:
    table = pq.read_table(list_shards(folder)[0], columns=["lang", "text"]).to_pylist()
    return [(r["lang"], r["text"]) for r in table]


@pytest.mark.parametrize("strategy", ["adapter", "lora"])
def test_base_plus_one_languages_adapter_reproduces_the_adapted_model_and_the_base_is_untouched(
        strategy, domain_data, tiny_corpus, tmp_path):
    shards = tiny_corpus.root / "shards"
    result = adapt_language(domain_data.checkpoint, tiny_corpus.tokenizer, shards / "train", shards / "val", "fr",
                            tmp_path / "fr", config(strategy), processes=1)
    base = load_file(str(domain_data.checkpoint / "model.safetensors"))
    saved = load_file(str(tmp_path / "fr" / "model.safetensors"))
    assert saved.keys() == base.keys() and all(torch.equal(saved[k], base[k]) for k in base)
    assert 0 < result.trainable_params < result.total_params / 5
    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    adapted = load_language_model(tmp_path / "fr")
    assert evaluate_languages(adapted, sp, _val_docs(shards / "val"), config(strategy)) == result.after
    assert result.after["fr"] != result.before["fr"], "the adapter changed the model"


def test_switching_bottleneck_adapters_changes_only_the_active_language(domain_data, tiny_corpus, tmp_path):
    from fm_pipeline.adaptation.bottleneck import (
        BottleneckSpec,
        adapter_state,
        add_language_adapter,
        load_language_adapter,
        remove_adapters,
        save_language_adapter,
    )
    from fm_pipeline.modeling.objectives import Objective
    from fm_pipeline.training.data import WindowSampler
    from fm_pipeline.training.finetune import FinetuneConfig, finetune

    sp = spm.SentencePieceProcessor(model_file=str(tiny_corpus.tokenizer))
    model, _ = load_checkpoint(domain_data.checkpoint)
    base_logits = logits(model, sp)
    sampler = WindowSampler(PackedTokens.open(tiny_corpus.tokens, "train"), 33, 8, seed=0)
    objective = Objective.for_model(model.config, sp)
    train = FinetuneConfig(steps=5, lr=1e-2, warmup_steps=1, log_every=5)
    spec = BottleneckSpec(reduction=4)
    add_language_adapter(model, "de", spec)
    assert torch.equal(logits(model, sp), base_logits), "a fresh adapter is the identity"
    finetune(model, sampler, objective, train)
    de_logits = logits(model, sp)
    add_language_adapter(model, "fr", spec)
    finetune(model, sampler, objective, train)
    fr_logits = logits(model, sp)
    assert not torch.equal(fr_logits, de_logits) and not torch.equal(de_logits, base_logits)
    set_language(model, "de")
    assert torch.equal(logits(model, sp), de_logits), "training fr's adapter left de's as it was"
    set_language(model, None)
    assert torch.equal(logits(model, sp), base_logits), "and the base model too"
    for lang in ("de", "fr"):
        folder = tmp_path / lang
        folder.mkdir()
        save_language_adapter(folder, adapter_state(model, lang), lang, spec)
    fresh, _ = load_checkpoint(domain_data.checkpoint)
    assert load_language_adapter(fresh, tmp_path / "fr") == "fr"
    assert torch.equal(logits(fresh, sp), fr_logits)
    assert load_language_adapter(fresh, tmp_path / "de") == "de"
    assert torch.equal(logits(fresh, sp), de_logits), "switching to de gives de's model bit for bit"
    assert torch.equal(logits(remove_adapters(fresh), sp), base_logits)


def test_output_head_trains_only_an_untied_head(domain_data, tiny_corpus, tmp_path):
    shards = tiny_corpus.root / "shards"
    result = adapt_language(domain_data.checkpoint, tiny_corpus.tokenizer, shards / "train", shards / "val", "es",
                            tmp_path / "es", config("output_head"), processes=1)
    base = load_file(str(domain_data.checkpoint / "model.safetensors"))
    model, model_config = load_checkpoint(tmp_path / "es")
    assert model_config.tie_embeddings is False
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in base.items() if k != "head.weight")
    assert not torch.equal(state["head.weight"], state["embed.tokens.weight"])
    assert result.trainable_params == state["head.weight"].numel()
    assert result.after["es"]["val_bpb"] < result.before["es"]["val_bpb"]


def test_alignment_trains_on_the_sample_translations_and_reports_retrieval(domain_data, tiny_corpus, tmp_path):
    shards = tmp_path / "shards"
    extra = [r for r in reference_rows() if r["lang"] in ("en", "de")]
    for split in ("train", "val"):
        rows = pq.read_table(tiny_corpus.root / "shards" / split / "part-00000.parquet").to_pylist()
        rows = [{**r, "meta": "{}"} for r in rows] + (extra if split == "train" else [])
        (shards / split).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), shards / split / "part-00000.parquet")
    result = adapt_language(domain_data.checkpoint, tiny_corpus.tokenizer, shards / "train", shards / "val", "de",
                            tmp_path / "de", config("alignment", steps=8), processes=1)
    assert result.parallel_pairs == 4  # ref-de-0001 translates ref-en-0004 paragraph for paragraph
    assert len(result.contrastive_history) == 8
    assert set(result.retrieval_before) == {"forward", "backward", "mean"}
    assert result.metrics()["eval/retrieval_accuracy_after"] == result.retrieval_after["mean"]
