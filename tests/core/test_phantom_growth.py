"""The phantom's craniofacial growth model: children's proportions and size, ages 1-18."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from medface.errors import ParameterError
from medface.phantom import growth as GR
from medface.phantom import head as H
from medface.phantom import norms as N
from medface.phantom import shape as SH

AGES = (1.0, 3.0, 6.0, 10.0, 14.0)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "phantom.md"


@pytest.fixture(scope="module")
def heads():
    return {(sex, age): H.make_head(H.mean_subject(sex, age=age)) for sex in "FM" for age in AGES + (40.0,)}


def _face_height(head):
    return float(np.linalg.norm(head.landmarks["n"] - head.landmarks["me"]))


def test_the_riolo_curves_rise_to_one_at_sixteen_and_follow_the_table():
    means = GR.riolo_means()
    for (measure, sex), by_age in means.items():
        values = [GR.curve_fraction(measure, a, sex) for a in range(6, 17)]
        assert values[-1] == 1.0 and all(b >= a for a, b in zip(values, values[1:])), (measure, sex)
    # at 6 the fraction is the table's ratio (n-me, boys: 106.7 / 136.8)
    assert GR.curve_fraction("ME-N", 6, "M") == pytest.approx(106.7 / 136.8)
    assert GR.curve_fraction("ME-N", 1, "M") < GR.curve_fraction("ME-N", 6, "M")


def test_a_child_has_a_large_cranium_over_a_small_face_and_grows_into_the_adult(heads):
    for sex in "FM":
        ratio = [_face_height(heads[sex, a]) / heads[sex, a].measurements()["cranial_length"] for a in AGES + (40.0,)]
        assert ratio[0] < ratio[2] < ratio[-1], (sex, ratio)  # age 1 < age 6 < adult
        assert ratio[-1] - ratio[0] > 0.1
        circumference = [heads[sex, a].head_circumference() for a in AGES + (40.0,)]
        assert all(b > a for a, b in zip(circumference, circumference[1:])), circumference


def test_head_circumference_at_one_and_at_six_is_near_the_growth_standards(heads):
    """WHO medians at 12 months are about 45-46 cm (girls/boys), Nellhaus's at 6 years about 51 cm;
    the phantom's adult circumference times its curve lands within 2.5 cm of those."""
    for sex in "FM":
        assert 430 < heads[sex, 1.0].head_circumference() < 485
        assert 485 < heads[sex, 6.0].head_circumference() < 545


def test_a_childs_head_meets_its_targets(heads):
    for (sex, age), head in heads.items():
        measured = head.measurements()
        errors = [abs(measured[n] - head.subject.targets[n]) for n in SH.ORIGINAL if n not in SH.ASYMMETRY]
        assert np.median(errors) < 0.3 and max(errors) < 3.0, (sex, age, max(errors))


def test_a_drawn_childs_proportions_follow_the_growth_fractions():
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(12):
        subject = H.sample_subject(rng, sex="F", ages=(2.0, 4.0))
        adult = H.norm_of("lower_face_height", "F")[0]
        ratios.append(subject.targets["lower_face_height"] / adult / GR.fraction("lower_face_height", subject.age, "F"))
        assert 11.0 <= subject.bmi <= 35.0 and subject.bmi < 22.0 + 6.0
    assert 0.9 < np.median(ratios) < 1.1  # the child's normal variation is centred on the grown mean


def test_no_triangle_of_a_childs_meshes_turns_over(heads):
    adult = heads["F", 40.0]
    for age in AGES:
        child = heads["F", age]
        for name, (v, f) in child.meshes.items():
            va = adult.meshes[name][0]
            n0 = np.cross(va[f[:, 1]] - va[f[:, 0]], va[f[:, 2]] - va[f[:, 0]])
            n1 = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
            cos = np.einsum("ij,ij->i", n0, n1) / (np.linalg.norm(n0, axis=1) * np.linalg.norm(n1, axis=1) + 1e-12)
            assert cos.min() > 0.0, (age, name, cos.min())


def test_a_childs_warp_inverts_and_keeps_the_frankfurt_frame(heads):
    head = heads["M", 3.0]
    x = np.random.default_rng(0).uniform(-60, 60, (300, 3))
    assert np.abs(head.warp.inverse(head.warp.forward(x)) - x).max() < 0.01
    assert np.abs(head.skin_inverse(head.skin_forward(x)) - x).max() < 0.01
    L = head.landmarks
    assert np.allclose(0.5 * (L["po_l"] + L["po_r"]), 0.0, atol=1e-6)
    assert abs(L["po_l"][2]) < 1e-6 and abs(L["or_l"][2]) < 1e-6


def test_a_childs_tissue_depths_are_what_its_subject_asks(heads):
    head = heads["F", 3.0]
    measured, expected = head.tissue_depths(), head.expected_tissue_depths()
    rel = [abs(measured[k] - expected[k]) / expected[k] for k in expected]
    assert np.median(rel) < 0.05 and max(rel) < 0.25
    adult_depth = heads["F", 40.0].expected_tissue_depths()
    assert np.median([expected[k] / adult_depth[k] for k in expected]) < 0.9  # a child's are thinner


def test_adults_are_untouched_and_ages_outside_the_model_are_refused():
    assert GR.growth_field(18.0, "F") is None and GR.fraction("nasal_width", 30.0, "M") == 1.0
    assert GR.fraction("snb", 2.0, "F") == 1.0  # angles keep their adult norms
    with pytest.raises(ParameterError, match="age"):
        H.mean_subject("F", age=0.5)
    with pytest.raises(ParameterError, match="age range"):
        H.sample_subject(np.random.default_rng(0), ages=(0.2, 5.0))


def test_the_growth_field_never_folds_space_and_is_inverted_exactly():
    p = np.random.default_rng(1).uniform(-160, 160, (20000, 3))
    for age in (1.0, 5.0, 12.0):
        field = GR.growth_field(age, "M")
        assert np.linalg.det(field.jacobian(p)).min() > 0.0
        assert np.abs(field.apply(field.invert(p)) - p).max() < 1e-6


def test_children_norms_by_age_band_match_a_fresh_sample():
    """A stale children's table (the growth model changed, the norms did not) fails here."""
    n, band = 24, (3.0, 6.0)
    fresh = N.sample_measurements("F", n, seed=9, ages=band)
    for mid in ("head_circumference", "intercanthal_width", "lower_face_height", "nasal_protrusion", "mouth_width"):
        mean, sd = N.norm(mid, "F", age=4.5)
        centre, _ = N.robust_centre_spread(fresh[mid])
        assert abs(centre - mean) < 5.0 * 1.25 * sd / np.sqrt(n) + 1e-3, (mid, centre, mean)
    assert N.norm("head_circumference", "F", age=2.0)[0] < N.norm("head_circumference", "F", age=12.0)[0] \
        < N.norm("head_circumference", "F")[0]


def test_the_docs_growth_table_is_the_models():
    text = DOCS.read_text(encoding="utf-8")
    table = GR.markdown_table()
    assert table in text, "docs/phantom.md's growth table differs from medface.phantom.growth.markdown_table()"
    assert re.search(r"Riolo", text) and "assumption" in text
