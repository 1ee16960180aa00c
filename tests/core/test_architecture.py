"""The shape of the code (docs/architecture.md): small functions, and commands that are adapters.

A command is a short adapter over plugin logic: it binds parameters, calls logic and declares
its outputs; the runner writes them. So no command function is long, and no command writes a
file or draws a picture itself.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_LINES, MAX_POSITIONAL = 80, 8
MAX_COMMAND_LINES = 45  # "about 20-40 lines" plus a docstring
#: what only the runner (medface.plugin.writing) and io/viz themselves may call
WRITERS = {"write_mesh", "write_volume", "write_landmarks", "write_image", "write_plan", "write_dicom_series",
           "render_png", "render_panels", "render_image", "export_html", "savefig"}


def _functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _positional(node) -> int:
    names = [a.arg for a in node.args.posonlyargs + node.args.args]
    return len(names) - (1 if names and names[0] in ("self", "cls") else 0)


def _sources():
    for root in ("medface", "plugins"):
        yield from sorted((REPO / root).rglob("*.py"))


def test_no_function_is_longer_than_80_lines_or_takes_more_than_8_positional_parameters():
    too_long = []
    for path in _sources():
        for node in _functions(path):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES or _positional(node) > MAX_POSITIONAL:
                too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {lines} lines, "
                                f"{_positional(node)} positional")
    assert not too_long, "\n".join(too_long)


def _command_functions():
    for manifest in sorted((REPO / "plugins").glob("*/*/medface-plugin.toml")):
        doc = tomllib.loads(manifest.read_text(encoding="utf-8"))
        for command in doc.get("commands", []):
            module, func = command["python_name"].split(":")
            path = manifest.parent.parent.joinpath(*module.split(".")).with_suffix(".py")
            yield f"{doc['name']}.{command['id']}", path, func


def _calls(node) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


@pytest.mark.parametrize("command_id, path, func", list(_command_functions()),
                         ids=lambda v: v if isinstance(v, str) and "." in v and "/" not in v else "")
def test_a_command_is_a_short_adapter_that_neither_writes_nor_draws(command_id, path, func):
    nodes = [n for n in _functions(path) if n.name == func]
    assert nodes, f"{command_id}: {path.name} defines no {func}"
    node = nodes[0]
    lines = node.end_lineno - node.lineno + 1
    assert lines <= MAX_COMMAND_LINES, f"{command_id}: {func} is {lines} lines; move the logic out of the command"
    module = ast.parse(path.read_text(encoding="utf-8"))
    writes = _calls(module) & WRITERS
    assert not writes, (f"{command_id}: {path.name} calls {sorted(writes)}; a command declares its outputs "
                        "(Result.declare) and the runner writes them")
