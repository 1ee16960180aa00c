"""The audit log: one JSON line per run, appended to a file the user (or the site) names.

For casework a result must be traceable: which command made which files from which inputs
with which models, when, by whom and for what purpose. Each run through the runner with an
audit log (``--audit-log PATH``, ``audit_log=`` in Python, or ``[policy] audit_log`` in the
site's ``medface.toml``) appends one line::

    {"time": "2025-01-02T10:11:12+00:00", "started": "...", "command": "forensic.reconstruct",
     "status": "ok", "exit_code": 0, "user": "jdoe", "host": "lab-ws-3", "purpose": "casework",
     "consent": "CASE-2025-017", "medface_version": "0.1.0", "plugin": "forensic 0.1.0",
     "plugin_code_sha256": "...", "output_folder": "rec",
     "inputs": [{"name": "skull", "file": "skull.ply", "sha256": "...", "kind": "file"}],
     "models": [{"name": "skull-face model", "file": "...", "sha256": "...", "kind": "folder"}],
     "outputs": [{"file": "face.ply", "sha256": "...", "bytes": 123}, ...]}

A failed run gets ``"status": "error"`` with the error's class and exit code. A line is written
with one ``write`` on a descriptor opened with ``O_APPEND`` while holding an exclusive
``flock``, so concurrent runs never interleave their lines. :func:`read_log` reads a log back
and :func:`trace` follows a file's chain of custody through it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import InputError, OutputError

__all__ = ["append_entry", "check_writable", "read_log", "trace", "current_user"]

MAX_LINE_BYTES = 16 * 1024 * 1024


def current_user() -> str:
    """The login name of the user running medface (``"unknown"`` when the system cannot tell)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no USER variable and no password entry (containers)
        return "unknown"


def _open_for_append(path: Path) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise OutputError(f"the audit log cannot be opened for appending ({exc.strerror or exc})", path=path,
                          hint="choose a file in a folder you can write to (--audit-log PATH)") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError("the audit log is not a regular file", path=path, hint="name a plain file")
    return fd


def check_writable(path) -> Path:
    """Make sure ``path`` can take audit lines (creating it and its folder), before a run starts."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"the audit log's folder cannot be created ({exc.strerror or exc})", path=path) from exc
    os.close(_open_for_append(path))
    return path


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: O_APPEND single writes only
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def append_entry(path, entry: dict) -> None:
    """Append ``entry`` as one JSON line to the log at ``path``, atomically."""
    line = (json.dumps(entry, ensure_ascii=False, allow_nan=False, default=str) + "\n").encode("utf-8")
    fd = _open_for_append(Path(path))
    try:
        _lock(fd)  # released when the descriptor is closed
        written = os.write(fd, line)
        if written != len(line):
            raise OutputError(f"only {written} of {len(line)} bytes of the audit line were written", path=path,
                              hint="check the free space of the disk; the log's last line is incomplete")
    except OSError as exc:
        raise OutputError(f"the audit line cannot be written ({exc.strerror or exc})", path=path) from exc
    finally:
        os.close(fd)


def read_log(path) -> list[dict]:
    """Every entry of an audit log, oldest first. A line that is not a JSON object is an
    :class:`InputError` naming its line number (a log must not be edited by hand)."""
    path = Path(path)
    entries = []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if len(line) > MAX_LINE_BYTES:
                    raise InputError(f"line {number} of the audit log is longer than {MAX_LINE_BYTES} bytes",
                                     path=path)
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    entry = None
                if not isinstance(entry, dict):
                    raise InputError(f"line {number} of the audit log is not a JSON object", path=path,
                                     hint="an audit log is written by medface only; restore it from a copy")
                entries.append(entry)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"the audit log cannot be read ({exc})", path=path) from exc
    return entries


def _producer(entries: list[dict], sha256: str, before: int) -> int | None:
    """The index of the last successful entry before ``before`` that wrote a file with ``sha256``."""
    for k in range(before - 1, -1, -1):
        entry = entries[k]
        if entry.get("status") == "ok" and any(o.get("sha256") == sha256 for o in entry.get("outputs", [])):
            return k
    return None


def trace(log, file_or_sha256) -> list[dict]:
    """The chain of custody of a file: the run that wrote it (matched by sha256), then the runs
    that wrote that run's inputs, and so on back; each entry once, newest first. ``[]`` when no
    run in the log wrote that content."""
    entries = read_log(log)
    target = str(file_or_sha256)
    if Path(target).is_file():
        from .data.provenance import sha256_file

        target = sha256_file(target)
    found: set[int] = set()
    pending = [(target, len(entries))]
    while pending:
        sha, before = pending.pop(0)
        k = _producer(entries, sha, before)
        if k is None or k in found:
            continue
        found.add(k)
        pending += [(r.get("sha256", ""), k) for r in entries[k].get("inputs", [])]
    return [entries[k] for k in sorted(found, reverse=True)]
