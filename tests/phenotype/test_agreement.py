"""The photo path and the 3D path agree on the same head: a phantom head's photo and its own skin
surface (screen-mesh: found in any orientation, rendered in a uniform skin colour) give the same
verdict. The first demo model, trained on photos only, scored the unaffected phantom head 0.18
from its photo and 0.90 from its skin mesh."""

from __future__ import annotations

import numpy as np
import pytest

from medface.phantom.head import make_head, sample_subject
from medface.phantom.photo import render_photo
from medface_phenotype.screening import Screener
from medface_phenotype.surface import screen_surface

#: (condition or None for an unaffected head, severity) of the cohort
COHORT = [(None, "moderate"), (None, "moderate"), (None, "moderate"), ("hypertelorism", "severe"),
          ("micrognathia", "severe"), ("long_philtrum", "severe"), ("mandibular_prognathia", "moderate"),
          ("midface_retrusion", "severe")]
#: the largest difference of syndromic scores between the two paths on one head
MAX_SCORE_GAP = 0.35


@pytest.fixture(scope="module")
def pairs():
    screener = Screener(attention=False)
    out = []
    for k, (condition, severity) in enumerate(COHORT):
        subject = sample_subject(np.random.default_rng([73, k]), condition=condition, severity=severity,
                                 subject_id=f"agreement-{k}")
        head = make_head(subject)
        photo = screener.screen_one(render_photo(head, size=(384, 384), seed=7300 + k).pixels)
        mesh = screen_surface(head.skin, screener=screener)
        out.append((condition, photo, mesh))
    return out


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 15: with the demo model 0.2.0 unaffected heads differ by up to 0.52 and one "
                          "micrognathia surface is off-distribution", strict=False)
def test_photo_and_surface_of_one_head_give_the_same_verdict(pairs):
    gaps, decisions = [], []
    for condition, photo, mesh in pairs:
        assert photo.screened and mesh.screened, condition
        assert photo.in_distribution is not False and mesh.in_distribution is not False, condition
        gaps.append(abs(photo.syndromic_score - mesh.syndromic_score))
        decisions.append((photo.syndromic_score > 0.5) == (mesh.syndromic_score > 0.5))
    assert max(gaps) <= MAX_SCORE_GAP, f"syndromic scores differ by {np.round(gaps, 2).tolist()}"
    assert sum(decisions) >= len(pairs) - 1, decisions


@pytest.mark.slow
def test_photo_and_surface_rank_the_same_conditions_first(pairs):
    agree = sum(photo.top_condition in [c.condition for c in mesh.conditions[:3]] for _, photo, mesh in pairs)
    assert agree >= 0.75 * len(pairs)
