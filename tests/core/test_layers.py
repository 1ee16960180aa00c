"""Imports run one way, down the layers of docs/architecture.md; plugins use only medface's public API.

Every ``import`` and ``from ... import`` of every module in ``medface/`` and ``plugins/`` counts,
including imports inside functions and relative imports. A finding names the file, the line
and the rule it breaks.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE = REPO / "docs" / "architecture.md"
FACADE = "medface"  # the package's __init__: the top layer, with the command line


# --------------------------------------------------------------------------- the layer table

def layer_table(text: str) -> dict[str, int]:
    """``module prefix -> layer`` from the ``## Layers`` markdown table (``| layer | modules |``)."""
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].isdigit():
            continue  # the header, the separator, the plugins row
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", cells[1]):
            name = FACADE if name == "medface.__init__" else name
            if layers.get(name, int(cells[0])) != int(cells[0]):
                raise ValueError(f"docs/architecture.md puts {name} in layers {layers[name]} and {cells[0]}")
            layers[name] = int(cells[0])
    return layers


LAYERS = layer_table(ARCHITECTURE.read_text(encoding="utf-8"))
PLUGIN_LAYER = max(LAYERS.values()) + 1


def layer_of(module: str) -> int | None:
    """The layer of a medface module (its longest listed prefix), or None when none is listed."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS and (prefix != FACADE or n == len(parts)):
            return LAYERS[prefix]
    return None


# --------------------------------------------------------------------------- the modules and their imports

@dataclass(frozen=True)
class Module:
    name: str  # dotted: medface.io.meshes, medface_surgery.plan
    path: Path
    is_package: bool  # an __init__.py: relative imports start from the module itself

    @property
    def plugin(self) -> str | None:
        top = self.name.split(".")[0]
        return None if top == "medface" else top


def plugin_packages() -> dict[str, Path]:
    return {m.parent.name: m.parent for m in sorted((REPO / "plugins").glob("*/*/medface-plugin.toml"))}


def _module(path: Path, root: Path) -> Module:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return Module(".".join(parts[:-1] if is_package else parts), path, is_package)


def all_modules() -> list[Module]:
    found = [_module(p, REPO) for p in sorted((REPO / "medface").rglob("*.py"))]
    for folder in plugin_packages().values():
        found += [_module(p, folder.parent) for p in sorted(folder.rglob("*.py"))]
    return found


@dataclass(frozen=True)
class Import:
    target: str  # the module imported
    name: str  # the name taken from it ("" for `import x`)
    line: int


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_in(module: Module, text: str, known: set[str]) -> list[Import]:
    """Every import in ``text`` (at any depth). ``from pkg import sub`` imports the module
    ``pkg.sub`` when that is a module, else the name ``sub`` of ``pkg``."""
    found = []
    for node in ast.walk(ast.parse(text, filename=str(module.path))):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub, "", node.lineno) if sub in known else Import(base, alias.name, node.lineno))
    return found


# --------------------------------------------------------------------------- the rules

def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _plugin_problem(module: Module, imp: Import, plugins: set[str]) -> str:
    top = imp.target.split(".")[0]
    if top in plugins and top != module.plugin:
        return f"plugin {module.plugin} imports another plugin ({imp.target})"
    if top == "medface" and any(_private(p) for p in imp.target.split(".")):
        return f"plugin {module.plugin} imports the private module {imp.target}"
    if top == "medface" and _private(imp.name):
        return f"plugin {module.plugin} imports the private name {imp.name} of {imp.target}"
    return ""


def _core_problem(module: Module, imp: Import, plugins: set[str]) -> str:
    top = imp.target.split(".")[0]
    if top in plugins:
        return f"{module.name} (layer {layer_of(module.name)}) imports the plugin {imp.target}"
    if top != "medface":
        return ""
    source, target = layer_of(module.name), layer_of(imp.target)
    if target is None:
        return f"{imp.target} is in no layer of docs/architecture.md"
    if source is not None and target > source:
        what = f"{imp.target}.{imp.name}" if imp.name else imp.target
        return f"{module.name} (layer {source}) imports {what} (layer {target}): a back edge"
    return ""


def violations_in(module: Module, text: str, known: set[str], plugins: set[str]) -> list[str]:
    """The rules ``module`` (with source ``text``) breaks, one finding per import."""
    rule = _plugin_problem if module.plugin else _core_problem
    found = []
    for imp in imports_in(module, text, known):
        problem = rule(module, imp, plugins)
        if problem:
            found.append(f"{module.path.relative_to(REPO)}:{imp.line}: {problem}")
    return found


MODULES = all_modules()
KNOWN = {m.name for m in MODULES}
PLUGINS = set(plugin_packages())


# --------------------------------------------------------------------------- the tests

def test_the_layer_table_lists_every_core_module_and_only_real_ones():
    assert {"medface.errors", "medface.io", "medface.plugin", FACADE} <= set(LAYERS)
    unplaced = sorted(m.name for m in MODULES if m.plugin is None and layer_of(m.name) is None)
    assert not unplaced, f"add these to the table in docs/architecture.md: {unplaced}"
    missing = sorted(name for name in LAYERS if name not in KNOWN)
    assert not missing, f"docs/architecture.md lists modules that do not exist: {missing}"


def test_imports_run_down_the_layers_and_plugins_use_only_the_public_api():
    assert len(PLUGINS) >= 3 and len(MODULES) > 50
    found = [v for m in MODULES for v in violations_in(m, m.path.read_text(encoding="utf-8"), KNOWN, PLUGINS)]
    assert not found, "\n".join(found)


def _planted(name: str, is_package: bool = False) -> Module:
    top = name.split(".")[0]
    folder = REPO / "medface" if top == "medface" else plugin_packages()[top]
    return Module(name, folder / "planted.py", is_package)


@pytest.mark.parametrize("module, text, expected", [
    ("medface.io.planted", "from medface.viz import render\n", "layer 1) imports medface.viz.render (layer 3)"),
    ("medface.io.planted", "def f():\n    from ..report import write_report\n",
     "imports medface.report.write_report (layer 5)"),
    ("medface.report.planted", "import medface.plugin.registry\n", "imports medface.plugin.registry (layer 6)"),
    ("medface.data.planted", "from .. import anatomy\n", "imports medface.anatomy (layer 2)"),
    ("medface.runtime.planted", "from medface import run\n", "imports medface.run (layer 7)"),
    ("medface.viz.planted", "import medface_surgery\n", "imports the plugin medface_surgery"),
    ("medface_forensic.planted", "from medface_surgery.plan import Plan\n", "imports another plugin"),
    ("medface_forensic.planted", "from medface.io._files import x\n", "private module medface.io._files"),
    ("medface_forensic.planted", "from medface.io import _files\n", "private module medface.io._files"),
    ("medface_forensic.planted", "def f():\n    from medface.viz.render import _vtk\n", "private name _vtk"),
])
def test_a_planted_violation_is_caught(module, text, expected):
    found = violations_in(_planted(module), text, KNOWN, PLUGINS)
    assert len(found) == 1 and expected in found[0], found
    assert found[0].split(":")[1].isdigit()  # with its line


@pytest.mark.parametrize("module, text", [
    ("medface.viz.planted", "from ..io import read_mesh\nfrom medface.data import SurfaceMesh\n"),
    ("medface.plugin.planted", "def f():\n    from ..report import write_report\n    import numpy\n"),
    ("medface_forensic.planted", "from medface import __version__\nfrom . import shape_model\n"),
    ("medface_forensic.planted", "from medface.viz import Scene, render_png\nimport medface.io\n"),
])
def test_allowed_imports_pass(module, text):
    assert violations_in(_planted(module), text, KNOWN, PLUGINS) == []
