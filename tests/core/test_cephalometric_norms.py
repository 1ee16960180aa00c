"""Cephalometric norms: the table, z-scores, sex handling and the before/after rows."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medface.anatomy import cephalometric_norms as cn
from medface.anatomy import cephalometry as ceph
from medface.errors import InputError
from medface.io import read_landmarks
from tests.conftest import REPO


@pytest.fixture(scope="module")
def points():
    return {k: np.asarray(v, float) for k, v in read_landmarks(REPO / "sample_data" / "landmarks.mrk.json")
            .to_dict().items()}


def test_table_rows_are_valid_and_name_known_measures():
    norms = cn.load_norms()
    assert norms and all(n.measure in ceph.MEASURE_BY_ID for n in norms)
    assert len({(n.measure, n.sex) for n in norms}) == len(norms)  # one row per measure and sex
    for n in norms:
        assert n.source and n.age_group
        if n.sex == cn.POOLED:  # the classical angle norms carry no sex split
            assert ceph.MEASURE_BY_ID[n.measure].unit == "deg"
        if n.sd is None:
            assert n.assumption  # a missing SD is said


def test_riolo_values_agree_with_the_phantom_growth_table():
    growth = {}
    with open(REPO / "medface" / "phantom" / "growth_riolo.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            if float(row["age"]) == cn.RIOLO_AGE:
                growth[(row["measure"], row["sex"])] = float(row["mean_mm"])
    riolo = [n for n in cn.load_norms() if n.riolo_short_name]
    both = [n for n in riolo if (n.riolo_short_name, n.sex) in growth]
    assert len(both) >= 14  # ANS-N, ME-ANS, ME-N, S-N, CO-GN, CO-GO, GO-PG, PNS-ANS for both sexes
    for n in both:
        assert n.mean == growth[(n.riolo_short_name, n.sex)], (n.measure, n.sex)
    assert all(n.sex in cn.SEXES and n.sd is not None and n.n in (9, 23) for n in riolo)


def test_z_score_and_normal_range_from_the_table():
    norm = cn.norm_for("mandibular_length", "F")
    assert (norm.mean, norm.sd) == (123.6, 4.0)
    got = cn.compare({"mandibular_length": norm.mean + norm.sd, "ramus_height": 60.5 - 2 * 2.4}, "F")
    assert got["mandibular_length"]["z"] == pytest.approx(1.0)
    assert got["ramus_height"]["z"] == pytest.approx(-2.0)
    assert (got["mandibular_length"]["normal_low"], got["mandibular_length"]["normal_high"]) == \
        pytest.approx((119.6, 127.6))
    assert cn.compare({"sna": 82.0})["sna"]["z"] == pytest.approx(0.0)


def test_sex_changes_the_norm_of_a_length_and_angles_are_pooled():
    m, f = cn.compare({"total_face_height": 130.0}, "M"), cn.compare({"total_face_height": 130.0}, "female")
    assert m["total_face_height"]["norm_mean"] == 136.8 and f["total_face_height"]["norm_mean"] == 123.2
    assert m["total_face_height"]["z"] < 0 < f["total_face_height"]["z"]
    assert cn.compare({"snb": 80.0}, "M")["snb"] == cn.compare({"snb": 80.0}, "F")["snb"]
    assert cn.compare({"snb": 80.0}, "M")["snb"]["norm_sex"] == cn.POOLED


@pytest.mark.parametrize("sex", [None, "unknown", ""])
def test_no_sex_gives_pooled_norms_only(sex):
    got = cn.compare({"lower_face_height": 70.0, "anb": 4.0, "chin_deviation": 1.0}, sex)
    assert got["lower_face_height"]["z"] is None and got["lower_face_height"]["norm_mean"] is None
    assert "give sex M or F" in got["lower_face_height"]["norm_note"]
    assert got["anb"]["z"] == pytest.approx(1.0) and got["anb"]["norm_sex"] == cn.POOLED
    assert got["chin_deviation"]["z"] is None and "no norm" in got["chin_deviation"]["norm_note"]


def test_unknown_sex_value_and_bad_age_are_refused():
    with pytest.raises(InputError, match="unknown sex 'X'"):
        cn.compare({"sna": 80.0}, "X")
    with pytest.raises(InputError, match="age"):
        cn.compare({"sna": 80.0}, "M", age=-3)
    assert "age 16" in cn.compare({"ramus_height": 60.0}, "M", age=12)["ramus_height"]["norm_note"]


def test_new_measures_are_measured_as_3d_distances(points):
    got = ceph.measure(points)
    sides = [np.linalg.norm(points[f"co_{s}"] - points["gn"]) for s in "lr"]
    assert got["mandibular_length"] == pytest.approx(np.mean(sides))
    assert got["ramus_height"] == pytest.approx(np.mean([np.linalg.norm(points[f"co_{s}"] - points[f"go_{s}"])
                                                         for s in "lr"]))
    assert got["anterior_cranial_base"] == pytest.approx(np.linalg.norm(points["s"] - points["n"]))
    assert "palatal_length" not in got  # the sample has no pns
    one_side = {k: v for k, v in points.items() if k not in ("co_r", "go_r")}
    assert ceph.measure(one_side)["ramus_height"] == pytest.approx(np.linalg.norm(points["co_l"] - points["go_l"]))


def test_before_after_rows_gain_norms_and_z_scores(points):
    after = dict(points)
    after["gn"] = points["gn"] + np.array([0.0, -4.0, 0.0])  # chin forward 4 mm (LPS: -P is anterior)
    plain = ceph.before_after_table(points, after)
    assert "z_before" not in plain[0]  # unchanged without norms
    rows = {r["measure"]: r for r in ceph.before_after_table(points, after, sex="M")}
    r = rows["mandibular_length"]
    assert r["norm_mean"] == 133.6 and r["norm_sd"] == 5.4 and r["norm_source"].startswith("Riolo 1974")
    assert r["z_before"] == pytest.approx((r["before"] - 133.6) / 5.4)
    assert r["z_after"] == pytest.approx((r["after"] - 133.6) / 5.4)
    pooled = {r["measure"]: r for r in ceph.before_after_table(points, after, norms=True)}
    assert pooled["mandibular_length"]["z_before"] is None and pooled["sna"]["z_before"] is not None
