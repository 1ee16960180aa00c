"""Finding plugins without importing them.

Two sources, as in 3D Slicer (installed modules plus "additional module paths"):

1. installed packages that declare an entry point in the group ``medface.plugins`` whose value
   is the plugin's top-level package name;
2. folders listed in ``MEDFACE_PLUGIN_PATH`` (separated by ``os.pathsep``). A listed folder is
   either a plugin package itself (it holds ``medface-plugin.toml``) or holds plugin packages
   one or two levels down (``DIR/pkg/`` or ``DIR/project/pkg/``).

Only the location of each manifest is found here; nothing is imported.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .manifest_summary import MANIFEST_NAME

ENTRY_POINT_GROUP = "medface.plugins"
PATH_VARIABLE = "MEDFACE_PLUGIN_PATH"


@dataclass(frozen=True)
class Candidate:
    """Where a plugin package lives: ``package`` imports from ``import_root``."""

    package: str
    package_dir: Path | None
    source: str  # "entry point <name>" or "MEDFACE_PLUGIN_PATH"
    import_root: Path | None  # folder to put on sys.path before importing (path plugins only)
    error: str = ""

    @property
    def manifest_path(self) -> Path | None:
        return None if self.package_dir is None else self.package_dir / MANIFEST_NAME


def from_entry_points() -> list[Candidate]:
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        package = ep.value.split(":")[0].strip()
        try:
            spec = importlib.util.find_spec(package) if "." not in package else None
        except (ImportError, ValueError) as exc:
            spec, err = None, str(exc)
        else:
            err = ""
        if "." in package:
            err = f"entry point value '{ep.value}' must name a top-level package"
        if spec is None or not spec.submodule_search_locations:
            found.append(Candidate(package, None, f"entry point {ep.name}", None,
                                   err or f"package '{package}' named by entry point '{ep.name}' is not installed"))
            continue
        package_dir = Path(list(spec.submodule_search_locations)[0])
        found.append(Candidate(package, package_dir, f"entry point {ep.name}", None))
    return found


def _packages_under(folder: Path, depth: int) -> list[Path]:
    if (folder / MANIFEST_NAME).is_file():
        return [folder]
    if depth == 0:
        return []
    out = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    for child in children:
        out.extend(_packages_under(child, depth - 1))
    return out


def from_plugin_path(value: str | None = None) -> list[Candidate]:
    value = os.environ.get(PATH_VARIABLE, "") if value is None else value
    found = []
    for entry in [e for e in value.split(os.pathsep) if e.strip()]:
        folder = Path(entry).expanduser()
        if not folder.is_dir():
            found.append(Candidate(folder.name, None, PATH_VARIABLE, None,
                                   f"folder '{folder}' listed in {PATH_VARIABLE} does not exist"))
            continue
        for package_dir in _packages_under(folder.resolve(), 2):
            found.append(Candidate(package_dir.name, package_dir, PATH_VARIABLE, package_dir.parent))
    return found
