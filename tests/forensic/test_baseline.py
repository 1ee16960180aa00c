"""The tissue-depth baseline: table depths along the bone normals, the mean face warped through them."""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic.baseline import (constant_offset_face, peg_depth, pegs, template_sites, tissue_depth_face,
                                       typical_face_depth)
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


# ------------------------------------------------------------------ constant offset
def test_typical_face_depth_is_a_plausible_facial_tissue_thickness():
    assert 6.0 < typical_face_depth() < 14.0


def test_constant_offset_face_lies_at_the_constant_depth_from_the_bone(model, subjects):
    from scipy.spatial import cKDTree

    cr, md, _, _, _ = subjects
    tree = cKDTree(np.concatenate([cr[0], md[0]]).astype(np.float64))
    face = model.face_idx
    for depth, off in ((typical_face_depth(), constant_offset_face(model, cr[0], md[0])),
                       (5.0, constant_offset_face(model, cr[0], md[0], depth_mm=5.0))):
        dist = tree.query(off[face])[0]
        # each vertex stands exactly `depth` from one bone vertex, so no bone vertex is farther
        # away than that; only in bony hollows is another one a little nearer
        assert dist.max() <= depth + 1e-6
        assert np.median(dist) == pytest.approx(depth, abs=0.05)
        assert (dist > depth - 0.5).mean() > 0.9
    # without the mandible the lower face stands the depth from the cranium (maxilla), not from the jaw
    full, upper = constant_offset_face(model, cr[0], md[0]), constant_offset_face(model, cr[0], None)
    assert np.abs(upper[face] - full[face]).max() > 5.0
    assert cKDTree(cr[0]).query(upper[face])[0].max() <= typical_face_depth() + 1e-6
