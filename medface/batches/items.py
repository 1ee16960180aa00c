"""The items of a batch: what each run of the command gets, its id, and the hash that says
whether it changed.

Inputs come as a **table** (CSV or Parquet: one row per item, columns named like the command's
parameters, an optional ``id`` column; relative paths are relative to the table's folder) or as
a **folder or glob** (one item per file, given to the command's main input: its first input
file parameter, or the one named by ``input_param``). Parameters given once for the whole batch
(``shared``) go to every item; a table's column wins over them for its row.

An item's **key** is the sha256 of its command, its parameters and the content of its input
files (not their paths or modification times): ``--resume`` reruns an item only when its key
changed. Logic and file reading only; nothing runs here.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.provenance import sha256_path
from ..errors import InputError, ParameterError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
ID_COLUMN = "id"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_ID_LENGTH = 80


@dataclass(frozen=True)
class Item:
    """One run of the command: ``id`` (a safe folder name, unique in the batch) and its own
    parameters (``params``, before the shared ones are added)."""

    id: str
    params: dict = field(default_factory=dict)


def safe_id(text: str) -> str:
    """A folder name from any text: runs of other characters become ``_``, at most 80 characters."""
    cleaned = _UNSAFE.sub("_", str(text)).strip("._") or "item"
    return cleaned[:MAX_ID_LENGTH]


def unique_ids(names: list[str]) -> list[str]:
    """:func:`safe_id` of each name, made unique with ``-2``, ``-3`` ... in order."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base = safe_id(name)
        candidate, n = base, 1
        while candidate in seen:
            n += 1
            candidate = f"{base}-{n}"
        seen[candidate] = 1
        out.append(candidate)
    return out


def main_input(command, input_param: str | None = None) -> str:
    """The parameter a folder's or glob's files go to: ``input_param`` when given (checked), else
    the command's first input parameter that is a file or data type."""
    inputs = [p for p in command.parameters if p.channel == "input" and p.is_path]
    if input_param is not None:
        name = input_param.replace("-", "_")
        if name not in {p.name for p in inputs}:
            raise ParameterError(f"{command.full_id} has no input file parameter {input_param!r} "
                                 f"(input files: {', '.join(p.name for p in inputs) or 'none'})",
                                 parameter="input_param")
        return name
    if not inputs:
        raise ParameterError(f"{command.full_id} takes no input file, so a folder or glob cannot be mapped to it",
                             parameter="inputs", hint="give a table whose columns are the command's parameters")
    return inputs[0].name


def output_param(command) -> str:
    """The command's output folder parameter (where each item's outputs go)."""
    for p in command.parameters:
        if p.channel == "output" and p.type == "directory":
            return p.name
    raise ParameterError(f"{command.full_id} writes no output folder, so it cannot run as a batch",
                         parameter="command", hint="batch runs need a command with an --out folder")


def read_table(path: Path) -> list[dict]:
    """The rows of a CSV or Parquet table as dicts (empty cells: absent)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".csv":
            # every cell as text: the command's manifest converts and range-checks it
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={}, strings_can_be_null=True, auto_dict_encode=False),
                read_options=pacsv.ReadOptions(autogenerate_column_names=False))
            table = table.cast(pa.schema([(n, pa.string()) for n in table.column_names]))
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read the batch table: {exc}", path=path,
                         hint="a CSV with a header row, or a Parquet file") from None
    rows = table.to_pylist()
    return [{k: v for k, v in row.items() if v is not None and v != ""} for row in rows]


def items_from_table(path: Path, command) -> list[Item]:
    """One item per row; columns must be the command's parameters (hyphens allowed) or ``id``."""
    rows = read_table(path)
    if not rows:
        raise InputError("the batch table has no rows", path=path)
    known = {p.name: p for p in command.parameters if p.channel == "input"}
    columns = {c for row in rows for c in row}
    unknown = sorted(c for c in columns if c != ID_COLUMN and c.replace("-", "_") not in known)
    if unknown:
        raise ParameterError(f"the table's column(s) {', '.join(map(repr, unknown))} are no input parameter of "
                             f"{command.full_id} (parameters: {', '.join(sorted(known))})", parameter="inputs")
    base = path.parent
    items, names = [], []
    for i, row in enumerate(rows):
        params = {}
        for col, value in row.items():
            if col == ID_COLUMN:
                continue
            name = col.replace("-", "_")
            if known[name].is_path:
                p = Path(str(value)).expanduser()
                value = str(p if p.is_absolute() else base / p)
            params[name] = value
        items.append(params)
        names.append(str(row.get(ID_COLUMN, "")) or _default_name(params, command, i))
    return [Item(i, p) for i, p in zip(unique_ids(names), items)]


