"""The workstation's scene logic on slicer-core's MRML scene, without a page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="the workstation extra (trame-slicer) is not installed")

import medface  # noqa: E402
from medface import io  # noqa: E402
from medface.data import PanelUpdate  # noqa: E402
from medface.workstation.scene import WorkstationScene  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def segmented(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("segment")
    medface.run("surgery.segment", ct=REPO / "sample_data" / "head_ct.nii.gz", out=out)
    return out


@pytest.fixture()
def scene():
    from trame_slicer.core import SlicerApp

    return WorkstationScene(SlicerApp())


def test_a_result_loads_its_meshes_in_lps_and_leaves_figures_beside_the_scene(scene, segmented):
    nodes = scene.load_result(segmented, "runs/0001-surgery.segment")
    names = sorted(n.GetName() for n in nodes)
    assert names == ["mandible", "skin", "skull"]  # segmentation.png is a figure: shown in the page, not a node
    skin_id = next(e.id for e in scene.entries() if e.name == "skin")
    assert next(e.path for e in scene.entries() if e.name == "skin") == "runs/0001-surgery.segment/skin.ply"
    on_disk = io.read_mesh(segmented / "skin.ply")
    assert np.abs(scene.data_of(skin_id).vertices - on_disk.vertices).max() < 1e-4


def test_a_panel_update_moves_its_nodes_in_place_and_an_edited_node_goes_to_a_command_as_a_file(scene, segmented,
                                                                                               tmp_path):
    skin = io.read_mesh(segmented / "skin.ply")
    first = scene.show_update("move-segment", PanelUpdate(meshes={"skin_predicted": skin}))
    assert [n.GetName() for n in first] == ["move-segment: skin_predicted"]
    moved = type(skin)(skin.vertices + [0.0, 0.0, 5.0], skin.faces, {"skin_change_mm": np.full(len(skin.vertices), 5.0)})
    count = len(scene.entries())
    assert scene.show_update("move-segment", PanelUpdate(meshes={"skin_predicted": moved})) == []
    assert len(scene.entries()) == count
    node_id = first[0].GetID()
    back = scene.data_of(node_id)
    assert np.abs(back.vertices - moved.vertices).max() < 1e-4
    assert np.allclose(back.point_data["skin_change_mm"], 5.0)
    written = scene.write_input(node_id, tmp_path / "inputs")
    assert np.abs(io.read_mesh(written).vertices - moved.vertices).max() < 1e-4


def test_a_panel_hides_only_the_inputs_it_shows_its_own_version_of():
    from medface.workstation.scene import replaced_inputs

    outputs = {"segment_moved": None, "skin_predicted": None}
    assert replaced_inputs(["skull", "segment", "skin", "landmarks"], outputs) == ["segment", "skin"]
    assert replaced_inputs(["skull"], {"face": None, "tissue_depth_face": None}) == []  # the skull stays in view


def test_the_app_runs_a_command_with_an_output_file_and_a_refused_start_leaves_no_run_folder(tmp_path):
    import shutil
    import time

    from medface.workstation.app import Workstation
    from medface.workstation.files import DataFolder

    shutil.copy(REPO / "sample_data" / "landmarks.mrk.json", tmp_path / "landmarks.mrk.json")
    app = Workstation(DataFolder(tmp_path))
    app._on_command(command_id="surgery.segment")
    app.state.command_id = "surgery.segment"
    app.run_command({"ct": "../elsewhere.nii.gz"})
    assert "not a path inside the data folder" in app.state.error_text and not app.jobs
    assert not list((tmp_path / "runs").iterdir())

    app._on_command(command_id="surgery.plan")
    app.state.command_id = "surgery.plan"
    app.run_command({**app.state.form_values, "landmarks": "landmarks.mrk.json", "procedure": "le_fort_i"})
    deadline = time.monotonic() + 120
    while app.jobs and time.monotonic() < deadline:
        app._poll_jobs()
        time.sleep(0.2)
    assert app.state.job["state"] == "done", app.state.job
    (run,) = list((tmp_path / "runs").iterdir())
    assert (run / "plan.json").is_file()  # the output file went into the run's own folder


def test_the_surgery_panel_exports_its_meshes_as_stl_and_runs_the_fem_on_the_sliders_move(tmp_path):
    import shutil
    import time

    from medface.workstation.app import Workstation
    from medface.workstation.files import DataFolder

    for name in ("skull.ply", "mandible.ply", "skin.ply", "landmarks.mrk.json"):
        shutil.copy(REPO / "sample_data" / name, tmp_path / name)
    app = Workstation(DataFolder(tmp_path))
    for name in ("skull.ply", "mandible.ply", "skin.ply", "landmarks.mrk.json"):
        app.load(name)
    app.state.panel_id = "surgery.move-segment"
    app._on_panel(panel_id="surgery.move-segment")
    assert [a["command"] for a in app.state.panel_actions] == ["simulate"]
    app.run_panel_action("simulate")
    assert app.state.error_text == "open the panel first" and not app.jobs
    app.state.panel_picks = {**app.state.panel_picks, "segment": app.state.panel_picks["segment"] or next(
        c["value"] for c in app.state.panel_choices["segment"] if "mandible" in c["title"])}
    app.open_panel()
    assert app.state.panel_open, app.state.error_text
    move = {**app.state.panel_values, "translation_y_mm": -5.0}
    app.state.panel_values = move  # what the slider sets; the page then calls the change handler
    app._on_panel_values(panel_values=move)

    app.export_panel_meshes()
    (folder,) = (tmp_path / "exports").iterdir()
    stls = {p.stem: io.read_mesh(p) for p in folder.glob("*.stl")}
    assert set(stls) == set(app.panel_frame.meshes) == {"segment_moved", "skin_predicted"}
    skin = app.panel_frame.meshes["skin_predicted"]
    from scipy.spatial import cKDTree

    gap, _ = cKDTree(skin.vertices).query(stls["skin_predicted"].vertices)  # STL: float32, vertices re-merged
    assert stls["skin_predicted"].n_vertices == skin.n_vertices and gap.max() < 1e-3

    app.run_panel_action("simulate")
    assert app.jobs and app.state.job["from_panel"], app.state.error_text
    (run,) = (tmp_path / "runs").iterdir()
    plan = io.read_plan(run / "inputs" / "plan.json")
    assert plan.content["moves"][0]["translation_mm"] == [0.0, -5.0, 0.0]
    app.run_panel_action("simulate")
    assert "already running" in app.state.error_text  # one run at a time
    deadline = time.monotonic() + 240
    while app.jobs and time.monotonic() < deadline:
        app._poll_jobs()
        time.sleep(0.5)
    assert app.state.job["state"] == "done", app.state.job
    summary = dict(app.state.job["summary"])
    assert summary["tissue_model"] == "fem"
    # the finite elements move the skin about as far as the bone (nearly incompressible tissue bulges
    # a little beyond it) and by a similar amount as the preview
    assert 0.5 * skin.point_data["skin_change_mm"].max() < float(summary["max_skin_change_mm"]) <= 5.0 * 1.1
    loaded = [n["name"] for n in app.state.scene_nodes if n["path"].startswith(f"runs/{run.name}")]
    assert any("segment" in name for name in loaded) and any("skin" in name for name in loaded), loaded


def test_a_colour_mapped_mesh_gets_a_colour_bar_with_its_array_and_range_and_a_hidden_one_none(scene, segmented):
    skin = io.read_mesh(segmented / "skin.ply")
    change = np.linspace(-2.0, 3.0, skin.n_vertices)
    plain = scene.show_update("p", PanelUpdate(meshes={"plain": skin}))[0]
    (coloured,) = scene.show_update("p", PanelUpdate(meshes={"coloured": type(skin)(
        skin.vertices, skin.faces, {"change_mm": change})}))
    (legend,) = scene.colour_legends()  # the plain skin has no colour bar
    assert (legend["name"], legend["array"]) == ("p: coloured", "change_mm")
    assert (legend["low"], legend["high"]) == pytest.approx((-3.0, 3.0))  # signed values: symmetric about 0
    stops = legend["gradient"].removeprefix("linear-gradient(to right, ").rstrip(")").split(", ")
    assert len(stops) == 9 and stops[0] != stops[-1]  # low and high ends differ in colour
    scene.set_visible(coloured.GetID(), False)
    assert scene.colour_legends() == [] and plain is not None


def test_a_screened_photo_shows_in_the_slice_views_with_its_attention_over_it_and_the_face_points(tmp_path):
    import shutil
    import time

    from medface.workstation.app import Workstation
    from medface.workstation.files import DataFolder
    from medface.workstation.mrml import same_grid

    shutil.copy(REPO / "sample_data" / "photo_frontal.png", tmp_path / "photo.png")
    app = Workstation(DataFolder(tmp_path))
    app._on_command(command_id="phenotype.screen")
    app.state.command_id = "phenotype.screen"
    app.run_command({**app.state.form_values, "image": "photo.png"})
    deadline = time.monotonic() + 180
    while app.jobs and time.monotonic() < deadline:
        app._poll_jobs()
        time.sleep(0.3)
    assert app.state.job["state"] == "done", app.state.job
    names = {n["name"]: n for n in app.state.scene_nodes}
    assert names["photo"]["kind"] == "image" and names["face_points"]["kind"] == "landmarks"
    photo, attention = app.scene.node_named("photo"), app.scene.node_named("attention_on_photo")
    assert same_grid(photo, attention)
    for view in app.slicer.view_manager.get_slice_views():  # the photo behind, the map over it
        assert view.get_background_volume_id() == photo.GetID()
        assert view.get_foreground_volume_id() == attention.GetID() and view.get_foreground_opacity() == 0.5
    # the face's points lie on the photo's plane, inside the picture
    points = app.scene.data_of(names["face_points"]["id"])
    assert np.allclose(points.points[:, 1], 0.0) and np.abs(points.points[:, [0, 2]]).max() < 256


def test_the_3d_view_is_streamed_at_reduced_resolution_while_a_control_moves_and_at_full_once_it_stops():
    import asyncio
    from types import SimpleNamespace

    from medface.workstation.views import InteractiveResolution

    adapter = SimpleNamespace(scale=1)  # trame-rca's view adapter: its scale resizes the render window
    factory = SimpleNamespace(get_views=lambda: [SimpleNamespace(name="ThreeDView")],
                              get_factory_view=lambda name: SimpleNamespace(view_adapter=adapter))
    frames = InteractiveResolution(factory, scale=0.5, still_after_s=0.5)
    frames.moving()  # no event loop (no page): nothing changes
    assert adapter.scale == 1

    async def moves():
        seen = []
        for _ in range(3):
            frames.moving()
            seen.append(adapter.scale)
            await asyncio.sleep(0.02)
        seen.append((adapter.scale, frames.interactive))  # just after the last move: still reduced
        await asyncio.sleep(1.0)
        seen.append((adapter.scale, frames.interactive))  # it stopped: full size again
        return seen

    assert asyncio.run(moves()) == [0.5, 0.5, 0.5, (0.5, True), (1, False)]
