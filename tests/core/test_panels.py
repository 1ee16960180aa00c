"""Interactive panels: the manifest's `[[panels]]`, the registry's lookup, and the core's
open/update contract (medface.plugin.panels) on a temporary plugin whose panel scales a mesh."""

from __future__ import annotations

import sys
import tomllib

import numpy as np
import pytest

from medface.data import Landmarks, PanelUpdate, SurfaceMesh
from medface.errors import ParameterError, PluginError
from medface.io import write_mesh
from medface.plugin.manifest import build_manifest, problems_in
from medface.plugin.manifest_summary import ManifestSummary
from medface.plugin.panels import open_panel, update_panel

MANIFEST = """
name = "lens"
title = "Lens"
version = "1.0.0"
category = "Testing"
contributors = ["medface tests"]
help = "Scales meshes live."

[[commands]]
id = "noop"
help = "Does nothing."
python_name = "lens_pkg.logic:noop"

[[commands]]
id = "measure"
help = "Measures a mesh."
python_name = "lens_pkg.logic:measure"

[[commands.parameters]]
name = "mesh"
type = "mesh"
help = "The mesh."

[[commands.parameters]]
name = "factor"
type = "float"
default = 1.0
help = "Scale factor."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Folder."

[[panels]]
id = "zoom"
title = "Zoom a mesh"
help = "Scale a mesh about its centroid."
python_name = "lens_pkg.logic:Zoom"

[[panels.actions]]
command = "measure"
title = "Measure the zoomed mesh"

[[panels.parameters]]
name = "mesh"
type = "mesh"
help = "The mesh."

[[panels.parameters]]
name = "marks"
type = "landmarks"
required = false
help = "Landmarks scaled with the mesh."

[[panels.parameters]]
name = "factor"
type = "float"
default = 1.0
min = 0.5
max = 2.0
help = "Scale factor."

[[panels.parameters]]
name = "axis"
type = "enum"
choices = ["all", "x"]
default = "all"
help = "Scale every axis or x only."

[[panels]]
id = "liar"
help = "Returns what a panel must not."
python_name = "lens_pkg.logic:Liar"

[[panels.actions]]
command = "noop"
title = "Nothing"

[[panels.parameters]]
name = "mode"
type = "enum"
choices = ["dict", "bad-mesh"]
default = "dict"
help = "Which wrong answer."

[[panels]]
id = "mute"
help = "Has no update method."
python_name = "lens_pkg.logic:noop"
"""

CODE = """
import numpy as np
from medface.data import Landmarks, PanelUpdate, Result, SurfaceMesh

OPENED = []


def noop():
    return Result(command="lens.noop")


def measure(mesh, factor=1.0, out=None):
    return Result(command="lens.measure", summary={"extent_mm": float(mesh.extent.max() * factor)})


class Zoom:
    def __init__(self, mesh, marks=None):
        OPENED.append((type(mesh).__name__, marks))
        self.mesh, self.marks = mesh, marks
        self.centre = mesh.vertices.mean(axis=0)
        self.updates = 0

    def update(self, factor, axis):
        self.updates += 1
        scale = np.array([factor, 1.0, 1.0]) if axis == "x" else np.full(3, factor)
        moved = self.centre + (self.mesh.vertices - self.centre) * scale
        shift = np.linalg.norm(moved - self.mesh.vertices, axis=1)
        marks = {} if self.marks is None else {
            "marks": Landmarks(self.marks.ids, self.centre + (self.marks.points - self.centre) * scale)}
        return PanelUpdate(meshes={"zoomed": SurfaceMesh(moved, self.mesh.faces, point_data={"shift_mm": shift})},
                           landmarks=marks, summary={"axis": axis, "max_shift_mm": float(shift.max())})

    def command_inputs(self, command, factor, axis):
        return {"mesh": self.update(factor, axis).meshes["zoomed"], "factor": 1.0}


class Liar:
    def command_inputs(self, command, mode):
        return {"out": "/elsewhere"} if mode == "dict" else ["mesh"]

    def update(self, mode):
        if mode == "dict":
            return {"summary": {}}
        return PanelUpdate(meshes={"face": np.zeros((3, 3))}, summary={"list": [1, 2]})
"""

BROKEN_IMPORT = MANIFEST.replace('name = "lens"', 'name = "cracked"').replace("lens_pkg", "cracked_pkg")
MISSING_MODULE = MANIFEST.replace('name = "lens"', 'name = "hollow"').replace("lens_pkg", "hollow_pkg").replace(
    "hollow_pkg.logic:Zoom", "hollow_pkg.nowhere:Zoom")

TETRA = SurfaceMesh(np.array([[0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 30.0]]),
                    np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))


@pytest.fixture
def lens(medface_plugins):
    medface_plugins.add("lens_pkg", manifest=MANIFEST, modules={"logic.py": CODE})
    return medface_plugins.registry


# ------------------------------------------------------------------ the manifest

