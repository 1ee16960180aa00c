"""Occlusion-ready segmentation: the mandible comes out of a CT with its teeth and condyles.

The phantom CT (1.25 mm voxels, a planning CT's resolution) is taken with a joint space and a
bite gap (``jaw_gap_mm``, 2.5 mm); its source meshes are the truth. Points 1.5 mm inside the
source mandible's teeth and alveolar crest and inside its condyle heads must lie inside the
segmented mandible mesh and not inside the skull mesh; points inside the upper teeth the other
way round (1.5 mm: deeper than the half of the gap that each bone gives up where the jaws
touch). With the jaws touching (``jaw_gap_mm=0``: no joint space, teeth in contact) the
split falls back to erosion and says that teeth or condyles may stay with the skull; so does the
2 mm sample CT, where the 2.5 mm gap is finer than the voxels; given the landmarks (a plan's),
the 2 mm CT is split by a watershed seeded at them and keeps the teeth and condyles too.
"""

from __future__ import annotations

import numpy as np
import pytest

from medface.anatomy.ct_segmentation import segment_ct
from medface.data.mesh import outward_normals
from medface.phantom import make_head
from medface.phantom.ct import head_ct
from medface.phantom.sample_data import sample_subject

TEETH_Z = -62.0  # above this the source mandible is teeth and alveolar crest (the sample head, LPS mm)
CONDYLE_Z = -20.0  # above this, condyle heads
UPPER_TEETH_Z = (-54.0, -40.0)  # the crowns of the upper teeth on the cranium mesh


@pytest.fixture(scope="module")
def head():
    return make_head(sample_subject(np.random.default_rng(0), sex="F", age=38.0, bmi=23.5, subject_id="sample-0"))


def _inside_points(mesh, select, depth_mm: float = 1.5) -> np.ndarray:
    v = np.asarray(mesh.vertices, float)
    chosen = select(v)
    return v[chosen] - depth_mm * outward_normals(mesh)[chosen]


def _fraction_inside(points: np.ndarray, mesh) -> float:
    import pyvista as pv

    faces = np.hstack([np.full((mesh.n_faces, 1), 3), np.asarray(mesh.faces)]).ravel()
    surface = pv.PolyData(np.asarray(mesh.vertices, float), faces)
    inside = pv.PolyData(points).select_interior_points(surface, check_surface=False)["selected_points"]
    return float(np.mean(inside))


# 1.25 mm: the gap shows at the bone level (two components); 1.75 mm: the contacts are
# partial-volume voxels above the bone level, and the mandible is found above a denser level
# and regrown across the lowest values
SPLITS = {1.25: "separate component", 1.75: "separate above"}


@pytest.fixture(scope="module", params=sorted(SPLITS))
def split(head, request):
    seg = segment_ct(head_ct(head, spacing=request.param, seed=0), target_faces=30_000, smooth_iterations=5)
    assert seg.mandible_method.startswith(SPLITS[request.param]), seg.mandible_method
    return seg


def test_the_mandible_holds_all_lower_teeth_and_both_condyles(head, split):
    mandible, skull = split.meshes["mandible"], split.meshes["skull"]
    source = head.mesh("mandible")
    teeth = _inside_points(source, lambda v: v[:, 2] > TEETH_Z)
    for side, sign in (("right", -1), ("left", 1)):
        condyle = _inside_points(source, lambda v: (v[:, 2] > CONDYLE_Z) & (sign * v[:, 0] > 0))
        assert len(condyle) > 50, side
        assert _fraction_inside(condyle, mandible) > 0.99, f"{side} condyle head"
        assert _fraction_inside(condyle, skull) < 0.01, f"{side} condyle head"
    assert _fraction_inside(teeth, mandible) > 0.99
    assert _fraction_inside(teeth, skull) < 0.01


def test_the_upper_teeth_stay_with_the_skull(head, split):
    source = head.mesh("cranium")
    lo, hi = UPPER_TEETH_Z
    upper = _inside_points(source, lambda v: (v[:, 2] > lo) & (v[:, 2] < hi) & (v[:, 1] < -40))
    assert len(upper) > 100
    assert _fraction_inside(upper, split.meshes["skull"]) > 0.97
    assert _fraction_inside(upper, split.meshes["mandible"]) < 0.01


def test_touching_jaws_fall_back_to_erosion_and_say_so(head):
    seg = segment_ct(head_ct(head, spacing=2.0, seed=0, jaw_gap_mm=0.0), target_faces=10_000, smooth_iterations=5)
    assert seg.mandible_method.startswith("eroded")
    assert any("teeth or condyles" in w for w in seg.warnings), seg.warnings


def _jaw_fractions(head, seg) -> dict[str, float]:
    """Share of points inside the source lower teeth / condyles / upper teeth that each mesh holds."""
    mandible, skull, source = seg.meshes["mandible"], seg.meshes["skull"], head.mesh("mandible")
    out = {}
    teeth = _inside_points(source, lambda v: v[:, 2] > TEETH_Z)
    out["teeth in mandible"], out["teeth in skull"] = _fraction_inside(teeth, mandible), _fraction_inside(teeth, skull)
    for side, sign in (("right", -1), ("left", 1)):
        condyle = _inside_points(source, lambda v: (v[:, 2] > CONDYLE_Z) & (sign * v[:, 0] > 0))
        out[f"{side} condyle in mandible"] = _fraction_inside(condyle, mandible)
        out[f"{side} condyle in skull"] = _fraction_inside(condyle, skull)
    lo, hi = UPPER_TEETH_Z
    upper = _inside_points(head.mesh("cranium"), lambda v: (v[:, 2] > lo) & (v[:, 2] < hi) & (v[:, 1] < -40))
    out["upper teeth in skull"] = _fraction_inside(upper, skull)
    return out


def test_landmarks_seed_the_split_where_the_gap_is_finer_than_the_voxels(head):
    """At 2 mm the automatic split erodes (83 % of the lower teeth); seeded at the head's landmarks
    (condyles, gonion, chin, infradentale on the mandible; prosthion, A point, zygion, porion... on
    the skull) the watershed on the CT values keeps every lower tooth and both condyles."""
    ct = head_ct(head, spacing=2.0, seed=0)
    seg = segment_ct(ct, target_faces=20_000, smooth_iterations=5, landmarks=dict(head.landmarks))
    assert seg.mandible_method.startswith("seeded at 11 mandible and"), seg.mandible_method
    assert not any("teeth or condyles" in w for w in seg.warnings)
    f = _jaw_fractions(head, seg)
    assert min(f["teeth in mandible"], f["right condyle in mandible"], f["left condyle in mandible"]) > 0.99, f
    assert max(f["teeth in skull"], f["right condyle in skull"], f["left condyle in skull"]) < 0.02, f
    assert f["upper teeth in skull"] > 0.97, f


def test_landmarks_away_from_the_bone_are_not_used_and_said_so(head):
    ct = head_ct(head, spacing=2.0, seed=0)
    shifted = {k: np.asarray(v, float) + [0.0, 0.0, 400.0] for k, v in dict(head.landmarks).items()}
    seg = segment_ct(ct, target_faces=10_000, smooth_iterations=5, landmarks=shifted)
    assert seg.mandible_method.startswith("eroded"), seg.mandible_method
    assert any(w.startswith("the landmarks were not used for the mandible split") for w in seg.warnings)
