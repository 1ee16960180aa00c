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
