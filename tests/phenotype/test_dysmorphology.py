"""`phenotype measure`: objective dysmorphology from named 3D landmarks, in any pose and frame."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medface.data import vocabulary
from medface.errors import InputError
from medface.phantom import head as H
from medface_phenotype.dysmorphology import measure, measure_landmarks

FEATURES = {"telecanthus": 3.0, "downslanted_palpebral_fissures": 3.0}


@pytest.fixture(scope="module")
def points():
    return H.make_head(H.mean_subject("F", features=FEATURES)).landmarks


def _moved(points, keep=lambda k: True, scale=1.0):
    rot = Rotation.from_euler("xyz", [25, -140, 70], degrees=True).as_matrix()
    return {k: scale * (rot @ v + np.array([312.0, -45.0, 1200.0])) for k, v in points.items() if keep(k)}


def test_a_scan_in_any_pose_gives_the_terms_its_landmarks_show(points):
    found = measure_landmarks(_moved(points), "F")
    assert found["horizontal"] == "frankfurt"
    assert {t["hpo"] for t in found["suggested"]} == {"HP:0000506", "HP:0000494"}
    upright = {r["measurement"]: r["z"] for r in measure_landmarks(points, "F")["measurements"]}
    turned = {r["measurement"]: r["z"] for r in found["measurements"]}
    assert all(abs(upright[k] - turned[k]) < 0.2 for k in upright), "the pose changed a z-score"


def test_a_face_surface_uses_the_soft_tissue_horizontal_and_says_so(points):
    face_only = _moved(points, keep=lambda k: vocabulary.get(k).kind == "soft_tissue")  # what a scan shows
    result = measure(face_only, "F")
    assert result.summary["horizontal"] == "frankfurt-soft-tissue"
    assert any("soft-tissue Frankfurt" in w for w in result.warnings)
    assert any("not measured" in w and "snb" in w for w in result.warnings)
    assert "HP:0000494" in result.summary["suggested terms"]


def test_without_a_horizontal_only_orientation_free_measurements_are_made(points):
    no_frame = _moved(points, keep=lambda k: k in {"en_l", "en_r", "ex_l", "ex_r", "ch_l", "ch_r", "al_l", "al_r"})
    found = measure_landmarks(no_frame, "F")
    measured = {r["measurement"] for r in found["measurements"]}
    assert measured == {"intercanthal_width", "palpebral_fissure_length", "mouth_width", "nasal_width"}
    assert {t["hpo"] for t in found["suggested"]} == {"HP:0000506"}  # the slant needs a horizontal
    assert found["frame_problem"] and "palpebral_slant" in found["not_measured"]


def test_landmarks_not_in_millimetres_are_refused(points):
    with pytest.raises(InputError, match="not a face in millimetres"):
        measure_landmarks(_moved(points, scale=0.001), "F")


def test_a_child_is_scored_against_its_age_band_not_against_adults():
    """A typical four-year-old's face is small and short against adults (adult norms would call
    it microcephalic, short-nosed...); against the norms of its age band it shows no term, and a
    feature it carries is found there."""
    typical = H.make_head(H.mean_subject("F", age=4.0)).landmarks
    as_adult = measure(typical, "F")
    assert as_adult.summary["suggested terms"] != "none"
    as_child = measure(typical, "F", age=4.0)
    assert as_child.summary["suggested terms"] == "none" and as_child.summary["norms"] == "children aged 3-6 y"
    with_feature = H.make_head(H.mean_subject("F", age=4.0, features={"telecanthus": 3.0})).landmarks
    assert "HP:0000506" in measure(with_feature, "F", age=4.0).summary["suggested terms"]


def test_an_infant_is_refused_and_a_missing_age_is_warned_about(points):
    infant = measure(points, "F", age=0.5)
    assert infant.refused and "1 year" in infant.refusal and not infant.tables
    adult = measure(points, "F", age=35.0)
    assert not adult.refused and adult.summary["norms"] == "adults"
    assert not any("no age given" in w for w in adult.warnings)
    assert any("no age given" in w for w in measure(points, "F").warnings)
