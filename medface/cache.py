"""The one place for medface's caches: where they live, how entries are keyed, locked and pruned.

Everything medface caches (the phantom template's geometry, phenotype crops, default models
trained on first use) lives under :func:`cache_root` (``$MEDFACE_CACHE_DIR``, default
``~/.cache/medface``), in one folder per namespace. An entry's name is ``<prefix>-<key>``: the
prefix says what it is, the key (:func:`key`) is a hash of exactly what the entry depends on
(data files, a format version, parameters), never of unrelated source files. When an entry is
made anew, :func:`prune` removes the older entries with the same prefix.

A cache is an optimisation: a read-only or full disk makes medface slower, never wrong.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

__all__ = ["cache_root", "folder", "key", "file_lock", "prune"]


def cache_root() -> Path:
    """``$MEDFACE_CACHE_DIR`` or ``~/.cache/medface``."""
    return Path(os.environ.get("MEDFACE_CACHE_DIR") or Path.home() / ".cache" / "medface")


def folder(namespace: str = "") -> Path:
    """The cache folder of one namespace (``"phenotype"``, ``"forensic"``; ``""`` for the root)."""
    return cache_root() / namespace if namespace else cache_root()


def key(*parts, length: int = 16) -> str:
    """A short sha256 of ``parts`` (bytes, str, Path: the file's bytes, or anything with a repr)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            part = part.read_bytes()
        elif not isinstance(part, (bytes, str)):
            part = repr(part)
        h.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:length]


class file_lock:
    """An exclusive advisory lock on ``path`` (``fcntl.flock``) so that one process builds a
    cache entry while the others wait; a no-op where locking is not available."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.handle = None

    def __enter__(self) -> "file_lock":
        try:
            import fcntl

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "w")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except (ImportError, OSError):
            self.handle = None
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def prune(current: Path) -> list[Path]:
    """Remove the entries beside ``current`` that share its prefix (``<prefix>-<key>``) but not
    its key: what earlier versions cached. Temporary entries (``*.tmp``) and locks are kept.
    Returns what was removed."""
    current = Path(current)
    prefix = current.name.rsplit("-", 1)[0] + "-"
    removed = []
    for other in current.parent.glob(prefix + "*"):
        if other == current or other.name.endswith((".tmp", ".lock")) or "-" in other.name[len(prefix):]:
            continue
        if other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
        else:
            other.unlink(missing_ok=True)
        removed.append(other)
    return removed
