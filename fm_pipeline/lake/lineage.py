"""Lineage: which files each stage read and wrote, and which raw files fed a model.

Every stage writes a record, `_lineage.json`, into its output folder (`lake/<asset>/[<partition>/]`, or a
checkpoint folder): its data version and code version, and the size and sha256 of every file it read and
wrote. Paths inside the lake are relative to the lake root; files outside it (the raw and domain corpus) are
absolute. A stage that ingests outside files also names its provenance index (document id -> input file),
and a stage that ends in train/val splits names its split shards.

`trace(checkpoint_dir)` walks those records back from a checkpoint: checkpoint -> token files and tokenizer ->
balanced shards -> deduped -> filtered -> raw shards -> the raw input files, checking at every hop that the
file the consumer read is the file the producer wrote (same sha256), and on disk still. Then it reads the
document ids of the training splits and maps each to the raw file it came from, so the answer to "which raw
files fed this model?" is exact to the document, or says what no longer matches.

    python -m fm_pipeline.lake.lineage <checkpoint dir> [--lake DIR] [--all] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fm_pipeline.lake.atomic import atomic_write_bytes
from fm_pipeline.lake.fingerprint import (
    FileFingerprint,
    HashCache,
    file_sha256,
    fingerprint_files,
    version_of,
)
from fm_pipeline.lake.layout import LINEAGE_RECORD, REPEAT_MARK, TOKENIZER_MODEL
from fm_pipeline.lake.staging import published_path

FORMAT = "fm-pipeline-lineage"
VERSION = 1


def _entry(fp: FileFingerprint) -> dict[str, Any]:
    inside = not Path(fp.path).is_absolute()
    return {"path": fp.path, "size": fp.size, "sha256": fp.sha256, **({} if inside else {"external": True})}


def _fingerprints(files: Sequence[Path], lake_root: Path, cache: HashCache | None) -> list[FileFingerprint]:
    return fingerprint_files([Path(f).resolve() for f in files], lake_root, cache)


def input_entries(files: Sequence[Path], lake_root: Path) -> list[dict[str, Any]]:
    """Lineage entries (path relative to the lake, or absolute outside it; size; sha256) of `files`, now."""
    return [_entry(fp) for fp in _fingerprints(files, Path(lake_root).resolve(), None)]


def write_stage_record(
    out_dir: Path, *, asset: str, lake_root: Path, inputs: Sequence[Path | dict[str, Any]], outputs: Sequence[Path],
    data_version: str | None = None, partition: str | None = None, code_version: str | None = None,
    splits: dict[str, Sequence[Path]] | None = None, provenance: Path | None = None,
    input_versions: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
    cache: HashCache | None = None,
) -> dict[str, Any]:
    """Write `out_dir/_lineage.json` for one stage run and return it.

    `inputs` and `outputs` are files (hashed here; an input may also be an entry that `input_entries` made
    earlier, for a stage that hashes its inputs before it runs); `data_version` defaults to the version of the
    outputs. `out_dir` may be a staging folder (`staging.staged_dir`): the record names every path where it will
    be once published, so a stage can write its record before the swap.
    `splits` names the train/val shards among the outputs, `provenance` the Parquet index (id, file) of an
    ingesting stage, `input_versions` the data versions of the upstream assets as the stage saw them; `cache`
    saves hashing files again that the stage has just hashed.
    """
    lake_root = Path(lake_root).resolve()
    out_fps = [replace(fp, path=published_path(Path(fp.path)).as_posix())
               for fp in _fingerprints(outputs, lake_root, cache)]
    known = [i for i in inputs if isinstance(i, dict)]
    in_entries = sorted([*(_entry(fp) for fp in _fingerprints([i for i in inputs if not isinstance(i, dict)],
                                                                lake_root, cache)), *known],
                        key=lambda e: e["path"])

    def rel(path: Path) -> str:
        path = published_path(Path(path).resolve())
        try:
            return path.relative_to(lake_root).as_posix()
        except ValueError:
            return path.as_posix()

    record: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "asset": asset,
        "partition": partition,
        "code_version": code_version,
        "data_version": data_version or version_of(out_fps),
        "lake": lake_root.as_posix(),
        "folder": rel(out_dir),
        "input_versions": dict(sorted((input_versions or {}).items())),
        "inputs": in_entries,
        "outputs": [_entry(fp) for fp in out_fps],
    }
    if splits:
        record["splits"] = {name: sorted(rel(p) for p in paths) for name, paths in sorted(splits.items())}
    if provenance is not None:
        record["provenance"] = rel(provenance)
    if extra:
        record["extra"] = extra
    atomic_write_bytes(Path(out_dir) / LINEAGE_RECORD, json.dumps(record, indent=2, sort_keys=True).encode())
    return record


def read_stage_record(folder: Path) -> dict[str, Any]:
    record = json.loads((Path(folder) / LINEAGE_RECORD).read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"{folder / LINEAGE_RECORD} is not a {FORMAT} record")
    return record


def data_versions(folders: dict[str, Path]) -> dict[str, str]:
    """The recorded data version of each asset's folder, by asset name; folders without a record are left out."""
    return {asset: read_stage_record(folder)["data_version"] for asset, folder in folders.items()
            if (Path(folder) / LINEAGE_RECORD).is_file()}


