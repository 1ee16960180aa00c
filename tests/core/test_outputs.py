"""Declared outputs: a command hands its results back and the runner writes them through io/viz."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import medface
from medface.data import Landmarks, Result, SurfaceMesh
from medface.data.outputs import Figure, Output
from medface.errors import PluginError
from medface.io import read_landmarks, read_mesh

MANIFEST = """
name = "maker"
title = "Output maker"
version = "0.1.0"
category = "Testing"
contributors = ["medface tests"]
help = "Declares one output of each kind."

[[commands]]
id = "make"
help = "Make a tetrahedron, two landmarks, a table and a figure."
python_name = "maker_pkg.commands:make"

[[commands.parameters]]
name = "size"
type = "float"
default = 10.0
min = 1.0
max = 100.0
units = "mm"
help = "Edge length."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Result folder."
"""

CODE = """
import numpy as np
from medface.data import Landmarks, Result, SurfaceMesh
from medface.data.outputs import Figure

BUILT = []


def scenes(mesh):
    from medface.viz import Scene

    BUILT.append(True)
    return [Scene().add_mesh(mesh)]


def make(size=10.0):  # no `out` parameter: writing is the runner's job
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) * size
    mesh = SurfaceMesh(v, np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]), name="tetra")
    result = Result(command="maker.make", summary={"size_mm": size})
    result.declare("tetrahedron", "meshes/tetra.ply", mesh)
    result.declare("corners", "corners.mrk.json", Landmarks.from_dict({"n": v[1], "pog": v[3]}))
    result.declare("edges", "edges.csv", [{"edge": "x", "mm": size}, {"edge": "y", "mm": size, "note": "a,b"}])
    result.declare("numbers", "numbers.json", {"volume_mm3": size ** 3 / 6})
    result.declare("picture", "tetra.png", Figure(scenes=lambda: scenes(mesh), size=(64, 64)))
    result.data["mesh"] = mesh
    return result
"""


@pytest.fixture
def maker(medface_plugins):
    medface_plugins.add("maker_pkg", manifest=MANIFEST, modules={"commands.py": CODE})


def test_declared_outputs_are_written_where_declared_and_read_back(maker, tmp_path):
    out = tmp_path / "run"
    r = medface.run("maker.make", size=20.0, out=out)
    assert r.outputs["tetrahedron"] == str(out / "meshes" / "tetra.ply")
    mesh = read_mesh(r.outputs["tetrahedron"])
    assert np.allclose(mesh.vertices.max(axis=0), 20.0) and len(mesh.faces) == 4
    corners = read_landmarks(r.outputs["corners"]).to_dict()
    assert np.allclose(corners["pog"], [0, 0, 20])
    with open(r.outputs["edges"], encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["edge"] for row in rows] == ["x", "y"] and rows[1]["note"] == "a,b" and rows[0]["note"] == ""
    numbers = json.loads((out / "numbers.json").read_text(encoding="utf-8"))
    assert numbers["volume_mm3"] == pytest.approx(20.0 ** 3 / 6)
    assert r.figures["picture"] == str(out / "tetra.png") and "picture" not in r.outputs
    from PIL import Image

    with Image.open(r.figures["picture"]) as png:
        assert png.size == (64, 64)
    saved = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert saved["outputs"]["corners"].endswith("corners.mrk.json") and saved["figures"]["picture"].endswith(".png")


def test_without_an_output_folder_nothing_is_written_and_no_figure_is_built(maker, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = medface.run("maker.make", size=5.0)
    assert list(work.iterdir()) == [] and r.outputs == {} and r.figures == {}
    assert {o.name: o.kind for o in r.declared} == {"tetrahedron": "mesh", "corners": "landmarks",
                                                   "edges": "table", "numbers": "json", "picture": "figure"}
    import sys

    assert sys.modules["maker_pkg.commands"].BUILT == []  # the figure's scenes were never built
    assert r.data["mesh"].vertices.max() == 5.0


@pytest.mark.parametrize("filename", ["../escape.ply", "/tmp/abs.ply", ""])
def test_an_output_must_stay_inside_the_output_folder(filename):
    with pytest.raises(PluginError, match="relative path inside the output folder"):
        Output("x", filename, SurfaceMesh(np.zeros((3, 3)), np.array([[0, 1, 2]])))


def test_a_value_of_no_known_kind_is_refused_with_the_kinds():
    with pytest.raises(PluginError, match="unknown kind ''.*mesh, volume"):
        Result(command="x.y").declare("thing", "thing.bin", object())
