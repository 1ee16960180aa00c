"""Helpers the writers share: output suffixes and atomic writes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import MedfaceError, OutputError


def output_suffix(path: Path, allowed: Sequence[str], what: str) -> str:
    """The suffix of ``path`` among ``allowed`` (longest match, case-insensitive).

    Raises :class:`OutputError` naming the allowed suffixes when none matches.
    """
    name = path.name.lower()
    for suffix in sorted(allowed, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    raise OutputError(
        f"cannot tell which {what} format to write from the name '{path.name}'",
        path=path,
        hint=f"use one of the extensions {', '.join(allowed)}",
    )


def make_parent(path: Path) -> None:
    """Create the folder that will hold ``path``; :class:`OutputError` if that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {path.parent}: {exc.strerror or exc}", path=path) from exc


@contextmanager
def staging_folder(path: Path, what: str) -> Iterator[Path]:
    """A fresh hidden folder beside ``path`` to write into before moving results into place.

    It lies in the same folder as ``path`` (same file system, so ``os.replace`` is atomic) and
    is removed afterwards whatever happens. OS and library errors raised inside the block
    become :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    make_parent(path)
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise OutputError(f"cannot write in {path.parent}: {exc.strerror or exc}", path=path) from exc
    try:
        yield tmp_dir
    except MedfaceError:
        raise
    except (OSError, RuntimeError) as exc:
        raise OutputError(f"could not write the {what}: {_short(exc)}", path=path) from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


@contextmanager
def atomic_output(path, what: str) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; move the result into place on success.

    The temporary path has the same file name as ``path`` inside a :func:`staging_folder`, so
    a format that writes companion files (MetaImage ``.mhd`` + ``.raw``) names them correctly.
    Companion files are moved first and ``path`` last. On failure an existing ``path`` is left
    untouched and the error is an :class:`OutputError`.
    """
    path = Path(path)
    with staging_folder(path, what) as tmp_dir:
        yield tmp_dir / path.name
        produced = sorted(tmp_dir.iterdir(), key=lambda p: p.name == path.name)
        if not any(p.name == path.name for p in produced):
            raise OutputError(f"writing the {what} produced no file", path=path)
        for item in produced:
            os.replace(item, path.parent / item.name)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else text[:300]
