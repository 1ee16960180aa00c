"""Cephalometry: agreement with the phantom's own measures, invariance to head pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medface.anatomy import cephalometry as ceph
from medface.errors import InputError
from medface.io import read_landmarks
from medface.phantom import shape

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "landmarks.mrk.json"


@pytest.fixture(scope="module")
def points():
    return read_landmarks(SAMPLE).to_dict()


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_agrees_with_phantom_measures(points):
    mine = ceph.measure(points)
    theirs = shape.measure_all(points)
    for key in ("sna", "snb"):
        assert mine[key] == pytest.approx(theirs[key], abs=0.5), key
    assert mine["anb"] == pytest.approx(theirs["sna"] - theirs["snb"], abs=0.5)
    for key in ("upper_face_height", "lower_face_height", "chin_deviation"):
        assert mine[key] == pytest.approx(theirs[key], abs=0.5), key
    assert ceph.head_frame(points).horizontal == "frankfurt"
    assert 20.0 < mine["mandibular_plane_sn"] < 45.0
    assert 0.0 < mine["asymmetry_rms"] < 3.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_invariant_to_rotation_and_translation(points, seed):
    rot = _rotation(seed)
    shift = np.random.default_rng(100 + seed).uniform(-200, 200, 3)
    moved = {k: rot @ p + shift for k, p in points.items()}
    a, b = ceph.measure(points), ceph.measure(moved)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-6), key


def test_sella_nasion_fallback_without_frankfurt(points):
    no_fh = {k: p for k, p in points.items() if not k.startswith(("po_", "or_"))}
    frame = ceph.head_frame(no_fh)
    assert frame.horizontal == "sella-nasion-7"
    m = ceph.measure(no_fh)
    assert m["sna"] == pytest.approx(ceph.measure(points)["sna"], abs=1e-6)  # SNA does not need FH
    assert "mandibular_plane_fh" not in m
    # the phantom's S-N is ~7.5 deg to FH, so the fallback frame is within a degree of FH
    assert np.degrees(np.arccos(frame.superior @ np.array([0, 0, 1.0]))) < 1.0


def test_chin_deviation_sign_and_mirror(points):
    shifted = dict(points, me=points["me"] + np.array([4.0, 0, 0]))  # +x = patient's left
    assert ceph.measure(shifted)["chin_deviation"] == pytest.approx(ceph.measure(points)["chin_deviation"] + 4.0)
    plane = ceph.midsagittal_plane(points)
    p = np.array([[10.0, -50.0, 3.0]])
    assert np.allclose(plane.reflect(plane.reflect(p)), p)


def test_before_after_table_and_soft_tissue(points):
    after = dict(points)
    for k in ("a", "ans", "pr"):
        after[k] = points[k] + np.array([0, -4.0, 0])  # 4 mm maxillary advance (anterior = -y)
    rows = {r["measure"]: r for r in ceph.before_after_table(points, after)}
    assert rows["sna"]["change"] > 1.0 and rows["sna"]["unit"] == "deg"
    assert rows["snb"]["change"] == pytest.approx(0.0, abs=1e-9)
    assert set(rows["sna"]) == {"measure", "name", "before", "after", "change", "unit"}
    before = np.zeros((4, 3))
    after_v = before + np.array([[0, 0, 1.0], [0, 0, 2.0], [0, 0, 0], [3.0, 4.0, 0]])
    stats = ceph.soft_tissue_change(before, after_v, {"lip": [0, 1], "chin": np.array([False, False, True, True])})
    assert stats["lip"]["mean_mm"] == pytest.approx(1.5) and stats["chin"]["max_mm"] == pytest.approx(5.0)


def test_too_few_pairs_is_an_input_error():
    with pytest.raises(InputError, match="at least 2 bilateral"):
        ceph.midsagittal_plane({"po_l": [50, 0, 0], "po_r": [-50, 0, 0], "n": [0, -90, 30]})
