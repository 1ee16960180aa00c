"""Checks of plugin code that do not run it: the module file exists, parses, defines the name;
and the hash of a plugin's code, for provenance."""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

from .manifest_summary import MANIFEST_NAME


def _code_files(package_dir: Path) -> list[Path]:
    """The package's ``.py`` files and manifest, without caches and hidden folders (no links followed)."""
    found = []
    for folder, subfolders, files in os.walk(package_dir):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d != "__pycache__")
        found += [Path(folder) / f for f in files if f.endswith(".py") or f == MANIFEST_NAME]
    return found


def code_sha256(package_dir: Path) -> str:
    """sha256 over a plugin package's code: for each ``.py`` file and the manifest, sorted by
    relative name (``/``-separated), the name, a zero byte and the sha256 of its bytes. Any edit
    of the code or the manifest changes it; compiled caches and data files do not."""
    package_dir = Path(package_dir)
    entries = sorted((f.relative_to(package_dir).as_posix(), f) for f in _code_files(package_dir))
    h = hashlib.sha256()
    for name, path in entries:
        try:  # a named pipe or device named *.py is never opened (it could block)
            digest = hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"not a regular file"
        except OSError:  # unreadable: hashed as such, so the value still differs from a readable copy
            digest = b"unreadable"
        h.update(name.encode("utf-8", "surrogateescape") + b"\0" + digest)
    return h.hexdigest()


def module_file(package: str, package_dir: Path, module: str) -> Path | None:
    """The source file of ``module`` if it lies inside the plugin's package, else None."""
    parts = module.split(".")
    if parts[0] != package:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py") if len(parts) > 1 else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return package_dir.joinpath(*parts[1:]).with_suffix(".py")  # the expected (missing) file


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def check_callable(package: str, package_dir: Path, python_name: str) -> str:
    """An empty string if ``module:function`` looks importable, else the reason it is not."""
    module, _, func = python_name.partition(":")
    path = module_file(package, package_dir, module)
    if path is None:
        return ""  # outside the package: only a real import can tell
    if not path.is_file():
        return f"{python_name}: module file {path} does not exist"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return f"{python_name}: syntax error in {path} line {exc.lineno}: {exc.msg}"
    except (OSError, UnicodeDecodeError) as exc:
        return f"{python_name}: cannot read {path} ({exc})"
    names = _top_level_names(tree)
    has_star = any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in tree.body)
    if func not in names and not has_star and "__getattr__" not in names:
        return f"{python_name}: {path.name} defines no '{func}'"
    return ""