def _with_panel_parameter(**parameter) -> dict:
    doc = tomllib.loads(MANIFEST)
    doc["panels"][0]["parameters"].append({"name": "extra", "help": "An extra parameter.", **parameter})
    return doc


def test_a_panel_is_a_manifest_contribution_with_inputs_and_controls():
    m = build_manifest(tomllib.loads(MANIFEST))
    zoom = m.panel("zoom")
    assert zoom.full_id == "lens.zoom" and zoom.heading == "Zoom a mesh" and m.panel("nothing") is None
    assert [p.name for p in zoom.inputs] == ["mesh", "marks"]
    assert [p.name for p in zoom.controls] == ["factor", "axis"]
    assert m.summary().panels[0].python_name == "lens_pkg.logic:Zoom"
    assert type(m).model_validate(m.to_dict()) == m


def test_a_manifest_without_panels_has_none_and_an_old_remembered_summary_reads_as_none():
    doc = tomllib.loads(MANIFEST)
    del doc["panels"]
    m = build_manifest(doc)
    assert m.panels == () and m.summary().panels == ()
    old = m.summary().to_dict()
    del old["panels"]  # what a summary remembered before panels existed holds
    assert ManifestSummary.from_dict(old) == m.summary()


@pytest.mark.parametrize("ptype", ["file", "directory", "string", "plan"])
def test_a_panel_parameter_that_is_no_scene_data_and_no_control_is_refused(ptype):
    problems = problems_in(_with_panel_parameter(type=ptype, required=False))
    assert problems == [f"panels[0].parameters[4].type: '{ptype}' is not meaningful for a live panel; use volume, "
                        "mesh, landmarks, image for scene data or int, float, bool, enum for controls"]


def test_a_panel_output_a_control_without_default_and_a_slider_without_ends_are_refused():
    assert problems_in(_with_panel_parameter(type="mesh", channel="output", required=False)) == [
        "panels[0].parameters[4].channel: a panel has no output parameters: what it shows comes back from "
        "update() as a PanelUpdate"]
    assert problems_in(_with_panel_parameter(type="bool")) == [
        "panels[0].parameters[4].default: a panel's bool control needs a default: the value its widget starts at"]
    assert problems_in(_with_panel_parameter(type="int", default=1, min=0)) == [
        "panels[0].parameters[4]: a panel's int control needs min and max: the ends of its slider"]


def test_panel_ids_are_unique_and_their_parameters_checked_like_a_commands():
    doc = tomllib.loads(MANIFEST)
    doc["panels"].append(dict(doc["panels"][0]))
    doc["panels"][0]["parameters"][2] = {**doc["panels"][0]["parameters"][2], "default": 5.0}
    problems = problems_in(doc)
    assert "panels[3].id: duplicate panel id 'zoom'" in problems
    assert "panels[0].parameters[2].default: 5 is above max 2" in problems


# ------------------------------------------------------------------ the registry

def test_the_registry_lists_and_finds_panels(lens):
    assert [p.full_id for p in lens.panels()] == ["lens.zoom", "lens.liar", "lens.mute"]
    info, spec = lens.panel("lens.zoom")
    assert info.name == "lens" and spec.python_name == "lens_pkg.logic:Zoom"
    assert lens["lens"].to_dict()["panels"] == ["zoom", "liar", "mute"]
    with pytest.raises(PluginError, match=r"no panel 'zoomer' \(panels: zoom, liar, mute\)"):
        lens.panel("lens.zoomer")
    with pytest.raises(PluginError, match="not a panel id"):
        lens.panel("lens")
    with pytest.raises(PluginError, match="no plugin named 'optics'"):
        open_panel("optics.zoom", mesh=TETRA)


def test_a_panel_whose_module_file_is_missing_makes_its_plugin_broken_at_the_scan(medface_plugins):
    medface_plugins.add("hollow_pkg", manifest=MISSING_MODULE, modules={"logic.py": CODE})
    info = medface_plugins.registry["hollow"]
    assert not info.ok and "hollow_pkg.nowhere:Zoom: module file" in info.reason
    with pytest.raises(PluginError, match="broken"):
        open_panel("hollow.zoom", mesh=TETRA)


def test_a_panel_whose_import_fails_is_a_plugin_error_and_the_plugin_broken(medface_plugins):
    medface_plugins.add("cracked_pkg", manifest=BROKEN_IMPORT,
                        modules={"logic.py": "import surely_not_installed_module\n" + CODE})
    assert medface_plugins.registry["cracked"].ok  # the static check cannot know
    with pytest.raises(PluginError, match="importing cracked_pkg.logic:Zoom failed: ModuleNotFoundError"):
        open_panel("cracked.zoom", mesh=TETRA)
    assert not medface_plugins.registry["cracked"].ok


# ------------------------------------------------------------------ opening and updating

