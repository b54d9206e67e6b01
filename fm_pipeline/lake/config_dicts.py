"""Config dataclasses to and from the plain dicts stored as JSON in the lake (`config.json`,
`train_config.json`, ...): one place that refuses unknown keys, so a misspelt knob fails loudly instead of
silently keeping its default, and that turns tuples into JSON lists."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any


def known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data`, after checking that every key is a field of the dataclass `cls`."""
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
    return dict(data)


def plain_dict(config: Any) -> dict[str, Any]:
    """The dataclass's fields as JSON types: tuples become lists (nested dataclasses become dicts)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
