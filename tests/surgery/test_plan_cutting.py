"""Surgical plans (schema, validation, moves, Slicer planes), presets and cutting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from medface_surgery import plan as P
from medface_surgery.cutting import CutPlane, cut, slab_volume_estimate, to_manifold
from medface_surgery.presets import bsso, genioplasty, le_fort_i, make_plan

from medface.data import SurfaceMesh
from medface.errors import InputError, ParameterError


def _mesh(tm, name="solid") -> SurfaceMesh:
    return SurfaceMesh(tm.vertices, tm.faces, name=name)


# ---------------------------------------------------------------------------------------------
# plan document
def test_schema_round_trip(tmp_path, landmarks):
    plan = make_plan("bimaxillary", landmarks, advance=4.0, mandible_advance=6.0)
    assert P.validate_plan(plan) == []
    path = P.save_plan(plan, tmp_path / "plan.json")
    again = P.load_plan(path)
    assert again.kind == "medface.surgery.plan" and again.version == P.VERSION
    assert json.loads(path.read_text(encoding="utf-8")) == again.to_json_dict()
    assert again.to_json_dict() == json.loads(json.dumps(plan.to_json_dict()))
    assert {s["name"] for s in again.content["segments"]} == {"maxilla", "mandible_distal", "proximal_l", "proximal_r"}


def _bad_plan() -> dict:
    return {"kind": P.KIND, "version": P.VERSION,
            "osteotomies": [{"name": "cut", "bone": "cranium", "centre": [0, 0, 0], "normal": [0, 0, 0]},
                            {"name": "cut", "bone": "cranium", "centre": [0, 0, 0], "normal": [0, 0, 1]}],
            "segments": [{"name": "maxilla", "bone": "cranium", "cuts": [{"osteotomy": "cut", "side": "positive"}]}],
            "moves": [{"segment": "jaw", "translation_mm": [0, 0, 1]},
                      {"segment": "maxilla", "translation_mm": [0, -35, 0]},
                      {"segment": "maxilla", "rotation_deg": [50, 0, 0], "pivot": [0, 0, 0]}]}


def test_validation_lists_every_problem():
    problems = P.validate_plan(_bad_plan())
    text = "\n".join(problems)
    assert "duplicate osteotomy name 'cut'" in text
    assert "normal is zero" in text
    assert "unknown segment 'jaw'" in text
    assert "35.0 mm exceeds the 30 mm limit" in text
    assert "50.0 deg exceeds the 45 deg limit" in text
    with pytest.raises(ParameterError) as err:
        P.check_plan(_bad_plan())
    assert len(err.value.problems) == len(problems) >= 5


def test_schema_errors_are_listed():
    doc = {"kind": P.KIND, "version": P.VERSION, "osteotomies": [{"name": "x", "centre": [0, 0]}], "extra": 1}
    problems = P.validate_plan(doc)
    assert any("extra" in p for p in problems)
    assert any("osteotomies/0" in p for p in problems)


def test_move_matrix_convention():
    m = P.move_matrix({"segment": "s", "translation_mm": [1, 2, 3]})
    assert np.allclose(m[:3, 3], [1, 2, 3]) and np.allclose(m[:3, :3], np.eye(3))
    pivot = [10.0, -20.0, 5.0]
    m = P.move_matrix({"segment": "s", "rotation_deg": [10, 0, 0], "pivot": pivot})
    assert np.allclose(P.transform_points(m, np.array(pivot)), pivot)  # the pivot stays put
    front = P.transform_points(m, np.array(pivot) + [0, -10, 0])  # 10 mm anterior of the pivot
    assert front[2] < pivot[2]  # + pitch moves anterior points down
    yaw = P.move_matrix({"segment": "s", "rotation_deg": [0, 0, 10], "pivot": [0, 0, 0]})
    assert P.transform_points(yaw, np.array([0, -10.0, 0]))[0] > 0  # + yaw: anterior turns to the left
    with pytest.raises(ParameterError, match=r"31.0 mm"):
        P.move_matrix({"segment": "s", "translation_mm": [0, 31, 0]})
    with pytest.raises(ParameterError, match=r"46.0 deg"):
        P.move_matrix({"segment": "s", "rotation_deg": [0, 0, 46], "pivot": [0, 0, 0]})


def test_slicer_plane_round_trip(landmarks):
    ost = le_fort_i(landmarks)
    doc = P.plane_to_slicer(ost)
    assert doc["markups"][0]["type"] == "Plane" and doc["markups"][0]["coordinateSystem"] == "LPS"
    back = P.plane_from_slicer(json.loads(json.dumps(doc)))
    assert np.allclose(back["centre"], ost["centre"]) and np.allclose(back["normal"], ost["normal"])
    assert np.allclose(back["size_mm"], ost["size_mm"]) and back["bone"] == "cranium"
    ras = json.loads(json.dumps(doc))
    m = ras["markups"][0]
    m["coordinateSystem"] = "RAS"
    del m["objectToBase"]
    m["center"] = [-m["center"][0], -m["center"][1], m["center"][2]]
    m["normal"] = [-m["normal"][0], -m["normal"][1], m["normal"][2]]
    back = P.plane_from_slicer(ras)
    assert np.allclose(back["centre"], ost["centre"]) and np.allclose(back["normal"], ost["normal"])


# ---------------------------------------------------------------------------------------------
# presets
def _side(ost, point) -> float:
    return float((np.asarray(point) - ost["centre"]) @ ost["normal"])


def test_presets_are_anatomically_placed(landmarks):
    lf = le_fort_i(landmarks)
    z = lf["centre"][2]
    assert landmarks["pr"][2] < z < landmarks["or_l"][2] - 10  # above the alveolus, well below orbitale
    assert z > landmarks["ans"][2]  # ANS goes with the maxilla
    for mobile in ("a", "ans", "pr"):
        assert _side(lf, landmarks[mobile]) > 0
    for fixed in ("or_l", "or_r", "n", "zm_l"):
        assert _side(lf, landmarks[fixed]) < 0
    gen = genioplasty(landmarks)
    assert landmarks["me"][2] + 8 <= gen["centre"][2] < landmarks["id"][2] - 15
    assert _side(gen, landmarks["me"]) > 0 and _side(gen, landmarks["pog"]) > 0
    assert _side(gen, landmarks["id"]) < 0 and _side(gen, landmarks["b"]) < 0
    for ost in bsso(landmarks):
        s = ost["name"][-1]
        assert _side(ost, landmarks["pog"]) > 0 and _side(ost, landmarks["id"]) > 0
        assert _side(ost, landmarks[f"go_{s}"]) < 0 and _side(ost, landmarks[f"co_{s}"]) < 0
    with pytest.raises(ParameterError, match="below orbitale"):
        le_fort_i(landmarks, above_ans_mm=20.0)
    with pytest.raises(InputError, match="needs landmark"):
        make_plan("genioplasty", {k: v for k, v in landmarks.items() if k != "me"})


def test_presets_follow_the_head_in_any_pose(landmarks):
    rot = trimesh.transformations.rotation_matrix(0.4, [0.3, 1, 0.2])[:3, :3]
    moved = {k: rot @ p + [5, -7, 9] for k, p in landmarks.items()}
    a, b = genioplasty(landmarks), genioplasty(moved)
    assert np.allclose(rot @ a["centre"] + [5, -7, 9], b["centre"], atol=1e-6)
    assert np.allclose(rot @ a["normal"], b["normal"], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# cutting
def _check_volumes(mesh, planes, kerf, expected_slab=None, rel=0.01):
    result = cut(mesh, planes, kerf)
    for piece in result.pieces:
        assert piece.mesh.is_watertight() and piece.mesh.boundary_edges().shape[0] == 0
    original = mesh.signed_volume()
    estimate = sum(slab_volume_estimate(mesh, p, kerf) for p in planes) if expected_slab is None else expected_slab
    assert result.pieces_volume == pytest.approx(original - estimate, rel=rel)
    assert result.pieces_volume + result.kerf_volume == pytest.approx(original, rel=1e-6)
    return result


def test_cut_box_kerf_is_exact():
    box = _mesh(trimesh.creation.box((20, 30, 40)), "box")
    result = _check_volumes(box, [CutPlane("p", [0, 0, 3], [0, 0, 1])], 1.0, expected_slab=20 * 30 * 1.0, rel=1e-9)
    assert [round(p.volume, 6) for p in result.pieces] == [20 * 30 * 22.5, 20 * 30 * 16.5]
    assert result.pieces[0].sides == {"p": -1}


def test_cut_sphere_matches_analytic_slab():
    r, h = 20.0, 0.75  # kerf 1.5 mm through the centre
    sphere = _mesh(trimesh.creation.icosphere(subdivisions=5, radius=r), "sphere")
    slab = np.pi * (2 * h * r ** 2 - 2 * h ** 3 / 3)
    result = cut(sphere, [CutPlane("mid", [0, 0, 0], [0, 0, 1])], 2 * h)
    assert len(result.pieces) == 2 and all(p.mesh.is_watertight() for p in result.pieces)
    assert result.kerf_volume == pytest.approx(slab, rel=0.01)
    assert result.pieces_volume == pytest.approx(4 / 3 * np.pi * r ** 3 - slab, rel=0.01)


def test_cut_phantom_le_fort_and_genioplasty(skull, mandible, landmarks):
    lf = P.cut_plane(le_fort_i(landmarks))
    res = _check_volumes(skull, [lf], 1.0)
    big = [p for p in res.pieces if p.volume > 100]
    assert len(big) == 2 and big[1].sides["le_fort_i"] == 1  # the maxilla below the cut
    gen = P.cut_plane(genioplasty(landmarks))
    res = _check_volumes(mandible, [gen], 1.0)
    assert [p.sides["genioplasty"] for p in res.pieces] == [-1, 1]


def test_read_only_mesh_arrays_go_through_to_manifold():
    # manifold3d refuses read-only arrays; a mesh may hold them (memory-mapped or shared)
    box = _mesh(trimesh.creation.box((20, 30, 40)), "read-only box")
    box.vertices.flags.writeable = False  # float64 already: not copied by a dtype conversion
    box.faces.flags.writeable = False
    solid = to_manifold(box)
    assert solid.volume() == pytest.approx(20 * 30 * 40, rel=1e-9)
    assert not box.vertices.flags.writeable and not box.faces.flags.writeable  # the inputs are left as they were


def test_plane_missing_bone_and_open_mesh_are_refused(mandible):
    with pytest.raises(InputError, match="misses the bone"):
        cut(mandible, [CutPlane("far", [0, 0, 500], [0, 0, 1])], 1.0)
    box = trimesh.creation.box((10, 10, 10))
    open_box = SurfaceMesh(box.vertices, box.faces[:-1], name="open box")
    with pytest.raises(InputError, match="has 3 boundary edges"):
        cut(open_box, [CutPlane("p", [0, 0, 0], [0, 0, 1])], 1.0)
    with pytest.raises(ParameterError, match="normal is zero"):
        CutPlane("zero", [0, 0, 0], [0, 0, 0])


def test_apply_plan_is_pure_and_moves_segments(mandible, landmarks):
    plan = make_plan("genioplasty", landmarks, advance=3.0)
    before = mandible.vertices.copy()
    a = P.apply_plan(plan, {"mandible": mandible})
    b = P.apply_plan(plan, {"mandible": mandible})
    assert np.array_equal(mandible.vertices, before)
    assert np.array_equal(a.segments["chin"].vertices, b.segments["chin"].vertices)
    assert a.segments["chin"].is_watertight() and a.rest["mandible"].is_watertight()
    assert a.landmark_segment["me"] == "chin" and a.landmark_segment["id"] == ""
    assert np.allclose(a.landmarks["me"] - landmarks["me"], [0, -3.0, 0])
    with pytest.raises(InputError, match="needs bone mesh"):
        P.apply_plan(plan, {})


def test_mirror_healthy_side(mandible, landmarks):
    plane = P.midsagittal_plane(landmarks)
    mirrored, matrix, rms = P.mirror_healthy_side(mandible, plane, "left")
    assert mirrored.is_watertight() and mirrored.signed_volume() > 0
    assert np.linalg.det(matrix[:3, :3]) < 0  # a reflection
    assert (mirrored.vertices[:, 0] < plane.centre[0] + 1.0).mean() > 0.95  # now on the right side
    assert rms < 2.0
    surface_plane = P.symmetry_plane_from_surface(mandible, plane)
    assert abs(surface_plane.normal @ [1, 0, 0]) > np.cos(np.radians(3))
