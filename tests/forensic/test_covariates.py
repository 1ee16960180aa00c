"""What a reconstruction conditions on: the user's covariates, else the skull's sex and age estimate."""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic.covariates import case_covariates
from medface_forensic.demography import DemographyEstimate


def _estimate(p_male=0.95, sex_informative=True, age_range=(35.0, 54.0), age_informative=True):
    return DemographyEstimate(sex="M" if p_male >= 0.5 else "F", p_male=p_male, sex_informative=sex_informative,
                              age_range=age_range, age_label="35-54", p_age_range=0.85, age_probabilities={},
                              age_informative=age_informative, traits={}, unavailable={}, traits_used=(),
                              basis="test")


def test_unknown_sex_and_age_come_from_an_informative_skull_estimate():
    case = case_covariates(None, None, None, _estimate())
    assert case.condition["p_male"] == pytest.approx(0.95)
    assert case.condition["sex"] is None  # the probability stands in; no hard label is invented
    assert case.condition["age"] == pytest.approx(44.5)
    assert case.condition["covariate_sd"]["age"] == pytest.approx(19.0 / np.sqrt(12.0))
    assert case.sources["sex"].startswith("estimated from the skull") and "0.95" in case.sources["sex"]
    assert case.sources["age"].startswith("estimated from the skull")
    assert case.sources["bmi"] == "unknown"
    assert case.baseline_sex == "M" and not case.warnings


def test_an_uninformative_estimate_leaves_the_covariates_unknown():
    case = case_covariates(None, None, None, _estimate(sex_informative=False, age_informative=False))
    assert "p_male" not in case.condition and case.condition["age"] is None
    assert case.sources == {"sex": "unknown", "age": "unknown", "bmi": "unknown"}
    open_ended = case_covariates(None, None, None, _estimate(age_range=(55.0, None)))
    assert open_ended.condition["age"] is None  # an open range has no middle


def test_given_covariates_win_and_a_confident_contradiction_is_a_warning():
    case = case_covariates("F", 30.0, 22.0, _estimate(p_male=0.97))
    assert case.condition == {"sex": "F", "age": 30.0, "bmi": 22.0}
    assert case.sources == {"sex": "given", "age": "given", "bmi": "given"}
    assert len(case.warnings) == 1 and "disagrees" in case.warnings[0] and "0.97" in case.warnings[0]
    assert not case_covariates("F", None, None, _estimate(p_male=0.7)).warnings  # not confident: no warning
    assert not case_covariates("M", None, None, _estimate(p_male=0.97)).warnings


def test_no_estimate_keeps_what_was_given():
    case = case_covariates(None, 50.0, None, None)
    assert case.condition == {"sex": None, "age": 50.0, "bmi": None}
    assert case.sources["sex"] == "unknown" and case.sources["age"] == "given"


@pytest.mark.slow
def test_reconstruction_without_sex_uses_the_skulls_estimate(small_model):
    """A phantom skull reconstructed with no sex given: the skull's estimate is reported and the
    face moves from the woman's by P(male) times the model's sex effect."""
    from medface.data import SurfaceMesh
    from medface.data.mesh import vertex_normals
    from medface.phantom import cohort
    from medface_forensic.reconstruction import Reconstruction
    from medface_forensic.shape_model import load_model

    member = next(cohort(1, seed=31))
    head = member.head
    skull = SurfaceMesh(np.concatenate([head.cranium.vertices, head.mandible.vertices]),
                        np.concatenate([head.cranium.faces, head.mandible.faces + len(head.cranium.vertices)]))
    logic = Reconstruction(load_model(small_model), variants=0)
    auto = logic.run(skull)
    woman = logic.run(skull, sex="F")
    est = auto.demography
    assert est is not None and est.sex_informative
    assert auto.covariate_sources["sex"].startswith("estimated from the skull")
    assert woman.covariate_sources["sex"] == "given" and woman.demography is not None
    effect = auto.model.covariate_effect[0].astype(float)
    big = np.abs(effect) > 1.0
    a, w = auto.posterior.mean, woman.posterior.mean
    along = np.einsum("ij,ij->i", a - w, vertex_normals(w, auto.model.skin_faces))
    assert np.median(along[big] / effect[big]) == pytest.approx(est.p_male, abs=0.1)
