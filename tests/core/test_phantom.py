"""The phantom head: closed surfaces, exact landmarks, cited tissue depths, symmetry, variation,
condition presets and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from medface.data import SurfaceMesh
from medface.errors import ParameterError
from medface.phantom import cohort, make_head, mean_subject, sample_subject
from medface.phantom import shape as SH
from medface.phantom import tables as TB
from medface.phantom.head import Subject, target_depth
from medface.phantom.template import DEPTH_PAIRS, get_template


@pytest.fixture(scope="module")
def female():
    return make_head(mean_subject("F"))


@pytest.fixture(scope="module")
def random_heads():
    rng = np.random.default_rng(7)
    subjects = [sample_subject(rng) for _ in range(4)]
    subjects += [sample_subject(rng, condition=c, severity="severe")
                 for c in ("hypertelorism", "micrognathia", "mandibular_prognathia", "hemifacial_microsomia")]
    return [make_head(s) for s in subjects]


def test_meshes_are_closed_single_surfaces_with_outward_normals(female):
    for name in ("cranium", "mandible", "skin"):
        mesh = female.mesh(name)
        boundary, nonmanifold = mesh.edge_counts()
        assert (boundary, nonmanifold) == (0, 0), name
        assert mesh.n_components() == 1, name
        assert mesh.signed_volume() > 0, f"{name} normals point inward"
    assert 400e3 < female.cranium.signed_volume() < 1200e3  # bone volume of a skull, mm^3
    assert 3.0e6 < female.skin.signed_volume() < 7.0e6  # head and neck, mm^3


def test_at_least_25_craniometric_and_15_soft_tissue_landmarks(female):
    from medface.anatomy.landmarks import get

    kinds = [get(k).kind for k in female.landmarks]
    assert kinds.count("craniometric") >= 25 and kinds.count("soft_tissue") >= 15


def test_landmarks_lie_on_their_surfaces(female):
    import trimesh

    t = get_template()
    skin = trimesh.Trimesh(*female.meshes["skin"], process=False)
    depth_points = np.array([female.landmarks[k] for k in DEPTH_PAIRS])
    _, distance, _ = trimesh.proximity.closest_point(skin, depth_points)
    assert distance.max() < 1e-6  # depth landmarks: where the measuring ray meets the skin
    for key, sp in t.landmarks.items():
        if sp.mesh == "free" or key in DEPTH_PAIRS:
            continue
        v, f = female.meshes[sp.mesh]
        tri = v[f[sp.face]]
        p = female.landmarks[key]
        # the point is the barycentric combination of its triangle: on the surface
        assert np.allclose(sp.weights @ tri, p), key
        assert np.all(sp.weights >= -1e-9) and abs(sp.weights.sum() - 1) < 1e-9, key


def test_frankfurt_horizontal_and_origin(female):
    L = female.landmarks
    for key in ("po_l", "po_r", "or_l"):
        assert abs(L[key][2]) < 0.6, (key, L[key])
    assert np.allclose(0.5 * (L["po_l"] + L["po_r"]), 0, atol=0.6)
    assert L["prn"][1] < L["n_s"][1] < 0 < L["op"][1]  # the face looks to -y (anterior)
    assert L["zy_l"][0] > 0 > L["zy_r"][0]  # patient's left is +x


def test_tissue_depths_match_the_table_for_sex_age_bmi(random_heads):
    for head in random_heads:
        measured, expected = head.tissue_depths(), head.expected_tissue_depths()
        for soft in DEPTH_PAIRS:
            assert abs(measured[soft] - expected[soft]) < 0.5, (head.subject.subject_id, soft)
        # and the expected value is the cited table's for this subject
        s = head.subject
        mean, sd = TB.tissue_depth("g", s.sex, s.age, s.bmi)
        assert expected["g_s"] == pytest.approx(max(mean + s.tissue_z["g_s"] * sd, 1.0))


def test_bmi_thickens_the_cheek_and_chin():
    lean = make_head(mean_subject("M", bmi=19.0))
    heavy = make_head(mean_subject("M", bmi=34.0))
    assert heavy.tissue_depths()["go_s_l"] - lean.tissue_depths()["go_s_l"] > 2.0
    assert heavy.tissue_depths()["pog_s"] > lean.tissue_depths()["pog_s"]


def _outside_bone(head) -> np.ndarray:
    t = get_template()
    skin = head.meshes["skin"][0][::7]
    back = head.warp.inverse(skin)
    return np.minimum(t.sample_field("cranium", back), t.sample_field("mandible", back))


def test_skin_lies_outside_bone_everywhere(female, random_heads):
    for head in [female] + random_heads:
        d = _outside_bone(head)
        assert d.min() > 0.0, (head.subject.subject_id, float(d.min()))


def test_warps_fold_nothing(random_heads):
    """Marching-cubes surfaces have no self-intersections; an orientation-preserving warp keeps it so:
    every triangle keeps its orientation and the warp's Jacobian stays positive."""
    t = get_template()
    for head in random_heads:
        for name in ("cranium", "mandible", "skin"):
            v0, f = t.meshes[name]
            v1 = head.meshes[name][0]
            n0 = np.cross(v0[f[:, 1]] - v0[f[:, 0]], v0[f[:, 2]] - v0[f[:, 0]])
            n1 = np.cross(v1[f[:, 1]] - v1[f[:, 0]], v1[f[:, 2]] - v1[f[:, 0]])
            cos = (n0 * n1).sum(1) / (np.linalg.norm(n0, axis=1) * np.linalg.norm(n1, axis=1) + 1e-12)
            assert cos.min() > 0.0, (head.subject.subject_id, name, float(cos.min()))  # no triangle flips
        pts = t.meshes["skin"][0][::50]
        h = 0.5
        J = np.stack([(head.warp.forward(pts + h * e) - head.warp.forward(pts - h * e)) / (2 * h)
                      for e in np.eye(3)], axis=2)
        assert np.linalg.det(J).min() > 0.1  # orientation-preserving everywhere on the head


