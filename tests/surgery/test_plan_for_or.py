"""What a surgeon would catch in a plan: composed moves, non-finite numbers, bone collisions,
loose slivers, and the mirror, planes and moved landmarks written out for the operating room."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from medface_surgery import plan as P
from medface_surgery.collisions import WARN_OVERLAP_MM3, new_overlaps
from medface_surgery.cutting import MIN_PIECE_VOLUME_MM3, CutPlane, cut
from medface_surgery.presets import make_plan

import medface
from medface.data import SurfaceMesh
from medface.io import read_landmarks, read_mesh

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def _box(lo, hi, name="box") -> SurfaceMesh:
    import trimesh

    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    tm = trimesh.creation.box(extents=hi - lo)
    tm.apply_translation((lo + hi) / 2)
    return SurfaceMesh(tm.vertices, tm.faces, name=name)


# ---------------------------------------------------------------------------------------------
# plan validation
def test_two_moves_composing_beyond_the_limit_are_refused(landmarks):
    doc = make_plan("genioplasty", landmarks, advance=4.0).to_json_dict()
    move = doc["moves"][0]
    move["translation_mm"] = [0.0, -24.0, 0.0]
    doc["moves"].append(copy.deepcopy(move))
    problems = P.validate_plan(doc)
    assert any("compose to a 48.0 mm move" in p and f"{P.MAX_TRANSLATION_MM:g} mm limit" in p for p in problems)
    doc["moves"][1]["translation_mm"] = [0.0, 20.0, 0.0]  # forward then back: a 4 mm net move is fine
    assert P.validate_plan(doc) == []


def test_composed_rotations_beyond_the_limit_are_refused(landmarks):
    doc = make_plan("genioplasty", landmarks, advance=2.0).to_json_dict()
    for _ in range(2):
        doc["moves"].append({"segment": "chin", "translation_mm": [0, 0, 0], "rotation_deg": [30.0, 0, 0],
                             "pivot": "me"})
    problems = P.validate_plan(doc)
    assert any("compose to a 60.0 deg rotation" in p for p in problems), problems


@pytest.mark.parametrize("where", ["translation", "rotation", "centre"])
def test_nan_and_infinite_numbers_are_refused_by_the_validator(landmarks, where):
    doc = make_plan("genioplasty", landmarks, advance=4.0).to_json_dict()
    if where == "translation":
        doc["moves"][0]["translation_mm"] = [float("nan"), 0.0, 0.0]
        path = "moves/0/translation_mm/0"
    elif where == "rotation":
        doc["moves"][0]["rotation_deg"] = [0.0, float("inf"), 0.0]
        doc["moves"][0]["pivot"] = "me"
        path = "moves/0/rotation_deg/1"
    else:
        doc["osteotomies"][0]["centre"] = [0.0, float("-inf"), 0.0]
        path = "osteotomies/0/centre/1"
    problems = P.validate_plan(doc)
    assert any(p.startswith(path) and "not a finite number" in p for p in problems), problems
    with pytest.raises(P.PlanError, match="not a finite number"):
        P.check_plan(doc)


def test_the_documented_limits_are_the_enforced_ones(landmarks):
    """docs/surgery.md says 30 mm and 45 deg; the validator, the move matrix and the CLI agree."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "surgery.md").read_text(encoding="utf-8")
    assert f"{P.MAX_TRANSLATION_MM:g} mm or {P.MAX_ROTATION_DEG:g} deg" in text
    doc = make_plan("genioplasty", landmarks, advance=4.0).to_json_dict()
    doc["moves"][0]["translation_mm"] = [0.0, -31.0, 0.0]
    assert any("31.0 mm exceeds the 30 mm limit" in p for p in P.validate_plan(doc))


# ---------------------------------------------------------------------------------------------
# collisions and slivers
def test_overlap_of_boxes_is_measured_and_old_contact_is_not_blamed():
    a, b = _box([0, 0, 0], [10, 10, 10], "a"), _box([10, 0, 0], [20, 10, 10], "b")  # touching faces
    moved_b = _box([8, 0, 0], [18, 10, 10], "b")  # b pushed 2 mm into a
    found = new_overlaps({"a": a, "b": b}, {"a": a, "b": moved_b}, {"b"})
    assert len(found) == 1 and found[0].volume_mm3 == pytest.approx(200.0, rel=1e-6)
    assert new_overlaps({"a": a, "b": b}, {"a": a, "b": b}, {"b"}) == []
    # an overlap present before the move is not a collision the plan made
    deep = _box([5, 0, 0], [15, 10, 10], "b")
    assert new_overlaps({"a": a, "b": deep}, {"a": a, "b": deep}, {"b"}) == []
    assert WARN_OVERLAP_MM3 > 0


