"""What a reader accepts before it allocates anything: regular files, and budgets on size.

Readers meet files no one here wrote. Each checks the sizes a file *declares* (voxels, points,
faces, pixels, rows, nesting) against a budget before a native library sees the file, so a
header that lies cannot exhaust memory or kill the process. The budgets are generous defaults
for facial CT, meshes and photos and can be raised (or lowered) per site with environment
variables, e.g. ``MEDFACE_MAX_VOXELS=2000000000``; :func:`budget` reads them.

=====================  ==========================  ===============================================
budget                 default                     what it bounds
=====================  ==========================  ===============================================
``max_voxels``         1,000,000,000               voxels of one volume (a 1024x1024x953 CT)
``max_vertices``       30,000,000                  points of one mesh
``max_faces``          60,000,000                  triangles of one mesh
``max_pixels``         200,000,000                 pixels of one photo (a 14k x 14k image)
``max_text_bytes``     256 MiB                     a text input read whole (CSV, JSON, plan)
``max_json_depth``     64                          nesting of a JSON document
``max_expansion``      1,000                       decompressed / compressed size of gzip data
``max_landmarks``      1,000,000                   points of one landmark file (CSV or markups)
=====================  ==========================  ===============================================

The defaults are assumptions (the largest inputs the plugins are meant for, with room to
spare), not measured limits of the machine.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import InputError

__all__ = ["Budget", "budget", "require_regular_file", "check_count", "check_json_depth"]


@dataclass(frozen=True)
class Budget:
    max_voxels: int = 1_000_000_000
    max_vertices: int = 30_000_000
    max_faces: int = 60_000_000
    max_pixels: int = 200_000_000
    max_text_bytes: int = 256 * 1024 * 1024
    max_json_depth: int = 64
    max_expansion: int = 1_000
    max_landmarks: int = 1_000_000


def budget() -> Budget:
    """The budgets in force: the defaults, each overridden by ``MEDFACE_<NAME>`` when set."""
    values = {}
    for f in fields(Budget):
        text = os.environ.get(f"MEDFACE_{f.name.upper()}", "").strip()
        if not text:
            continue
        try:
            values[f.name] = int(float(text))
        except ValueError:
            raise InputError(f"MEDFACE_{f.name.upper()}={text!r} is not a number",
                             hint="unset it or give a whole number") from None
    return Budget(**values)


def require_regular_file(path, what: str = "input") -> Path:
    """``path`` as a Path if it is an existing regular file (after following symlinks).

    Directories, named pipes, sockets, devices, dangling links and link loops are refused with
    an InputError, so no reader blocks on a pipe or reads a device."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} file not found", path=path) from None
    except OSError as exc:  # ELOOP (a symlink loop), EACCES, ENAMETOOLONG
        raise InputError(f"cannot open the {what}: {exc.strerror or exc}", path=path) from None
    if stat.S_ISREG(mode):
        return path
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    raise InputError(f"the {what} is {kind}, not a file", path=path,
                     hint="give the path of a regular file" + (" inside it" if kind == "a folder" else ""))


def check_count(count, limit_name: str, what: str, path=None) -> int:
    """``count`` as an int if it is a whole number within the budget ``limit_name``; an
    InputError naming the environment variable that raises the budget otherwise."""
    limit = getattr(budget(), limit_name)
    try:
        value = int(count)
        exact = float(count) == value
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"the file declares {what} = {count!r}, which is not a count", path=path) from None
    if not exact or value < 0:
        raise InputError(f"the file declares {what} = {count!r}, which is not a count", path=path)
    if value > limit:
        raise InputError(f"too large: the file declares {value:,} {what}, more than the budget of {limit:,}",
                         path=path, hint=f"set MEDFACE_{limit_name.upper()} to allow more, if the file is genuine")
    return value


def check_json_depth(document, path=None, what: str = "JSON document") -> None:
    """InputError when ``document`` (parsed JSON) nests deeper than the budget (iteratively:
    no recursion, so a deep document cannot exhaust the stack here)."""
    limit = budget().max_json_depth
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InputError(f"the {what} nests more than {limit} levels deep", path=path,
                             hint=f"set MEDFACE_MAX_JSON_DEPTH to allow more, if the file is genuine")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