def test_symmetric_subject_mirrors_left_and_right(female):
    L = female.landmarks
    pairs = [(k, k[:-2] + "_r") for k in L if k.endswith("_l")]
    assert len(pairs) >= 15
    for left, right in pairs:
        assert np.linalg.norm(L[left] * np.array([-1, 1, 1]) - L[right]) < 0.1, left
    for key in L:
        if not key.endswith(("_l", "_r")):
            assert abs(L[key][0]) < 0.1, key


def test_shape_targets_are_met(random_heads):
    from medface.phantom.head import SOFT_NEAR_PINS

    for head in random_heads[:4]:  # healthy subjects: severe presets may ask for conflicting targets
        measured = head.measurements()
        for name, target in head.subject.targets.items():
            if name in SOFT_NEAR_PINS or name in SH.EXTENDED:
                continue  # moved by pinning the skin (documented); extended targets are deviations
                # from what the rest of the head implies (tests/core/test_phantom_features.py)
            tol = 1.5 if name in ("sna", "snb") else 0.03 * abs(target) + 0.5
            assert abs(measured[name] - target) < tol, (head.subject.subject_id, name, measured[name], target)


def test_sex_differences_follow_the_norms():
    f, m = make_head(mean_subject("F")), make_head(mean_subject("M"))
    for name in ("cranial_length", "bizygomatic_breadth", "mandibular_body_length"):
        assert m.measurements()[name] > f.measurements()[name]


NAMED = {c.id: c for c in TB.CONDITIONS}


# severe retrognathia would need the chin to move back further than a fold-free warp allows; the
# fold guard stops it at about 60 % of the documented change (docs/phantom.md)
REACHED = {("retrognathia", "severe"): 0.55}


