"""Named run configs for a whole materialization (`python -m fm_pipeline.materialize --profile ...`): by asset
key, the launchpad YAML each asset's runs get.

- `default`: every asset's own defaults. Each published model is trained and checked as always; nothing is
  trained only to be compared.
- `thorough`: the comparisons too: every adaptation strategy beside the published one (each a nested MLflow run
  and a row of the asset's comparison table) and compression's thorough profile (longer fine-tunes, more timing
  rounds, generation timed compiled).

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

PUBLISHED_STRATEGY = DomainAdaptedCheckpointConfig().strategy


def _op_config(asset: str, **config: Any) -> dict[str, dict]:
    return {"ops": {asset: {"config": config}}}


COMPARED_STRATEGIES = [s for s in STRATEGIES if s != PUBLISHED_STRATEGY]
LANGUAGE_ASSET = "language_adapted_checkpoint"
COMPARED_LANGUAGE_STRATEGIES = [s for s in LANGUAGE_STRATEGIES if s != LanguageAdaptedCheckpointConfig().strategy]

PROFILES: dict[str, dict[str, dict]] = {
    "default": {},
    "thorough": {
        "domain_adapted_checkpoint": _op_config("domain_adapted_checkpoint", compare=COMPARED_STRATEGIES),
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
