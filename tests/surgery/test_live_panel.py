"""The `surgery.move-segment` panel (medface_surgery.live.SegmentMovePreview) on the sample head:
a frame is the plan's own move, the skin follows the segment near it and stays far from it, the
landmarks and cephalometric measures follow. Speed is measured by benchmarks, not here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from medface.errors import ParameterError
from medface.io import read_landmarks, read_mesh
from medface.plugin.panels import open_panel, update_panel

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
PANEL = "surgery.move-segment"
#: one move of every control, well inside the sliders' ranges
MOVE = {"translation_x_mm": 1.0, "translation_y_mm": -5.0, "translation_z_mm": 2.0,
        "rotation_x_deg": 4.0, "rotation_y_deg": -2.0, "rotation_z_deg": 3.0}


@pytest.fixture(scope="module")
def data():
    return {"skull": read_mesh(SAMPLE / "skull.ply"), "segment": read_mesh(SAMPLE / "mandible.ply"),
            "skin": read_mesh(SAMPLE / "skin.ply"), "landmarks": read_landmarks(SAMPLE / "landmarks.mrk.json")}


@pytest.fixture(scope="module")
def panel():
    """Opened as the workstation opens it: through the manifest, from the sample files."""
    return open_panel(PANEL, skull=SAMPLE / "skull.ply", segment=SAMPLE / "mandible.ply", skin=SAMPLE / "skin.ply",
                      landmarks=SAMPLE / "landmarks.mrk.json")


def _skin_vertex(data, landmark: str) -> int:
    return int(cKDTree(data["skin"].vertices).query(data["landmarks"][landmark])[1])


def test_no_move_changes_nothing(panel, data):
    frame = update_panel(panel, PANEL)
    skin = frame.meshes["skin_predicted"]
    assert np.array_equal(skin.vertices, data["skin"].vertices)
    assert not skin.point_data["skin_change_mm"].any() and frame.summary["max_skin_change_mm"] == 0.0
    assert np.array_equal(frame.meshes["segment_moved"].vertices, data["segment"].vertices)
    moved = frame.landmarks["landmarks_moved"]
    assert moved.ids == data["landmarks"].ids and np.array_equal(moved.points, data["landmarks"].points)
    changes = {k: v for k, v in frame.summary.items() if "_change_" in k}
    assert changes and not any(changes.values())


def test_a_5_mm_advance_moves_the_segment_exactly_and_the_skin_over_the_chin_most_of_it(panel, data):
    frame = update_panel(panel, PANEL, translation_y_mm=-5.0)  # anterior: LPS y points posterior
    shift = frame.meshes["segment_moved"].vertices - data["segment"].vertices
    assert np.allclose(shift, [0.0, -5.0, 0.0], atol=1e-9)
    change = frame.meshes["skin_predicted"].point_data["skin_change_mm"]
    assert change[_skin_vertex(data, "pog_s")] > 2.5          # over the chin: over half of the move
    assert change[_skin_vertex(data, "g_s")] < 0.5            # the forehead stays
    assert frame.summary["max_skin_change_mm"] <= 5.0 + 1e-6  # a blend never exceeds the bone's move
    moved = frame.landmarks["landmarks_moved"]
    assert np.allclose(moved["me"] - data["landmarks"]["me"], [0.0, -5.0, 0.0])  # carried by the segment
    assert np.array_equal(moved["n"], data["landmarks"]["n"])                    # on the skull: stays
    pog_s = _skin_vertex(data, "pog_s")
    assert np.allclose(moved["pog_s"] - data["landmarks"]["pog_s"],
                       frame.meshes["skin_predicted"].vertices[pog_s] - data["skin"].vertices[pog_s])
    assert frame.summary["snb_change_deg"] > 1.0 and frame.summary["sna_change_deg"] == 0.0  # the mandible came forward


def test_rotations_turn_about_the_condyles_of_a_mandible(panel, data):
    assert panel.pivot_name.startswith("condyles")
    frame = update_panel(panel, PANEL, rotation_x_deg=10.0)
    moved = frame.landmarks["landmarks_moved"]
    assert np.allclose(0.5 * (moved["co_l"] + moved["co_r"]), panel.pivot)
    assert np.linalg.norm(moved["me"] - data["landmarks"]["me"]) > 10.0  # the chin swings down
    assert frame.summary["rotation_deg"] == pytest.approx(10.0)


def test_without_landmarks_a_segment_turns_about_its_centroid_and_nothing_is_measured(data):
    from medface_surgery.cutting import volume_centroid

    panel = open_panel(PANEL, skull=data["skull"], segment=data["segment"], skin=data["skin"])
    frame = update_panel(panel, PANEL, rotation_z_deg=12.0, rotation_x_deg=-5.0)
    assert frame.summary["pivot"] == "segment centroid" and frame.landmarks == {}
    moved = frame.meshes["segment_moved"]
    assert np.allclose(volume_centroid(moved.vertices, moved.faces)[1], panel.pivot, atol=1e-6)
    assert "snb_deg" not in frame.summary and frame.summary["max_skin_change_mm"] > 0


def test_a_frame_is_the_plans_move_applied_as_a_plan_is(panel, data):
    """The same move written as a plan (segment, translation, rotation, pivot) gives the same
    segment, landmarks and preview skin through the plan machinery."""
    from medface_surgery import RigidBlendPreview, SurgeryPlan
    from medface_surgery.plan import new_plan

    move = {"segment": "mandible", "translation_mm": [MOVE["translation_x_mm"], MOVE["translation_y_mm"],
                                                      MOVE["translation_z_mm"]],
            "rotation_deg": [MOVE["rotation_x_deg"], MOVE["rotation_y_deg"], MOVE["rotation_z_deg"]],
            "pivot": [float(x) for x in panel.pivot]}
    plan = SurgeryPlan(new_plan(segments=[{"name": "mandible", "bone": "mandible"}], moves=[move],
                                landmarks=data["landmarks"].to_dict()))
    planned = plan.apply({"mandible": data["segment"]})
    skin = RigidBlendPreview({"cranium": data["skull"], "mandible": data["segment"]}, data["skin"],
                             fixed=["cranium"]).update(planned)
    frame = update_panel(panel, PANEL, **MOVE)
    assert np.allclose(frame.meshes["segment_moved"].vertices, planned.segments["mandible"].vertices, atol=1e-9)
    assert np.allclose(frame.meshes["skin_predicted"].vertices, skin, atol=1e-9)
    moved = frame.landmarks["landmarks_moved"]
    for lid in ("me", "pog", "gn", "b", "go_l", "go_r"):
        assert np.allclose(moved[lid], planned.landmarks[lid], atol=1e-9), lid


def test_a_frame_agrees_with_the_preview_simulation_of_the_same_plan(panel, data):
    from medface_surgery import Simulation
    from medface_surgery.plan import new_plan

    move = {"segment": "mandible", "translation_mm": [0.0, -5.0, 0.0], "pivot": [float(x) for x in panel.pivot]}
    plan = new_plan(segments=[{"name": "mandible", "bone": "mandible"}], moves=[move],
                    landmarks=data["landmarks"].to_dict())
    sim = Simulation(plan, tissue="preview").run({"cranium": data["skull"], "mandible": data["segment"]}, data["skin"])
    frame = update_panel(panel, PANEL, translation_y_mm=-5.0)
    assert np.allclose(frame.meshes["skin_predicted"].vertices, sim.skin_preview, atol=1e-6)
    assert sim.fixed == ["cranium (fixed)"]  # the mandible, moved whole, is not also kept in place


def test_the_fem_action_gets_the_sliders_move_as_a_plan_for_surgery_simulate(panel, data):
    from medface.plugin.panels import action_inputs
    from medface_surgery import Simulation

    given = action_inputs(panel, PANEL, "simulate", **MOVE)
    assert given["bone"] is data["skull"] or np.array_equal(given["bone"].vertices, data["skull"].vertices)
    assert np.array_equal(given["mandible"].vertices, data["segment"].vertices) and given["tissue"] == "fem"
    sim = Simulation(given["plan"], tissue="preview").run({"cranium": given["bone"], "mandible": given["mandible"]},
                                                          given["skin"])
    frame = update_panel(panel, PANEL, **MOVE)
    assert np.allclose(sim.segments["segment"].vertices, frame.meshes["segment_moved"].vertices, atol=1e-9)
    assert np.allclose(sim.skin_preview, frame.meshes["skin_predicted"].vertices, atol=1e-6)
    moved = frame.landmarks["landmarks_moved"]
    for lid in ("me", "pog", "b"):  # carried by the segment in both
        assert np.allclose(sim.planned.landmarks[lid], moved[lid], atol=1e-9), lid


def test_a_slider_beyond_its_range_is_refused_before_the_panel_runs(panel):
    with pytest.raises(ParameterError, match="parameter 'translation_y_mm': -20 mm is below the minimum -15 mm"):
        update_panel(panel, PANEL, translation_y_mm=-20.0)
    with pytest.raises(ParameterError, match="parameter 'rotation_z_deg': 16 deg is above the maximum 15 deg"):
        update_panel(panel, PANEL, rotation_z_deg=16)