@pytest.mark.parametrize("severity", ["mild", "moderate", "severe"])
@pytest.mark.parametrize("condition_id", sorted(NAMED))
def test_condition_shifts_its_named_measurement(condition_id, severity):
    preset = NAMED[condition_id]
    base_rng, cond_rng = np.random.default_rng(11), np.random.default_rng(11)
    base = make_head(sample_subject(base_rng, sex="F", age=40, bmi=24))
    affected = make_head(sample_subject(cond_rng, sex="F", age=40, bmi=24, condition=condition_id, severity=severity))
    mean, sd = TB.norm(preset.measure, "F")
    expected = preset.shift_sd(severity) * sd
    if preset.measure == "head_circumference":
        change = affected.head_circumference() - base.head_circumference()
    elif preset.side == "unilateral":
        la, lb = affected.landmarks, base.landmarks
        def ramus(L, side):  # cephalometric (mid-sagittal projection), as the norm is defined
            return np.linalg.norm((L[f"co_{side}"] - L[f"go_{side}"])[1:])

        change = ramus(la, "l") - ramus(lb, "l")
        right = ramus(la, "r") - ramus(lb, "r")
        assert abs(right) < 0.35 * abs(expected), "the other side must stay (nearly) unchanged"
    else:
        comp = next(c for c in SH.COMPONENTS if c.table_id == preset.measure)
        change = affected.measurements()[comp.name] - base.measurements()[comp.name]
    assert np.sign(change) == np.sign(expected), (condition_id, change, expected)
    if (condition_id, severity) in REACHED:
        assert abs(change) > REACHED[condition_id, severity] * abs(expected), (condition_id, change, expected)
    else:
        assert abs(change - expected) < 0.3 * abs(expected), (condition_id, change, expected)


def test_mild_presets_overlap_the_normal_range():
    for preset in TB.CONDITIONS:
        assert abs(preset.shift_sd("mild")) < 2.0 <= abs(preset.shift_sd("moderate")) + 0.5


def test_cohort_is_lazy_reproducible_and_labelled():
    members = list(cohort(12, conditions=["hypertelorism", "micrognathia"], seed=3))
    assert len(members) == 12 and all("head" not in m.__dict__ for m in members)
    labels = {m.label for m in members}
    assert labels <= {"hypertelorism", "micrognathia", "unaffected"} and len(labels) >= 2
    again = list(cohort(12, conditions=["hypertelorism", "micrognathia"], seed=3))
    assert [m.subject for m in members] == [m.subject for m in again]
    assert np.allclose(members[0].head.landmarks["n"], again[0].head.landmarks["n"])


@pytest.mark.parametrize("kwargs, parameter", [
    ({"bmi": 0}, "bmi"), ({"bmi": -3}, "bmi"), ({"age": 0.5}, "age"), ({"age": 130}, "age"), ({"sex": "X"}, "sex"),
    ({"condition": "werewolf", "severity": "mild"}, "condition"),
    ({"condition": "hypertelorism", "severity": "extreme"}, "severity"),
    ({"tissue_override": {"n": -2.0}}, "tissue_override"), ({"tissue_override": {"nose": 3.0}}, "tissue_override"),
    ({"targets": {"cranial_length": -10.0}}, "cranial_length"), ({"targets": {"skull_girth": 500.0}}, "targets"),
])
def test_invalid_parameters_are_refused_clearly(kwargs, parameter):
    base = dict(sex="F", age=40.0, bmi=24.0)
    base.update(kwargs)
    with pytest.raises(ParameterError) as info:
        Subject(**base)
    assert info.value.parameter == parameter


def test_cohort_rejects_unknown_condition():
    with pytest.raises(ParameterError, match="unknown condition 'nope'"):
        next(cohort(3, conditions=["nope"]))


def test_tissue_override_is_used():
    s = mean_subject("F")
    s2 = Subject(s.sex, s.age, s.bmi, s.targets, s.tissue_z, tissue_override={"n": 9.0})
    assert target_depth(s2, "n") == 9.0
    assert make_head(s2).tissue_depths()["n_s"] == pytest.approx(9.0, abs=0.5)


def test_mesh_round_trip_through_surface_mesh(female, tmp_path):
    from medface.io import read_mesh, write_mesh

    path = write_mesh(female.mandible, tmp_path / "mandible.ply")
    back = read_mesh(path)
    assert isinstance(back, SurfaceMesh) and back.n_faces == female.mandible.n_faces