def test_a_panel_opens_from_a_path_or_a_data_object_and_updates_live(lens, tmp_path):
    write_mesh(TETRA, tmp_path / "tetra.ply")
    from_path = open_panel("lens.zoom", mesh=tmp_path / "tetra.ply")
    marks = Landmarks(["a"], np.array([[10.0, 0, 0]]))
    from_object = open_panel("lens.zoom", mesh=TETRA, marks=marks)
    assert sys.modules["lens_pkg.logic"].OPENED == [("SurfaceMesh", None), ("SurfaceMesh", marks)]

    frame = update_panel(from_path, "lens.zoom", factor=2)
    assert isinstance(frame, PanelUpdate) and frame.summary["axis"] == "all"  # the enum's default
    assert np.allclose(frame.meshes["zoomed"].extent, 2 * TETRA.extent)
    assert frame.landmarks == {}
    spec = lens.panel("lens.zoom")[1]
    moved = update_panel(from_object, spec, factor="1.5", axis="X")  # converted as on a command line
    assert moved.summary["axis"] == "x" and np.allclose(moved.meshes["zoomed"].extent, [15, 20, 30])
    assert moved.landmarks["marks"]["a"][0] == pytest.approx(2.5 + 1.5 * 7.5)
    at_rest = update_panel(from_object, spec)
    assert at_rest.summary["max_shift_mm"] == 0.0


def test_values_are_checked_before_plugin_code_runs(lens):
    with pytest.raises(ParameterError, match="parameter 'mesh': is required"):
        open_panel("lens.zoom")
    assert "lens_pkg.logic" not in sys.modules  # refused before the import
    with pytest.raises(ParameterError, match="parameter 'mesh': expected a path or a SurfaceMesh"):
        open_panel("lens.zoom", mesh=42)
    with pytest.raises(ParameterError, match="parameter 'factor': is a control of panel lens.zoom: give it to "
                                             r"update_panel\(\)"):
        open_panel("lens.zoom", mesh=TETRA, factor=1.2)
    panel = open_panel("lens.zoom", mesh=TETRA)
    with pytest.raises(ParameterError, match="parameter 'factor': 2.5 is above the maximum 2"):
        update_panel(panel, "lens.zoom", factor=2.5)
    with pytest.raises(ParameterError, match="'spin' is not one of: all, x"):
        update_panel(panel, "lens.zoom", axis="spin")
    with pytest.raises(ParameterError, match="has no parameter 'zoom'"):
        update_panel(panel, "lens.zoom", zoom=1.0)
    with pytest.raises(ParameterError, match="is an input of panel lens.zoom: give it to open_panel"):
        update_panel(panel, "lens.zoom", mesh=TETRA)
    assert panel.updates == 0  # no update ran


def test_an_update_that_returns_no_valid_panel_update_is_a_plugin_error(lens):
    liar = open_panel("lens.liar")
    with pytest.raises(PluginError, match="Liar.update returned dict, not a medface.data.PanelUpdate"):
        update_panel(liar, "lens.liar")
    with pytest.raises(PluginError, match=r"2 problem\(s\): meshes\['face'\]: a ndarray, not a SurfaceMesh; "
                                          r"summary\['list'\]: a list, not a number or text"):
        update_panel(liar, "lens.liar", mode="bad-mesh")
    with pytest.raises(PluginError, match="lens_pkg.logic:noop has no update"):
        open_panel("lens.mute")


# ------------------------------------------------------------------ actions

def test_an_action_must_name_a_command_of_its_own_plugin():
    doc = tomllib.loads(MANIFEST)
    doc["panels"][0]["actions"].append({"command": "simulate", "title": "Simulate"})
    assert problems_in(doc) == ["panels[0].actions[1].command: 'simulate' is not a command of plugin 'lens' "
                                "(it has measure, noop)"]
    assert build_manifest(tomllib.loads(MANIFEST)).panel("zoom").actions[0].title == "Measure the zoomed mesh"


def test_an_action_hands_the_panels_current_state_to_its_command(lens):
    import medface
    from medface.plugin.panels import action_inputs

    panel = open_panel("lens.zoom", mesh=TETRA)
    given = action_inputs(panel, "lens.zoom", "measure", factor=2.0)
    assert set(given) == {"mesh", "factor"} and np.allclose(given["mesh"].extent, 2 * TETRA.extent)
    assert medface.run("lens.measure", **given).summary["extent_mm"] == pytest.approx(60.0)
    with pytest.raises(ParameterError, match="panel lens.zoom has no action running 'noop' \\(it has measure\\)"):
        action_inputs(panel, "lens.zoom", "noop")
    with pytest.raises(ParameterError, match="parameter 'factor': 3 is above the maximum 2"):
        action_inputs(panel, "lens.zoom", "measure", factor=3)


def test_an_action_whose_inputs_are_wrong_is_a_plugin_error(lens):
    from medface.plugin.panels import action_inputs

    liar = open_panel("lens.liar")
    with pytest.raises(PluginError, match=r"command_inputs\('noop'\) must return a dict of input parameters of "
                                          r"lens.noop \(\); got \['out'\]"):
        action_inputs(liar, "lens.liar", "noop")
    with pytest.raises(PluginError, match="got list"):
        action_inputs(liar, "lens.liar", "noop", mode="bad-mesh")