@dataclass
class SourceFile:
    """An input file outside the lake that a stage of the chain read."""

    source: str
    path: str
    size: int
    sha256: str
    documents: dict[str, int] = field(default_factory=dict)
    """Documents of this file in each training split of the model (empty: read, but none survived)."""


@dataclass
class Trace:
    checkpoint: str
    lake: str
    stages: list[dict[str, Any]]
    """Every stage record on the way back (asset, partition, data_version, code_version, folder)."""
    tokenizer: dict[str, Any] | None
    """The tokenizer file the model was trained with (path, sha256), when the chain has one."""
    splits: dict[str, list[str]]
    """The document shards, per split, that the model's token files were made from."""
    source_files: list[SourceFile]
    problems: list[str]

    @property
    def consistent(self) -> bool:
        return not self.problems

    def fed(self, split: str = "train") -> list[SourceFile]:
        """The raw files with at least one document in `split`: the files that fed the model."""
        return [f for f in self.source_files if f.documents.get(split)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "consistent": self.consistent}


def _index_records(lake: Path) -> dict[str, dict[str, Any]]:
    """Stage records of the lake, keyed by the lake-relative path of every file they wrote."""
    by_output: dict[str, dict[str, Any]] = {}
    for path in sorted([*lake.glob(f"*/{LINEAGE_RECORD}"), *lake.glob(f"*/*/{LINEAGE_RECORD}")]):
        if any(part.startswith(".") for part in path.relative_to(lake).parts):
            continue  # what a killed run left beside a folder (staging.staged_dir), not a published stage
        try:
            record = read_stage_record(path.parent)
        except (OSError, ValueError):
            continue
        for out in record["outputs"]:
            by_output[out["path"]] = record
    return by_output


def _record_key(record: dict[str, Any]) -> tuple[str, str | None]:
    return record["asset"], record.get("partition")


def trace(checkpoint_dir: Path, lake_root: Path | None = None, verify_files: bool = True) -> Trace:
    """Walk the stage records back from `checkpoint_dir` to the raw files (see the module docstring).

    `lake_root` defaults to the lake the checkpoint's record names. With `verify_files`, every file on the way
    is hashed again and compared with its record (slower on a big lake; the records alone are compared
    otherwise).
    """
    checkpoint_dir = Path(checkpoint_dir)
    start = read_stage_record(checkpoint_dir)
    lake = Path(lake_root or start["lake"]).resolve()
    producers = _index_records(lake)
    problems: list[str] = []
    visited: dict[tuple[str, str | None], dict[str, Any]] = {}
    externals: dict[str, tuple[dict[str, Any], str]] = {}
    checked: set[str] = set()
    queue: deque[dict[str, Any]] = deque([start])
    visited[_record_key(start)] = start
    while queue:
        record = queue.popleft()
        for item in record["inputs"]:
            if item.get("external"):
                externals.setdefault(item["path"], (item, record.get("partition") or record["asset"]))
                continue
            producer = producers.get(item["path"])
            if producer is None:
                problems.append(f"{item['path']} (read by {_label(record)}) has no stage record in {lake}")
                continue
            written = next(o for o in producer["outputs"] if o["path"] == item["path"])
            if written["sha256"] != item["sha256"]:
                problems.append(f"{item['path']} changed after {_label(record)} read it: {_label(producer)} "
                                f"was rebuilt (data version {producer['data_version']})")
            if verify_files and item["path"] not in checked:
                checked.add(item["path"])
                problems.extend(_verify(lake / item["path"], item, what=f"{item['path']}"))
            key = _record_key(producer)
            if key not in visited:
                visited[key] = producer
                queue.append(producer)
    if verify_files:
        for path, (item, _) in sorted(externals.items()):
            problems.extend(_verify(Path(path), item, what=f"raw file {path}"))

    documents = _split_documents(lake, visited.values(), problems)
    counts = _documents_by_file(lake, visited.values(), documents, problems)
    sources = [SourceFile(source=source, path=path, size=item["size"], sha256=item["sha256"],
                          documents=dict(sorted(counts.get(path, {}).items())))
               for path, (item, source) in sorted(externals.items())]
    tokenizer = next(({"path": (lake / i["path"]).as_posix(), "sha256": i["sha256"]}
                      for r in visited.values() for i in r["inputs"] if i["path"].endswith(TOKENIZER_MODEL)), None)
    splits: dict[str, list[str]] = defaultdict(list)
    for record in visited.values():
        for split, paths in (record.get("splits") or {}).items():
            splits[split].extend((lake / p).as_posix() for p in paths)
    stages = [{k: r.get(k) for k in ("asset", "partition", "data_version", "code_version", "folder")}
              for r in visited.values()]
    return Trace(checkpoint=checkpoint_dir.resolve().as_posix(), lake=lake.as_posix(), stages=stages,
                 tokenizer=tokenizer, splits=dict(splits), source_files=sources, problems=problems)


