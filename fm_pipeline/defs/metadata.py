"""Materialization metadata every asset reports the same way: row counts and the table schema (the keys the
Dagster UI shows in its own places), the lake path, the MLflow run as a link, count tables and plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from fm_pipeline.defs.tables import markdown_table
from fm_pipeline.evaluation.plots import markdown_image

ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"


def _type_name(arrow_type: pa.DataType) -> str:
    return "string" if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else str(arrow_type)


def table_schema(schema: pa.Schema, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """A Dagster TableSchema from an Arrow schema, with nullability as a column constraint."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name=f.name, type=_type_name(f.type), description=(descriptions or {}).get(f.name),
                       constraints=dg.TableColumnConstraints(nullable=f.nullable))
        for f in schema
    ])


def parquet_metadata(shards: Sequence[Path], schema: pa.Schema | None = None) -> dict[str, Any]:
    """Row count (from the Parquet footers) and schema of a set of shards; `schema` when there are none."""
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    if shards:
        schema = pq.read_schema(shards[0])
    meta: dict[str, Any] = {ROW_COUNT: dg.MetadataValue.int(rows)}
    if schema is not None:
        meta[COLUMN_SCHEMA] = dg.MetadataValue.table_schema(table_schema(schema))
    return meta


def lake_path(path: Path) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))


def mlflow_run_link(run_id: str) -> dg.MetadataValue:
    """A link to the run in the MLflow UI when tracking is a server; else where the run is stored and how to
    open it."""
    import mlflow  # with the run that produced `run_id`, not with the code location (see `defs.resources`)

    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        experiment = mlflow.get_run(run_id).info.experiment_id
        return dg.MetadataValue.url(f"{uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}")
    return dg.MetadataValue.text(f"{uri} run {run_id} (open with `mlflow ui --backend-store-uri {uri}`)")


def mlflow_metadata(run_id: str) -> dict[str, Any]:
    return {"mlflow_run_id": run_id, "mlflow_run": mlflow_run_link(run_id)}


def count_table(counts: Mapping[str, int], key: str, value: str = "documents") -> dg.MetadataValue:
    """A Markdown table of counts, largest first, with each one's share."""
    total = sum(counts.values()) or 1
    rows = [{key: k, value: v, "share": f"{v / total:.1%}"}
            for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return dg.MetadataValue.md(markdown_table(rows, [key, value, "share"]))


def plot(path: Path, alt: str) -> dg.MetadataValue:
    """A PNG from the lake, shown inline in the UI."""
    return dg.MetadataValue.md(markdown_image(path, alt))


def lang_counts(shards: Sequence[Path]) -> dict[str, int]:
    """Documents per language in Parquet shards, reading the `lang` column only."""
    counts: dict[str, int] = {}
    for shard in shards:
        column = pq.read_table(shard, columns=["lang"]).column("lang").combine_chunks()
        for item in column.value_counts().to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def language_table(columns: Mapping[str, Mapping[str, int]]) -> dg.MetadataValue:
    """A Markdown table with one row per language and one column per named count (largest first column first)."""
    names = list(columns)
    langs = sorted({lang for counts in columns.values() for lang in counts},
                   key=lambda lang: (-columns[names[0]].get(lang, 0), lang))
    rows = [{"lang": lang, **{name: columns[name].get(lang, 0) for name in names}} for lang in langs]
    return dg.MetadataValue.md(markdown_table(rows, ["lang", *names]))


def checkpoint_metadata(weights: Path, show: int = 40) -> dict[str, Any]:
    """Row count, schema and a table of a checkpoint's tensors (name, dtype, shape, elements), read from the
    safetensors header only."""
    from safetensors import safe_open

    rows = []
    with safe_open(str(weights), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open handles are not mappings
            tensor = f.get_slice(name)
            shape = tensor.get_shape()
            numel = 1
            for dim in shape:
                numel *= dim
            rows.append({"tensor": name, "dtype": tensor.get_dtype(), "shape": "x".join(map(str, shape)) or "scalar",
                         "numel": numel})
    schema = dg.TableSchema(columns=[
        dg.TableColumn("tensor", "string", description="parameter name in model.safetensors"),
        dg.TableColumn("dtype", "string"), dg.TableColumn("shape", "string"), dg.TableColumn("numel", "int")])
    return {ROW_COUNT: dg.MetadataValue.int(len(rows)), COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema),
            "tensors": dg.MetadataValue.md(markdown_table(rows[:show], ["tensor", "dtype", "shape", "numel"]))}
