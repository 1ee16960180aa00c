"""Converting and checking command parameters against the manifest, before plugin code runs.

Values may come as strings (the command line) or as Python objects (the API). Every failure
is a :class:`ParameterError` (or an :class:`InputError` for an unreadable input file) that
names the parameter.

Input files are recorded by name and sha256 (a header + data volume with its data files);
their paths only with ``record_paths`` (``docs/privacy.md``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.provenance import InputRecord, hash_files, sha256_arrays
from ..errors import InputError, ParameterError
from .manifest import CommandSpec, ParameterSpec

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass
class BoundParameters:
    values: dict[str, Any] = field(default_factory=dict)
    inputs: list[InputRecord] = field(default_factory=list)
    recorded: dict[str, Any] = field(default_factory=dict)  # JSON-friendly values for provenance
    record_paths: bool = False  # keep input and output paths (default: names only)
    paths: list[Path] = field(default_factory=list)  # every path given, as given (for redaction)

    def shown(self, path: Path) -> str:
        """How a path is recorded: as given with ``record_paths``, else its last name only."""
        self.paths.append(path)
        return str(path) if self.record_paths else (path.name or str(path))

    def add_input(self, spec: ParameterSpec, path: Path) -> None:
        """Hash an input file or folder (a volume with its data files) and record it."""
        files = _data_files(path) if spec.type == "volume" and path.is_file() else [path]
        sha256, parts = hash_files(files)
        self.inputs.append(InputRecord(spec.name, str(path.resolve()) if self.record_paths else None, sha256,
                                       "folder" if path.is_dir() else "file", file=path.name, parts=parts))


def _with_units(spec: ParameterSpec, value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value} {spec.units}".rstrip()


def _to_int(spec: ParameterSpec, raw) -> int:
    if isinstance(raw, bool):
        raise ParameterError(f"expected an integer, got {raw!r}", parameter=spec.name)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ParameterError(f"expected an integer, got {raw!r}", parameter=spec.name) from None


def _to_float(spec: ParameterSpec, raw) -> float:
    if isinstance(raw, bool):
        raise ParameterError(f"expected a number, got {raw!r}", parameter=spec.name)
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ParameterError(f"expected a number, got {raw!r}", parameter=spec.name) from None
    if not math.isfinite(value):
        raise ParameterError(f"expected a finite number, got {raw!r}", parameter=spec.name)
    return value


def _to_bool(spec: ParameterSpec, raw) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParameterError(f"expected true or false, got {raw!r}", parameter=spec.name)


def _check_range(spec: ParameterSpec, value: float) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise ParameterError(f"{_with_units(spec, value)} is below the minimum {_with_units(spec, spec.minimum)}",
                             parameter=spec.name)
    if spec.maximum is not None and value > spec.maximum:
        raise ParameterError(f"{_with_units(spec, value)} is above the maximum {_with_units(spec, spec.maximum)}",
                             parameter=spec.name)


def _to_choice(spec: ParameterSpec, raw) -> str:
    text = str(raw).strip()
    if text in spec.choices:
        return text
    folded = {c.lower(): c for c in spec.choices}
    if text.lower() in folded:
        return folded[text.lower()]
    raise ParameterError(f"'{text}' is not one of: {', '.join(spec.choices)}", parameter=spec.name)


_READERS = {"volume": "read_volume", "mesh": "read_mesh", "landmarks": "read_landmarks", "image": "read_image",
            "plan": "read_plan"}
_DATA_CLASSES = {"volume": "Volume", "mesh": "SurfaceMesh", "landmarks": "Landmarks", "image": "FaceImage",
                 "plan": "Plan"}


def _read_input(spec: ParameterSpec, path: Path):
    from .. import io

    reader = getattr(io, _READERS[spec.type])
    try:
        return reader(path)
    except InputError as exc:
        raise InputError(f"parameter '{spec.name}': {exc}", path=None) from exc


def _data_files(path: Path) -> list[Path]:
    """A volume file with the data files its header names (``.mhd`` -> ``.raw``)."""
    try:
        from ..io.volumes import data_files
    except ImportError:  # an io without header + data support: the file alone
        return [path]
    try:
        files = [Path(f) for f in data_files(path)]
    except OSError:
        return [path]
    return files if files and all(f.is_file() for f in files) else [path]


def _input_path(spec: ParameterSpec, raw) -> Path:
    from ..io.limits import require_regular_file

    path = Path(os.fspath(raw)).expanduser()
    if not path.exists() and not path.is_symlink():
        raise InputError(f"parameter '{spec.name}': {path} does not exist", hint="check the path")
    if spec.type == "directory" and not path.is_dir():
        raise InputError(f"parameter '{spec.name}': {path} is not a folder")
    if spec.type == "file" or (not path.is_dir() and spec.type != "directory"):
        # named pipes, devices and symlink loops are refused before anything opens them (hashing)
        require_regular_file(path, f"input of parameter '{spec.name}'")
    return path


def _bind_path_input(spec: ParameterSpec, raw, bound: BoundParameters):
    import medface.data as data

    cls = getattr(data, _DATA_CLASSES[spec.type], None) if spec.type in _DATA_CLASSES else None
    if cls is not None and isinstance(raw, cls):
        source = getattr(raw, "source", None)
        if source and Path(source).exists():
            bound.add_input(spec, Path(source))
            bound.recorded[spec.name] = bound.shown(Path(source))
        else:
            bound.inputs.append(InputRecord(spec.name, None, _memory_hash(raw), "in-memory"))
            bound.recorded[spec.name] = f"<in-memory {cls.__name__}>"
        return raw
    if not isinstance(raw, (str, os.PathLike)):
        expected = f"a path or a {cls.__name__}" if cls else "a path"
        raise ParameterError(f"expected {expected}, got {type(raw).__name__}", parameter=spec.name)
    path = _input_path(spec, raw)
    bound.add_input(spec, path)
    bound.recorded[spec.name] = bound.shown(path)
    if spec.type in ("file", "directory"):
        return path
    return _read_input(spec, path)


def _memory_hash(obj) -> str:
    for attrs in (("array",), ("vertices", "faces"), ("points",), ("pixels",)):
        if all(hasattr(obj, a) for a in attrs):
            return sha256_arrays(*(getattr(obj, a) for a in attrs))
    import hashlib
    import json

    return hashlib.sha256(json.dumps(getattr(obj, "to_json_dict", lambda: repr(obj))(), sort_keys=True,
                                     default=str).encode()).hexdigest()


def _bind_output(spec: ParameterSpec, raw, bound: BoundParameters) -> Path:
    if not isinstance(raw, (str, os.PathLike)):
        raise ParameterError(f"expected an output path, got {type(raw).__name__}", parameter=spec.name)
    path = Path(os.fspath(raw)).expanduser()
    if spec.type == "directory":
        if path.exists() and not path.is_dir():
            raise ParameterError(f"{path} exists and is not a folder", parameter=spec.name)
    elif path.is_dir():
        raise ParameterError(f"{path} is a folder; give a file name", parameter=spec.name)
    bound.recorded[spec.name] = bound.shown(path)
    return path


def convert(spec: ParameterSpec, raw, bound: BoundParameters | None = None):
    """Convert one raw value to the parameter's type and check its range or choices."""
    bound = bound if bound is not None else BoundParameters()
    if spec.is_path:
        return _bind_output(spec, raw, bound) if spec.channel == "output" else _bind_path_input(spec, raw, bound)
    if spec.type == "int":
        value = _to_int(spec, raw)
        _check_range(spec, value)
    elif spec.type == "float":
        value = _to_float(spec, raw)
        _check_range(spec, value)
    elif spec.type == "bool":
        value = _to_bool(spec, raw)
    elif spec.type == "enum":
        value = _to_choice(spec, raw)
    else:
        value = str(raw)
    bound.recorded[spec.name] = value
    return value


