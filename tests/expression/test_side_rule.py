"""The affected-side rule: the mean rule, or when it finds no side, each region against its own normal limit."""

import json
from pathlib import Path

import pytest

import medface
from medface_expression import grading
from medface_expression.scoring import (NORMAL_DYNAMIC_ASYMMETRY, REGION_LIMITS, affected_side, region_weakness,
                                        score, side_basis, side_conflict, side_of_regions)

REST = {"right": {"brow_height": 20.0, "commissure_height": 50.0},
        "left": {"brow_height": 20.0, "commissure_height": 50.0}}
HEALTHY = {"brow_raise": 8.0, "eye_closure_gentle": 0.7, "eye_closure_full": 1.0, "smile": 10.0, "pucker": 8.0,
           "lower_lip_depression": 5.0}


def _session(weak_right: dict | None = None, weak_left: dict | None = None) -> dict:
    """Movements of every expression: both sides healthy, but the given expressions' right / left side
    moving only ``1 - fraction`` of the healthy amount."""
    weak_right, weak_left = weak_right or {}, weak_left or {}
    return {e: {"right": v * (1 - weak_right.get(e, 0.0)), "left": v * (1 - weak_left.get(e, 0.0))}
            for e, v in HEALTHY.items()}


def _mirror(moved: dict) -> dict:
    return {e: {"right": m["left"], "left": m["right"]} for e, m in moved.items()}


def test_a_partial_palsy_diluted_in_the_mean_is_found_by_the_region_rule():
    # only the smile is weak (80 %); five other movements are symmetric and dilute the mean
    moved = _session(weak_right={"smile": 0.8})
    side, mean = affected_side({"rest": REST}, moved)
    assert mean == pytest.approx(0.8 / 6) and abs(mean) <= NORMAL_DYNAMIC_ASYMMETRY  # the mean alone: "none"
    assert side == "right" and side_basis(moved) == "regions"
    assert region_weakness(moved)["smile"] == pytest.approx(0.8 / REGION_LIMITS["smile"], abs=1e-4)
    assert affected_side({"rest": REST}, _mirror(moved))[0] == "left"
    # a lower lip weak by a quarter alone is beyond its (narrow) limit
    assert affected_side({"rest": REST}, _session(weak_left={"lower_lip_depression": 0.25}))[0] == "left"
    assert side_conflict(moved) is None


def test_a_one_sided_smile_is_found_by_the_mean_rule():
    # the sample photo's left-only smile: right commissure 5.6 mm, left 10.7 mm (asymmetry 0.48)
    moved = {"smile": {"right": 5.6, "left": 10.7}}
    assert abs(region_weakness(moved)["smile"]) < 1.0  # inside the smile's normal limit: the regions say "none"
    assert side_of_regions(region_weakness(moved)) == "none"
    assert affected_side({"rest": REST}, moved)[0] == "right" and side_basis(moved) == "mean asymmetry"
    assert affected_side({"rest": REST}, _mirror(moved))[0] == "left"


def test_a_face_within_each_regions_normal_spread_is_none():
    # every region asymmetric by 80 % of its own limit, on alternating sides: none is beyond it
    weak = {"brow_raise": 0.8 * REGION_LIMITS["brow"], "smile": 0.8 * REGION_LIMITS["smile"]}
    other = {"eye_closure_gentle": 0.8 * REGION_LIMITS["eye"], "eye_closure_full": 0.8 * REGION_LIMITS["eye"],
             "lower_lip_depression": 0.8 * REGION_LIMITS["lower_lip"]}
    moved = _session(weak_right=weak, weak_left=other)
    side, mean = affected_side({"rest": REST}, moved)
    assert side == "none" and abs(mean) <= NORMAL_DYNAMIC_ASYMMETRY and side_basis(moved) == "none"
    assert all(abs(w) <= 1.0 for w in region_weakness(moved).values())
    assert side_conflict(moved) is None
    assert affected_side({"rest": REST}, _session())[0] == "none"


def test_opposite_sides_go_to_the_mean_rule_with_a_warning():
    # brow, smile and pucker weaker on the right (mean +0.27: right); the lower lip far weaker on the left
    moved = _session(weak_right={"brow_raise": 0.6, "smile": 0.6, "pucker": 0.9},
                     weak_left={"lower_lip_depression": 0.5})
    weakness = region_weakness(moved)
    assert side_of_regions(weakness) == "left"  # the lower lip is the region furthest beyond its limit
    assert affected_side({"rest": REST}, moved)[0] == "right"
    message = side_conflict(moved)
    assert message is not None and "names the subject's right" in message and "the left" in message
    assert "lower lip" in message and message.endswith("(right) is used")
    assert affected_side({"rest": REST}, _mirror(moved))[0] == "left" and "(left) is used" in side_conflict(
        _mirror(moved))


def test_the_rest_photo_decides_when_no_movement_is_scored():
    moved = {"smile": {"right": 0.4, "left": 1.0}}  # below 1.5 mm on both sides: not a smile
    assert region_weakness(moved) == {} and side_conflict(moved) is None
    assert affected_side({"rest": REST}, moved) == ("none", 0.0)
    low_right = {"right": {"brow_height": 16.0, "commissure_height": 54.0}, "left": REST["left"]}
    assert affected_side({"rest": low_right}, moved)[0] == "right" and side_basis(moved) == "rest photo"


def test_the_limits_are_the_documented_ones():
    # 4 x RMS of the 40 dev phantom normals (seeds 1000, 2000, 5000, 6000), docs/expression.md
    assert REGION_LIMITS == {"brow": 0.37, "eye": 0.17, "smile": 0.68, "lower_lip": 0.18}
    doc = (Path(__file__).parents[2] / "docs" / "expression.md").read_text(encoding="utf-8")
    words = ", ".join(f"{r.replace('_', ' ')} {v:.2f}" for r, v in REGION_LIMITS.items())
    assert words in doc, words


def test_the_scores_carry_each_regions_weakness():
    base = {"brow_height": 20.0, "mrd1": 4.0, "mrd2": 5.0, "fissure_height": 9.0, "commissure_excursion": 30.0,
            "commissure_height": 65.0, "commissure_width": 25.0, "smile_angle": 15.0, "upper_lip_height": 60.0,
            "lower_lip_height": 75.0, "dental_show": 0.0}
    measured = {e: {s: dict(base) for s in ("right", "left")} for e in ("rest", "smile")}
    scores = score(measured, {"smile": {"right": 2.0, "left": 10.0}})
    assert scores.regions == {"smile": pytest.approx(0.8 / REGION_LIMITS["smile"], abs=1e-4)}
    assert scores.affected_side == "right" and scores.asymmetry == pytest.approx(0.8)


def test_the_side_warning_reaches_result_json(tmp_path, monkeypatch, rest_photo, left_smile):
    seen = []

    def conflict(moved):
        seen.append(sorted(moved))
        return "the affected side is unclear: test"

    monkeypatch.setattr(grading, "side_conflict", conflict)
    medface.run("expression.grade", rest=rest_photo, smile=left_smile, out=tmp_path / "out")
    assert seen == [["smile"]]
    written = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert "the affected side is unclear: test" in written["warnings"]
    assert written["metrics"]["affected_side_by"] == "mean asymmetry" and "smile" in written["metrics"]["region_weakness"]