def _default_name(params: dict, command, index: int) -> str:
    for p in command.parameters:
        if p.is_path and p.channel == "input" and p.name in params:
            return Path(str(params[p.name])).stem
    return f"row{index + 1:06d}"


def paths_of(spec: str, *, folders: bool = False) -> list[Path]:
    """The files (or, with ``folders``, the subfolders) of a folder, hidden ones left out, or
    those a glob matches; sorted."""
    wanted = Path.is_dir if folders else Path.is_file
    path = Path(spec).expanduser()
    if path.is_dir():
        return sorted(p for p in path.iterdir() if wanted(p) and not p.name.startswith("."))
    return sorted(Path(p) for p in glob.glob(str(path), recursive=True) if wanted(Path(p)))


def items_from_files(spec: str, command, input_param: str | None = None) -> list[Item]:
    """One item per file of a folder or glob; for a command whose input is itself a folder (a
    photo session, say), one item per subfolder."""
    name = main_input(command, input_param)
    takes_folder = next(p for p in command.parameters if p.name == name).type == "directory"
    paths = paths_of(spec, folders=takes_folder)
    if not paths:
        what = f"no subfolders (each one {name!r} for {command.full_id})" if takes_folder else "no input files"
        raise InputError(f"{what} match {spec!r}", hint="give a folder, a glob such as 'photos/*.jpg', or "
                                                       "a CSV/Parquet table")
    ids = unique_ids([p.name if takes_folder else p.stem for p in paths])
    return [Item(i, {name: str(p)}) for i, p in zip(ids, paths)]


def expand_inputs(inputs, command, input_param: str | None = None) -> list[Item]:
    """Items from a table path, a folder, a glob, or a list of dicts (Python: one per item, with
    an optional ``id``)."""
    if isinstance(inputs, (list, tuple)):
        names = [str(d.get(ID_COLUMN) or f"item{i + 1:06d}") for i, d in enumerate(inputs)]
        return [Item(i, {k.replace("-", "_"): v for k, v in d.items() if k != ID_COLUMN})
                for i, d in zip(unique_ids(names), inputs)]
    spec = str(inputs)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        return items_from_table(path, command)
    return items_from_files(spec, command, input_param)


def fingerprint(command, params: dict) -> tuple[str, dict]:
    """(key, input columns) of an item's full parameters: the key is the sha256 of the command,
    the parameters and the content of the input files (not their paths); the columns name each
    input file and its sha256 for the results table (a missing file: empty sha256)."""
    recorded: dict[str, Any] = {}
    columns: dict[str, str] = {}
    by_name = {p.name: p for p in command.parameters}
    for name in sorted(params):
        value = params[name]
        spec = by_name.get(name)
        if spec is not None and spec.is_path and spec.channel == "input" and value is not None:
            p = Path(str(value))
            digest = sha256_path(p) if p.exists() else ""
            recorded[name] = {"sha256": digest} if digest else {"missing": p.name}
            columns[f"input_{name}"], columns[f"input_{name}_sha256"] = p.name, digest
        else:
            recorded[name] = value if isinstance(value, (int, float, bool, str)) or value is None else str(value)
    doc = json.dumps({"command": command.full_id, "params": recorded}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest(), columns
