"""Provenance: what produced a result, so that it can be traced and repeated."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
from dataclasses import asdict, dataclass, field
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
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
            h.update(bytes.fromhex(sha256_file(f)))
        return h.hexdigest()
    return sha256_file(path)


def sha256_arrays(*arrays) -> str:
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class InputRecord:
    name: str
    path: str | None
    sha256: str
    kind: str = "file"  # "file", "folder" or "in-memory"


@dataclass
class Provenance:
    medface_version: str = ""
    plugin: str = ""
    plugin_version: str = ""
    command: str = ""
    parameters: dict = field(default_factory=dict)
    inputs: list[InputRecord] = field(default_factory=list)
    models: list[InputRecord] = field(default_factory=list)
    device: str = "cpu"
    seed: int | None = None
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
        d = dict(d)
        d["inputs"] = [InputRecord(**r) for r in d.get("inputs", [])]
        d["models"] = [InputRecord(**r) for r in d.get("models", [])]
        return cls(**d)