def _label(record: dict[str, Any]) -> str:
    return record["asset"] + (f"[{record['partition']}]" if record.get("partition") else "")


def _verify(path: Path, item: dict[str, Any], what: str) -> list[str]:
    if not path.is_file():
        return [f"{what} is gone"]
    if path.stat().st_size != item["size"] or file_sha256(path) != item["sha256"]:
        return [f"{what} differs from the file that was read (sha256 {item['sha256'][:12]}…)"]
    return []


def _split_documents(lake: Path, records: Any, problems: list[str]) -> dict[str, Counter]:
    """(source, document id) -> count, per split, over the split shards of every stage of the chain: the
    balanced shards of pretraining, and a domain corpus's splits for a domain-adapted model."""
    out: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        for split, paths in (record.get("splits") or {}).items():
            for rel in paths:
                path = lake / rel
                if not path.is_file():
                    problems.append(f"split shard {rel} is gone")
                    continue
                table = pq.read_table(path, columns=["id", "source"])
                for doc_id, source in zip(table.column("id").to_pylist(), table.column("source").to_pylist(),
                                          strict=True):
                    out[split][(source, doc_id.split(REPEAT_MARK)[0])] += 1
    return out


def _documents_by_file(lake: Path, records: Any, documents: dict[str, Counter],
                       problems: list[str]) -> dict[str, dict[str, int]]:
    """Absolute raw file path -> documents per split, through each ingesting stage's provenance index."""
    file_of: dict[tuple[str, str], str] = {}
    for record in records:
        if not record.get("provenance"):
            continue
        path = lake / record["provenance"]
        if not path.is_file():
            problems.append(f"provenance index {record['provenance']} is gone")
            continue
        source = record.get("partition") or record["asset"]
        root = (record.get("extra") or {}).get("input_root")
        table = pq.read_table(path)
        for doc_id, rel in zip(table.column("id").to_pylist(), table.column("file").to_pylist(), strict=True):
            file_of[(source, doc_id)] = (Path(root) / rel).as_posix() if root else rel
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for split, counter in documents.items():
        missing = 0
        for (source, doc_id), n in counter.items():
            path = file_of.get((source, doc_id))
            if path is None:
                missing += 1
                continue
            counts[path][split] += n
        if missing:
            problems.append(f"{missing} {split} documents have no provenance entry")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fm_pipeline.lake.lineage",
                                     description="Which raw files fed this model? Walks the lineage records back "
                                                 "from a checkpoint folder.")
    parser.add_argument("checkpoint", type=Path, help="a checkpoint folder (with _lineage.json)")
    parser.add_argument("--lake", type=Path, default=None, help="the lake, if it moved since training")
    parser.add_argument("--all", action="store_true",
                        help="also list files that were read but have no document in the training splits")
    parser.add_argument("--json", action="store_true", help="print the whole trace as JSON")
    parser.add_argument("--no-verify", action="store_true", help="compare the records only, without re-hashing files")
    args = parser.parse_args(argv)
    result = trace(args.checkpoint, args.lake, verify_files=not args.no_verify)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        files = result.source_files if args.all else [f for f in result.source_files if f.documents]
        print(f"checkpoint {result.checkpoint}")
        if result.tokenizer:
            print(f"tokenizer  {result.tokenizer['path']}  sha256 {result.tokenizer['sha256']}")
        for stage in result.stages:
            print(f"stage      {_label(stage):<40} data version {stage['data_version']}")
        print(f"{'source':<18} {'train':>6} {'val':>5}  file")
        for f in files:
            print(f"{f.source:<18} {f.documents.get('train', 0):>6} {f.documents.get('val', 0):>5}  {f.path}")
        for problem in result.problems:
            print(f"PROBLEM: {problem}", file=sys.stderr)
    return 0 if result.consistent else 1


if __name__ == "__main__":
    sys.exit(main())
