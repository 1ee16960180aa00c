"""The tissue-depth baseline: table depths along the bone normals, the mean face warped through them."""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic.baseline import peg_depth, pegs, template_sites, tissue_depth_face
from medface_forensic.train import phantom_training_set, train_phantom_model

from medface.data.mesh import vertex_normals


@pytest.fixture(scope="module")
def model():
    return train_phantom_model(20, seed=3, sizes={"cranium": 1000, "mandible": 300, "face": 2000}, n_calibration=0)


@pytest.fixture(scope="module")
def subjects():
    return phantom_training_set(3, 4711)


def test_sites_cover_the_midline_and_both_sides():
    sites = template_sites()
    ids = {s.landmark for s in sites}
    assert {"g", "n", "pog", "me"} <= ids  # forehead, nose root and chin pegs
    for s in sites:  # bilateral sites come in pairs
        if s.landmark.endswith("_l"):
            assert s.landmark[:-2] + "_r" in ids
    assert any(s.on_mandible for s in sites) and any(not s.on_mandible for s in sites)


def test_pegs_stand_at_the_table_depth_along_the_bone_normal(subjects):
    cr, md, _, _, subj = subjects
    s = subj[0]
    sites, points = pegs(cr[0], md[0], sex=s["sex"], age=s["age"], bmi=s["bmi"])
    for site, p in zip(sites, points):
        bone = (md[0] if site.on_mandible else cr[0])[site.vertex]
        depth = peg_depth(site.table_id, s["sex"], s["age"], s["bmi"])  # the literature prior's sex-specific mean
        assert np.linalg.norm(p - bone) == pytest.approx(depth, abs=1e-6)
    # a heavier person gets deeper pegs
    _, heavy = pegs(cr[0], md[0], sex=s["sex"], age=s["age"], bmi=s["bmi"] + 10)
    assert np.mean(np.linalg.norm(heavy - points, axis=1)) > 0.5
    # without the mandible its pegs are gone
    upper, _ = pegs(cr[0], None, sex=s["sex"])
    assert upper and not any(site.on_mandible for site in upper)


def test_baseline_face_follows_the_skull_better_than_the_mean_face(model, subjects):
    cr, md, sk, _, subj = subjects
    face = model.face_idx
    warped, mean_face = [], []
    for i in range(len(cr)):
        n = vertex_normals(sk[i], model.skin_faces)
        s = subj[i]
        b = tissue_depth_face(model, cr[i], md[i], sex=s["sex"], age=s["age"], bmi=s["bmi"])
        warped.append(np.abs(np.einsum("ij,ij->i", b - sk[i], n))[face].mean())
        mean_face.append(np.abs(np.einsum("ij,ij->i", model.baseline_face(cr[i]) - sk[i], n))[face].mean())
        # the pegged skin points sit on their pegs (thin-plate smoothing leaves < 1.5 mm)
        sites, points = pegs(cr[i], md[i], sex=s["sex"], age=s["age"], bmi=s["bmi"])
        gap = np.linalg.norm(b[[st.skin_vertex for st in sites]] - points, axis=1)
        assert np.median(gap) < 1.5
    assert np.mean(warped) < np.mean(mean_face)