def test_bsso_setback_collision_is_warned_with_its_volume(bones, landmarks):
    result = make_plan("bsso", landmarks, advance=-5.0)
    planned = P.apply_plan(result, bones)
    pairs = {frozenset((o.a, o.b)): o.volume_mm3 for o in planned.collisions}
    for side in ("l", "r"):
        assert pairs[frozenset(("mandible_distal", f"proximal_{side}"))] > 100.0
    assert sum("bone collision" in w and "mm^3" in w for w in planned.warnings) == 2
    advance = P.apply_plan(make_plan("bsso", landmarks, advance=5.0), bones)
    assert advance.collisions == []  # an advance opens a gap, it does not collide


def test_loose_slivers_are_dropped_and_reported(bones, landmarks):
    planned = P.apply_plan(make_plan("le_fort_i", landmarks, advance=4.0), bones)
    import trimesh

    rest = planned.rest["cranium"]
    parts = trimesh.Trimesh(rest.vertices, rest.faces, process=False).split(only_watertight=False)
    assert len(parts) == 1  # no loose chip in the remainder
    assert planned.dropped["cranium"] and all(v < MIN_PIECE_VOLUME_MM3 for v in planned.dropped["cranium"])
    assert any("sliver" in w for w in planned.warnings)


def test_cut_keeps_real_small_pieces_and_drops_chips():
    box = _box([0, 0, 0], [40, 30, 20])
    # a cut 3 mm from the end keeps a 3 x 30 x 20 mm piece (1,500 mm^3): not a sliver
    result = cut(box, [CutPlane("end", [36.5, 15, 10], [1, 0, 0])], 1.0)
    assert len(result.pieces) == 2 and result.dropped == []
    # a cut 0.51 mm from the end leaves a 0.01 mm slice of 6 mm^3: dropped, reported
    result = cut(box, [CutPlane("graze", [39.0, 15, 10], [1, 0, 0])], 1.98)
    assert len(result.pieces) == 1 and len(result.dropped) == 1 and result.dropped[0] < MIN_PIECE_VOLUME_MM3


# ---------------------------------------------------------------------------------------------
# what the operating room gets
def test_simulate_writes_mirror_planes_and_moved_landmarks(tmp_path, landmarks):
    doc = make_plan("genioplasty", landmarks, advance=4.0).to_json_dict()
    doc["mirror"] = {"bone": "mandible", "healthy_side": "left"}
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "sim"
    result = medface.run("surgery.simulate", plan=plan_path, bone=SAMPLE / "skull.ply",
                         mandible=SAMPLE / "mandible.ply", skin=SAMPLE / "skin.ply", tissue="preview",
                         figures=False, out=out)
    mirror = read_mesh(out / "mirror.stl")
    assert mirror.is_watertight() and mirror.signed_volume() > 10_000  # half a mandible, mm^3
    m = result.metrics["mirror"]
    assert m["registration_rms_mm"] < 2.0 and abs(m["plane_normal"][0]) > 0.99
    plane = json.loads((out / "mirror_plane.mrk.json").read_text(encoding="utf-8"))["markups"][0]
    assert plane["type"] == "Plane" and np.allclose(plane["normal"], m["plane_normal"], atol=1e-3)
    genio = P.plane_from_slicer(json.loads((out / "plane_genioplasty.mrk.json").read_text(encoding="utf-8")))
    assert np.allclose(genio["centre"], doc["osteotomies"][0]["centre"])
    moved = read_landmarks(out / "landmarks_after.mrk.json").to_dict()
    assert np.allclose(moved["me"] - landmarks["me"], np.asarray(doc["moves"][0]["translation_mm"]), atol=1e-6)
    assert np.allclose(moved["n"], landmarks["n"])


# ---------------------------------------------------------------------------------------------
# the CT path
@pytest.fixture(scope="module")
def ct_bones():
    from medface.anatomy.ct_segmentation import segment_ct
    from medface.io import read_volume

    seg = segment_ct(read_volume(SAMPLE / "head_ct.nii.gz"))
    return {"cranium": seg.meshes["skull"], "mandible": seg.meshes["mandible"]}


@pytest.mark.parametrize("procedure", ["le_fort_i", "bsso", "genioplasty", "bimaxillary"])
def test_every_preset_runs_on_the_segmented_sample_ct(ct_bones, landmarks, procedure):
    """The CT's meshes differ from the phantom's source meshes (0.7 mm outside, the condyles with the
    skull): every preset must still separate its segments, advance and setback alike. (A BSSO plane
    bounded 40 mm high instead of the ramus's height once left a ramus attached: 'proximal_r' empty.)"""
    for advance in (5.0, -5.0):
        planned = P.apply_plan(make_plan(procedure, landmarks, advance=advance), ct_bones)
        for name, mesh in planned.segments.items():
            assert mesh.is_watertight() and mesh.signed_volume() > 1000.0, name
        if procedure in ("bsso", "bimaxillary"):
            left = planned.segments["proximal_l"].vertices[:, 0].mean()
            right = planned.segments["proximal_r"].vertices[:, 0].mean()
            assert left > 30.0 and right < -30.0  # one ramus on each side (x: the patient's left)