def bind(command: CommandSpec, params: dict[str, Any], *, record_paths: bool = False) -> BoundParameters:
    """Check every given parameter is known, fill defaults, convert and range-check all;
    ``record_paths`` keeps the paths of inputs and outputs (default: their names)."""
    normalised = {}
    for key, value in params.items():
        normalised[key.replace("-", "_")] = value
    known = {p.name for p in command.parameters}
    unknown = sorted(set(normalised) - known)
    if unknown:
        raise ParameterError(
            f"{command.full_id} has no parameter {', '.join(repr(u) for u in unknown)} "
            f"(parameters: {', '.join(sorted(known)) or 'none'})", parameter=unknown[0])
    bound = BoundParameters(record_paths=record_paths)
    # check the cheap scalar parameters first so a typo fails before a big file is read
    ordered = sorted(command.parameters, key=lambda p: (p.is_path and p.channel == "input"))
    for spec in ordered:
        raw = normalised.get(spec.name)
        if raw is None:
            if spec.default is not None:
                raw = spec.default
            elif spec.required:
                raise ParameterError(f"is required ({spec.describe()})", parameter=spec.name,
                                     hint=f"give {spec.flag} on the command line or {spec.name}=... in Python")
            else:
                bound.values[spec.name] = None
                bound.recorded[spec.name] = None
                continue
        bound.values[spec.name] = convert(spec, raw, bound)
    bound.values = {p.name: bound.values[p.name] for p in command.parameters}
    return bound
