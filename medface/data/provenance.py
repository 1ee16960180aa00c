"""Provenance: what produced a result, so that it can be traced and repeated.

Privacy by default (``docs/privacy.md``): an input is recorded by its file name and sha256,
not by its absolute path (paths often carry patient names and record numbers); the runner
keeps the path only when asked (``--record-paths``). An input stored as a header plus data
files (``.mhd`` + ``.raw``, ``.nhdr`` + data) is hashed with its data: :func:`hash_files`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_path(path) -> str:
    """sha256 of a file, or of a folder (relative names and contents of every file, sorted)."""
    path = Path(path)
    if path.is_dir():
        return sha256_of_parts(folder_parts(path))
    return sha256_file(path)


def folder_parts(folder) -> list[dict]:
    """One ``{"file", "sha256"}`` per file under ``folder`` (relative names, sorted): the parts
    that :func:`sha256_path` hashes a folder from, for a provenance that names each file's hash."""
    folder = Path(folder)
    return [{"file": f.relative_to(folder).as_posix(), "sha256": sha256_file(f)}
            for f in sorted(p for p in folder.rglob("*") if p.is_file())]


def sha256_of_parts(parts: list[dict]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part["file"].encode("utf-8") + b"\0" + bytes.fromhex(part["sha256"]))
    return h.hexdigest()


def sha256_arrays(*arrays) -> str:
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _relative_name(file: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(file, base)).as_posix()
    except ValueError:  # another drive on Windows
        return file.name


def hash_files(files) -> tuple[str, list[dict]]:
    """The sha256 of an input made of ``files`` (the header first, then its data files) and
    one ``{"file", "sha256"}`` part per file (names relative to the header's folder).

    One file: its plain sha256 and no parts. Several: the sha256 over each file's relative
    name and sha256 in the order given, so that editing any data file changes it."""
    files = [Path(f) for f in files]
    if len(files) == 1:
        return sha256_path(files[0]), []
    base = files[0].parent
    parts = [{"file": _relative_name(f, base), "sha256": sha256_file(f)} for f in files]
    return sha256_of_parts(parts), parts


@dataclass
class InputRecord:
    """One input (or model) of a run: ``name`` (the parameter or model), ``file`` (the file or
    folder name, never a folder above it), ``sha256`` and ``kind`` (``"file"``, ``"folder"``,
    ``"in-memory"``); ``path`` only when paths are recorded; ``parts``: the files of a header +
    data input with their own sha256s."""

    name: str
    path: str | None
    sha256: str
    kind: str = "file"  # "file", "folder" or "in-memory"
    file: str = ""
    parts: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> "InputRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Provenance:
    medface_version: str = ""
    plugin: str = ""
    plugin_version: str = ""
    plugin_source: str = ""  # "entry point <name>" or "MEDFACE_PLUGIN_PATH"
    plugin_location: str = ""  # anonymised unless paths are recorded (docs/privacy.md)
    plugin_code_sha256: str = ""
    command: str = ""
    parameters: dict = field(default_factory=dict)
    inputs: list[InputRecord] = field(default_factory=list)
    models: list[InputRecord] = field(default_factory=list)
    device: str = ""  # the device used (never "auto"); "" until a run fills it
    seed: int | None = None
    purpose: str | None = None  # clinical, research, casework or education
    consent: str | None = None  # a reference to the consent or authorisation (not the document)
    privacy: dict = field(default_factory=dict)  # what was recorded and what was left out
    started: str = ""
    finished: str = ""
    duration_s: float = 0.0
    host: dict = field(default_factory=dict)

    @staticmethod
    def now() -> str:
        return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    @staticmethod
    def host_info() -> dict:
        return {"python": platform.python_version(), "platform": platform.platform(),
                "machine": platform.machine(), "cpu_count": os.cpu_count()}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Provenance":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["inputs"] = [InputRecord.from_dict(r) for r in d.get("inputs", [])]
        d["models"] = [InputRecord.from_dict(r) for r in d.get("models", [])]
        return cls(**d)
