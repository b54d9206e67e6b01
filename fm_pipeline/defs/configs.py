"""Launchpad config -> library config: an asset's `dg.Config` fills the library dataclass it drives by field name,
so a field added on both sides needs no copy line in the asset."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import dagster as dg

T = TypeVar("T")
MB = 2**20


def config_fields(config: dg.Config, target: type, *, renames: Mapping[str, str] | None = None,
                  only_set: bool = False, **values: Any) -> dict[str, Any]:
    """The fields of `config` that the dataclass `target` also has, then `values` over them.

    A launchpad field is matched under its name in `renames`, else its own; a launchpad `<name>_mb` fills the
    library's `<name>_bytes` (MiB to bytes), as launchpad sizes are typed by people. With `only_set`, None
    means unset, here and in `values`: the field is left out so the target's (or its profile's) default holds.
    """
    names = {f.name for f in dataclasses.fields(target)}
    fields: dict[str, Any] = {}
    for name, value in config.model_dump().items():
        name = (renames or {}).get(name, name)
        if name not in names and name.endswith("_mb") and f"{name[:-3]}_bytes" in names:
            name, value = f"{name[:-3]}_bytes", value * MB
        if name in names:
            fields[name] = value
    fields.update(values)
    return {k: v for k, v in fields.items() if not (only_set and v is None)}


def library_config(config: dg.Config, target: type[T], *, make: Callable[..., T] | None = None,
                   renames: Mapping[str, str] | None = None, only_set: bool = False, **values: Any) -> T:
    """`target` (or `make`, e.g. a profile constructor) called with `config_fields(config, target, ...)`.

    A value the library rejects (an unknown profile or strategy, a share out of range) fails the step without a
    retry: the steps' retry policies are for lost volumes and servers, and the same config fails the same way."""
    try:
        return (make or target)(**config_fields(config, target, renames=renames, only_set=only_set, **values))
    except (TypeError, ValueError) as exc:
        raise dg.Failure(f"{type(config).__name__}: {exc}", allow_retries=False) from exc
