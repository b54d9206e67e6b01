"""Named run configs for a whole materialization (`python -m fm_pipeline.materialize --profile ...`): by asset
key, the launchpad YAML each asset's runs get.

- `default`: every asset's own defaults but one: each published model is trained and checked as always, and
  nothing is trained only to be compared or scored, so the downstream task fine-tunes (eight per run, each
  longer than the adaptation itself on two cores) are left to `thorough` and to materializations from the UI,
  where the asset's default scores one strategy. That keeps the first `make run` near five minutes.
- `thorough`: the comparisons too: the pretrained model's sparse counterpart at equal compute (4 experts, top-1),
  every adaptation strategy beside the published one (each a nested MLflow run and a row of the asset's comparison
  table), every downstream fine-tuning strategy (a row each of its `downstream` table) and compression's thorough
  profile (longer fine-tunes, more timing rounds, generation timed compiled).

`PARTITIONS` picks the keys of the dynamically partitioned assets per profile: `language_adapted_checkpoint`
runs for no language by default (each language is a training run, and `make run` stays as fast as it was; the
partitions are registered all the same, ready to launch from the UI) and for every language, with every
language strategy compared, in `thorough`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fm_pipeline.adaptation.config import STRATEGIES
from fm_pipeline.adaptation.language_config import LANGUAGE_STRATEGIES
from fm_pipeline.defs.assets.domain_adapted_checkpoint import DomainAdaptedCheckpointConfig
from fm_pipeline.defs.assets.language_adapted_checkpoint import LanguageAdaptedCheckpointConfig
from fm_pipeline.downstream.task_config import STRATEGIES as TASK_STRATEGIES
from fm_pipeline.training.equal_compute import MOE_PREFIX

PUBLISHED_STRATEGY = DomainAdaptedCheckpointConfig().strategy


def _op_config(asset: str, **config: Any) -> dict[str, dict]:
    return {"ops": {asset: {"config": config}}}


def _graph_op_config(asset: str, op: str, **config: Any) -> dict[str, dict]:
    """The config of one op of a graph-backed asset."""
    return {"ops": {asset: {"ops": {op: {"config": config}}}}}


COMPARED_STRATEGIES = [s for s in STRATEGIES if s != PUBLISHED_STRATEGY]
PUBLISHED_TASK_STRATEGY = DomainAdaptedCheckpointConfig().downstream_strategies[0]
TASK_STRATEGY_ORDER = [PUBLISHED_TASK_STRATEGY, *(s for s in TASK_STRATEGIES if s != PUBLISHED_TASK_STRATEGY)]
"""Every downstream strategy, the default one first (it keeps giving the flat `downstream/<task>/f1_*` keys)."""
LANGUAGE_ASSET = "language_adapted_checkpoint"
COMPARED_LANGUAGE_STRATEGIES = [s for s in LANGUAGE_STRATEGIES if s != LanguageAdaptedCheckpointConfig().strategy]
COMPARED_ARCHITECTURES = [f"{MOE_PREFIX}4"]
"""Beside the published (dense) pretrained model: the sparse counterpart `benchmarks.moe` measures by default."""

PROFILES: dict[str, dict[str, dict]] = {
    "default": {"domain_adapted_checkpoint": _op_config("domain_adapted_checkpoint", downstream_strategies=[])},
    "thorough": {
        "pretrained_checkpoint": _graph_op_config("pretrained_checkpoint", "prepare_pretraining",
                                                  compare=COMPARED_ARCHITECTURES),
        "domain_adapted_checkpoint": _op_config("domain_adapted_checkpoint", compare=COMPARED_STRATEGIES,
                                                downstream_strategies=TASK_STRATEGY_ORDER),
        "compressed_model": _op_config("compressed_model", profile="thorough"),
        LANGUAGE_ASSET: _op_config(LANGUAGE_ASSET, compare=COMPARED_LANGUAGE_STRATEGIES),
    },
}
"""Run config by asset key, per profile."""

PARTITIONS: dict[str, dict[str, list[str] | None]] = {
    "default": {LANGUAGE_ASSET: []},
    "thorough": {LANGUAGE_ASSET: None},
}
"""Keys of the dynamically partitioned assets, per profile (None: every key the instance holds)."""


def merge_run_configs(configs: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """One run config from several (the assets of one run): nested mappings merged key by key, a later value
    winning over an earlier one where both set it."""
    merged: dict[str, Any] = {}
    for config in configs:
        for key, value in (config or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = merge_run_configs([merged[key], value])
            else:
                merged[key] = value
    return merged
