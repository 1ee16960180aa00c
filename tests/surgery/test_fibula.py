"""Fibula free-flap planning: a 40 mm body defect of the phantom mandible rebuilt within the
documented tolerance, the segment table, wedges, gaps and contact, the template fibula, the
mirror contour, the guides and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medface_surgery.cutting import CutPlane, to_manifold
from medface_surgery.fibula import body_defect_planes, choose_segments, plan_fibula
from medface_surgery.printable import check_printable

import medface
from medface.errors import InputError, ParameterError
from medface.io import read_landmarks, read_mesh
from medface.phantom.fibula import template_fibula

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
#: documented in docs/validation/surgery.md ("Fibula free flap"): mean distance of the rebuilt
#: surface to the original mandible surface in a 40 mm body defect (measured 2.08 mm)
MEAN_DISTANCE_TOLERANCE_MM = 2.5


@pytest.fixture(scope="module")
def lm():
    return read_landmarks(SAMPLE / "landmarks.mrk.json")


@pytest.fixture(scope="module")
def defect(mandible, lm):
    return body_defect_planes(mandible, lm, side="left", start_mm=15.0, length_mm=40.0)


@pytest.fixture(scope="module")
def plan(mandible, lm, defect):
    return plan_fibula(mandible, defect, landmarks=lm)


def test_template_fibula_has_documented_dimensions():
    fib = template_fibula()
    assert fib.is_watertight() and fib.signed_volume() > 0
    lo, hi = fib.vertices.min(axis=0), fib.vertices.max(axis=0)
    assert hi[2] - lo[2] == pytest.approx(360.0, abs=1.0)
    shaft = fib.vertices[(fib.vertices[:, 2] > 150) & (fib.vertices[:, 2] < 200)]
    assert np.ptp(shaft[:, 1]) == pytest.approx(14.0, abs=0.2)     # 13-15 mm across
    right = template_fibula(side="right")
    assert right.signed_volume() == pytest.approx(fib.signed_volume(), rel=1e-9)
    assert right.vertices[:, 0].max() == pytest.approx(-lo[0], abs=1e-9)


def test_defect_planes_are_40_mm_apart_along_the_left_body(defect):
    a, b = defect
    assert a.centre[0] > 0 and b.centre[0] > a.centre[0]          # left side, going back
    assert np.linalg.norm(b.centre - a.centre) == pytest.approx(38.0, abs=3.0)  # chord of a 40 mm arc


def test_40_mm_body_defect_is_rebuilt_within_tolerance(plan, mandible, defect):
    m = plan.metrics
    assert m["reconstruction_to_original_mean_mm"] < MEAN_DISTANCE_TOLERANCE_MM
    assert m["reconstruction_to_original_max_mm"] < 8.0
    assert m["chord_deviation_mm"] <= 2.0
    assert 1 <= plan.n_segments <= 4
    assert all(r["length_mm"] >= 20.0 for r in plan.segment_rows)
    # the segments fill the defect end to end: their lengths add up to the chords' path
    total = sum(r["length_mm"] for r in plan.segment_rows)
    path = float(np.sum(np.linalg.norm(np.diff(plan.breakpoints, axis=0), axis=1)))
    assert total == pytest.approx(path, abs=0.05)
    # each segment is a watertight fibula piece inside the defect, none in the stumps
    stumps = [to_manifold(s) for s in plan.stumps]
    for seg in plan.segments:
        assert check_printable(seg).ok
        for stump in stumps:
            assert (to_manifold(seg) ^ stump).volume() < 1.0


def test_junction_table_wedges_gaps_and_contact(plan):
    rows = plan.junction_rows
    assert len(rows) == plan.n_segments + 1
    assert rows[0]["junction"].startswith("stump A") and rows[-1]["junction"].endswith("stump B")
    for r in rows:
        assert r["gap_mm"] < 0.05                # planned gap 0: the pieces touch the stumps and each other
        assert r["contact_pct"] > 80.0
    for k, r in enumerate(rows[1:-1]):           # a wedge at a junction is the two end cuts together
        assert r["wedge_deg"] == pytest.approx(plan.segment_rows[k]["end_cut_deg"]
                                               + plan.segment_rows[k + 1]["start_cut_deg"], abs=0.1)
    # the pieces come from the usable shaft, in order, never overlapping
    spans = [(r["fibula_from_mm"], r["fibula_to_mm"]) for r in plan.segment_rows]
    assert spans[0][0] >= 75.0 - 1e-6 and spans[-1][1] <= 360.0 - 60.0
    assert all(b[0] > a[1] for a, b in zip(spans, spans[1:]))


def test_guides_are_printable(plan):
    assert set(plan.guides) == {"mandible", "fibula"}
    for g in plan.guides.values():
        assert check_printable(g.mesh).ok
    assert len(plan.guides["fibula"].planes) == 2 * plan.n_segments


def test_mirror_contour_matches_the_original_on_a_healthy_phantom(mandible, lm, defect, plan):
    mirrored = plan_fibula(mandible, defect, landmarks=lm, contour="mirror", guides=False)
    assert mirrored.metrics["healthy_side"] == "right"
    assert mirrored.metrics["reconstruction_to_original_mean_mm"] < MEAN_DISTANCE_TOLERANCE_MM
    assert np.max(np.linalg.norm(mirrored.contour - plan.contour, axis=1)) < 2.0
    with pytest.raises(ParameterError, match="mirror the other side"):
        plan_fibula(mandible, defect, landmarks=lm, contour="mirror", healthy_side="left", guides=False)


def test_segment_choice_follows_the_parameters():
    t = np.linspace(0, np.pi / 2, 60)
    arc = np.column_stack([50 * np.cos(t), 50 * np.sin(t), np.zeros_like(t)])   # 78.5 mm quarter circle
    # chords of a 90 deg arc of radius 50 deviate R (1 - cos(45 deg / n)): 14.6, 3.8, 1.7, 0.76 mm
    idx, dev, n, note = choose_segments(arc, 20.0, 4, 2.0)
    assert n == 3 and dev == pytest.approx(1.7, abs=0.1) and note == ""
    assert len(idx) == 4 and idx[0] == 0 and idx[-1] == len(arc) - 1
    idx, dev, n, note = choose_segments(arc, 20.0, 4, 0.5)   # 4 chords would be 19.6 mm, under 20
    assert n == 3 and dev == pytest.approx(1.7, abs=0.1) and "no plan" in note   # the best, flagged
    idx, dev, n, note = choose_segments(arc, 15.0, 4, 0.5)
    assert n == 4 and 0.76 <= dev < 1.0 and "no plan" in note   # breakpoints on the 60 samples
    idx, dev, n, note = choose_segments(arc, 40.0, 4, 2.0)
    assert n == 1 and "no plan" in note                  # 40 mm segments: only one fits


def test_refusals(mandible, lm, defect):
    with pytest.raises(ParameterError, match="two resection planes"):
        plan_fibula(mandible, defect[:1], landmarks=lm)
    with pytest.raises(ParameterError, match="min_segment_mm"):
        plan_fibula(mandible, defect, landmarks=lm, min_segment_mm=1.0)
    with pytest.raises(ParameterError, match="contour"):
        plan_fibula(mandible, defect, landmarks=lm, contour="guess")
    far = CutPlane("far", (0.0, 300.0, 0.0), (0.0, 1.0, 0.0), (20.0, 20.0))
    with pytest.raises(InputError, match="misses the bone"):
        plan_fibula(mandible, [defect[0], far], landmarks=lm)
    short = template_fibula(length=200.0)
    with pytest.raises(InputError, match="too short"):   # 20 mm of usable shaft for 44 mm of segments
        plan_fibula(mandible, defect, short, landmarks=lm, keep_distal_mm=100, keep_proximal_mm=80,
                    guides=False)
    with pytest.raises(ParameterError, match="does not fit"):
        body_defect_planes(mandible, lm, start_mm=60.0, length_mm=90.0)


def test_command_writes_the_plan(tmp_path):
    result = medface.run("surgery.fibula", mandible=SAMPLE / "mandible.ply", landmarks=SAMPLE / "landmarks.mrk.json",
                         figures=False, guides=False, out=tmp_path)
    assert result.summary["segments"] == len(result.tables["segments"])
    assert result.summary["mean_distance_mm"] < MEAN_DISTANCE_TOLERANCE_MM
    assert (tmp_path / "fibula_segment_1.stl").is_file() and not (tmp_path / "guide_fibula.stl").exists()
    with pytest.raises(InputError, match="landmarks"):
        medface.run("surgery.fibula", mandible=SAMPLE / "mandible.ply", figures=False)


@pytest.mark.slow
def test_command_writes_the_plan_and_guides(tmp_path):
    result = medface.run("surgery.fibula", mandible=SAMPLE / "mandible.ply", landmarks=SAMPLE / "landmarks.mrk.json",
                         figures=False, out=tmp_path)
    assert result.summary["segments"] == len(result.tables["segments"])
    assert result.summary["mean_distance_mm"] < MEAN_DISTANCE_TOLERANCE_MM
    for name in ("fibula_segment_1.stl", "guide_fibula.stl", "guide_mandible_resection.stl", "resected.stl"):
        assert (tmp_path / name).is_file()
    assert read_mesh(tmp_path / "guide_fibula.stl").is_watertight()
    assert all(row["printable"] for row in result.tables["printability"])
