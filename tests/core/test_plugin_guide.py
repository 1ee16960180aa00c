"""The example plugin in docs/plugin-guide.md works as written, loaded from a temporary folder:
its command, its self-test and its interactive panel."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import medface
from medface.cli import main
from medface.data import PanelUpdate, SurfaceMesh
from medface.errors import ParameterError
from medface.io import write_mesh

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugin-guide.md"


def guide_files() -> dict[str, str]:
    """Code blocks of the guide whose first line is '# file: PATH', with the blocks whose first
    line is '# append to: PATH' added to that file in the guide's order."""
    files = {}
    for block in re.findall(r"```(?:toml|python)\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S):
        first, _, body = block.partition("\n")
        if first.startswith("# file: "):
            files[first[len("# file: "):].strip()] = body
        elif first.startswith("# append to: "):
            files[first[len("# append to: "):].strip()] += body
    return files


def add_guide_plugin(medface_plugins, tmp_path: Path) -> None:
    """The guide's hello_medface package, written to a temporary folder and put on the plugin path."""
    files = guide_files()
    assert set(files) == {"hello_medface/medface-plugin.toml", "hello_medface/commands.py",
                          "hello_medface/selftest.py", "hello_medface/panels.py"}
    package = tmp_path / "src" / "hello_medface"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / "src" / name).write_text(text)
    medface_plugins.add_folder(package)


def test_guide_example_plugin_loads_runs_and_selftests(medface_plugins, tmp_path, capsys):
    add_guide_plugin(medface_plugins, tmp_path)

    info = medface.plugins()["hello"]
    assert info.ok, info.reason
    mesh = SurfaceMesh(np.array([[0, 0, 0], [40, 0, 0], [0, 10, 0], [0, 0, 5.0]]),
                       np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    write_mesh(mesh, tmp_path / "m.ply")
    result = medface.run("hello.measure", mesh=tmp_path / "m.ply", factor=0.5)
    assert result.summary["largest_extent_mm"] == 20.0
    assert result.provenance.inputs[0].name == "mesh"

    assert main(["hello", "measure", "--mesh", str(tmp_path / "m.ply"), "--factor", "5000"]) == 2
    assert "above the maximum 1000" in capsys.readouterr().err
    assert main(["plugins", "selftest", "hello"]) == 0
    assert "PASS  hello" in capsys.readouterr().out


def test_guide_example_panel_opens_updates_and_checks_its_slider(medface_plugins, tmp_path, capsys):
    from medface.plugin.panels import open_panel, update_panel

    add_guide_plugin(medface_plugins, tmp_path)
    mesh = SurfaceMesh(np.array([[0, 0, 0], [40, 0, 0], [0, 10, 0], [0, 0, 5.0]]),
                       np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    write_mesh(mesh, tmp_path / "head.stl")
    panel = open_panel("hello.scale", mesh=tmp_path / "head.stl")
    frame = update_panel(panel, "hello.scale", factor=1.5)
    assert isinstance(frame, PanelUpdate)
    assert frame.summary["largest_extent_mm"] == pytest.approx(60.0)
    assert frame.meshes["scaled"].point_data["shift_mm"].max() > 0
    assert update_panel(panel, "hello.scale").summary["largest_extent_mm"] == pytest.approx(40.0)  # the default
    with pytest.raises(ParameterError, match="above the maximum 2"):
        update_panel(panel, "hello.scale", factor=3)

    assert main(["plugins", "info", "hello"]) == 0
    out = capsys.readouterr().out
    assert "panels (the workstation):" in out and "scale" in out and "range: 0.5 to 2" in out
