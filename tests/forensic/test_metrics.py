"""The face region that accuracy is measured on: outer skin only, split into named regions."""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic import metrics as M
from medface_forensic.train import template_head


@pytest.fixture(scope="module")
def head():
    return template_head()


def test_face_region_is_the_outer_face_without_mouth_interior_or_neck(head):
    v, lm = head.skin.vertices, head.landmarks
    regions = M.face_regions(v, head.skin.faces, lm)
    face = regions["face"]
    # the regions partition the face
    total = sum(regions[r].astype(int) for r in M.REGIONS)
    assert np.array_equal(total > 0, face) and total.max() == 1
    # no lip vertex lies deep in the mouth slot (it reaches 80 mm back): all within 25 mm of the front
    lips = v[regions["lips"]]
    front = min(lm["ls"][1], lm["li"][1])
    assert len(lips) > 500 and lips[:, 1].max() - front < 25.0
    # no chin vertex lies in a chin-neck cleft far behind the soft-tissue pogonion
    assert v[regions["chin"], 1].max() - lm["pog_s"][1] < 30.0
    # the whole outer face is there: forehead to chin, cheek to cheek
    assert face.sum() > 20000
    for region in M.REGIONS:
        assert regions[region].sum() > 500, region


# ------------------------------------------------------------------ SD against error
def test_sd_error_correlation_is_one_when_the_sd_orders_the_errors():
    err = np.abs(np.random.default_rng(0).normal(0, 2, (5, 400)))
    assert M.sd_error_correlation(err, 0.5 * err) == pytest.approx(1.0)
    assert M.sd_error_correlation(err, err ** 2 + 1.0) == pytest.approx(1.0)  # ranks only: any increasing map
    assert M.sd_error_correlation(err, 1.0 / (err + 0.1)) == pytest.approx(-1.0)


def test_sd_error_correlation_of_an_unrelated_sd_is_near_zero_and_of_a_constant_sd_undefined():
    rng = np.random.default_rng(1)
    err = np.abs(rng.normal(0, 1, 20000))
    assert abs(M.sd_error_correlation(err, rng.uniform(0.5, 3.0, 20000))) < 0.03
    assert np.isnan(M.sd_error_correlation(err, np.full(20000, 2.0)))


def test_sd_error_correlation_of_gaussian_errors_with_that_sd_is_positive_but_well_below_one():
    """The ceiling for a correct SD: |N(0, sd)| errors against sd give a clearly positive ρ, far from 1."""
    rng = np.random.default_rng(2)
    sd = rng.uniform(0.5, 4.0, 50000)
    rho = M.sd_error_correlation(np.abs(rng.standard_normal(50000)) * sd, sd)
    assert 0.25 < rho < 0.6
