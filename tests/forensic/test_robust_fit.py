"""Reconstruction on damaged, partial and mis-scaled skulls: a plausible face or a clear refusal,
never a face rotated off the skull with exit 0; the conditioning does not chase registration
error; the fit check says when the result is not to be trusted."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from medface.data import Landmarks, SurfaceMesh
from medface.errors import InputError
from medface.phantom import cohort
from medface_forensic import conditioning as C
from medface_forensic.metrics import face_regions
from medface_forensic.reconstruction import Reconstruction
from medface_forensic.shape_model import load_model
from medface_forensic.template import template_head

#: the mean distance (mm) of a plausible reconstruction of a held-out phantom head from its true skin
#: (the small test model reaches about 1 mm on intact skulls)
PLAUSIBLE_MM = 2.0


@pytest.fixture(scope="module")
def model(small_model):
    return load_model(small_model)


@pytest.fixture(scope="module")
def head():
    return next(cohort(1, seed=1000)).head


@pytest.fixture(scope="module")
def face_mask():
    t = template_head()
    return face_regions(t.skin.vertices, t.skin.faces, t.landmarks)["face"]


def _skull(head) -> SurfaceMesh:
    v = np.concatenate([head.cranium.vertices, head.mandible.vertices])
    f = np.concatenate([head.cranium.faces, head.mandible.faces + len(head.cranium.vertices)])
    return SurfaceMesh(v, f)


def _error(face_vertices, skin_vertices, mask) -> float:
    return float(cKDTree(skin_vertices).query(face_vertices[mask])[0].mean())


def _holed(mesh: SurfaceMesh, rng, holes: int = 6, radius: float = 15.0, drop: float = 0.10) -> SurfaceMesh:
    centres = mesh.vertices[rng.choice(len(mesh.vertices), holes, replace=False)]
    tri_centres = mesh.vertices[mesh.faces].mean(axis=1)
    keep = rng.random(len(mesh.faces)) > drop
    for c in centres:
        keep &= np.linalg.norm(tri_centres - c, axis=1) > radius
    return SurfaceMesh(mesh.vertices, mesh.faces[keep])


def _keep(mesh: SurfaceMesh, inside) -> SurfaceMesh:
    return SurfaceMesh(mesh.vertices, mesh.faces[inside(mesh.vertices[mesh.faces].mean(axis=1))])


@pytest.mark.slow
def test_a_holed_skull_in_another_pose_gives_a_face_on_the_skull_or_a_refusal(model, head, face_mask):
    rot = Rotation.from_euler("xyz", [15, -40, 100], degrees=True).as_matrix()
    skull = _holed(_skull(head), np.random.default_rng(3))
    moved = SurfaceMesh(skull.vertices @ rot.T + 50.0, skull.faces)
    try:
        rec = Reconstruction(model, variants=2).run(moved)
    except InputError as err:  # a refusal must say why
        assert "skull" in str(err)
        return
    back = (rec.face.vertices - 50.0) @ rot
    assert _error(back, head.skin.vertices, face_mask) < PLAUSIBLE_MM
    assert rec.fit_check.ok, rec.fit_check.problems


@pytest.mark.slow
def test_an_anterior_half_is_reconstructed_over_the_part_it_constrains(model, head, face_mask):
    porion_y = 0.5 * (head.landmarks["po_l"][1] + head.landmarks["po_r"][1])
    front = _keep(_skull(head), lambda c: c[:, 1] < porion_y)  # LPS: +y is posterior
    rec = Reconstruction(model, variants=2).run(front)
    assert any("fragment" in w for w in rec.warnings)
    assert not any("scan cuts" in w for w in rec.warnings)
    assert _error(rec.face.vertices, head.skin.vertices, face_mask) < PLAUSIBLE_MM
    back_of_head = rec.face.vertices[:, 1] > porion_y + 40.0
    assert np.median(rec.model_sd_mm[back_of_head]) > np.median(rec.model_sd_mm[face_mask])


@pytest.mark.slow
def test_a_facial_skeleton_without_vault_needs_landmarks_and_then_reconstructs(model, head, face_mask):
    lm = head.landmarks
    porion_y = 0.5 * (lm["po_l"][1] + lm["po_r"][1])
    facial = _keep(_skull(head), lambda c: (c[:, 1] < porion_y) & (c[:, 2] < lm["g"][2] + 15.0))
    try:
        rec = Reconstruction(model, variants=2).run(facial)
    except InputError as err:
        assert "landmarks" in (err.hint or "")
        ids = ["n", "pr", "zy_l", "zy_r", "or_l", "or_r"]
        rec = Reconstruction(model, variants=2).run(facial, landmarks=Landmarks(ids, np.array([lm[i] for i in ids])))
    assert any("fragment" in w for w in rec.warnings)
    assert _error(rec.face.vertices, head.skin.vertices, face_mask) < PLAUSIBLE_MM


def _meshed_with(mesh: SurfaceMesh, vertices: int) -> SurfaceMesh:
    """The same surface with about ``vertices`` vertices: decimated, or subdivided then decimated."""
    import pyvista as pv

    poly = pv.PolyData.from_regular_faces(np.asarray(mesh.vertices, float), np.asarray(mesh.faces))
    while poly.n_points < vertices:
        poly = poly.subdivide(1, "linear")
    if poly.n_points > 1.05 * vertices:
        poly = poly.decimate_pro(1.0 - vertices / poly.n_points, preserve_topology=True)
    return SurfaceMesh(np.asarray(poly.points), np.asarray(poly.faces).reshape(-1, 4)[:, 1:])


@pytest.mark.slow
@pytest.mark.parametrize("vertices", [5_000, 200_000])
def test_a_skull_meshed_coarsely_or_finely_in_another_pose_gives_a_plausible_face(model, head, face_mask, vertices):
    """A lab's own segmentation: 5k to 200k vertices, in its scanner's pose."""
    skull = _meshed_with(_skull(head), vertices)
    assert 0.8 * vertices <= len(skull.vertices) <= 1.3 * vertices
    rot = Rotation.from_euler("xyz", [-25, 30, 170], degrees=True).as_matrix()
    moved = SurfaceMesh(skull.vertices @ rot.T + np.array([-80.0, 20.0, 900.0]), skull.faces)
    rec = Reconstruction(model, variants=2).run(moved)
    back = (rec.face.vertices - np.array([-80.0, 20.0, 900.0])) @ rot
    assert _error(back, head.skin.vertices, face_mask) < PLAUSIBLE_MM
    assert rec.fit_check.ok, rec.fit_check.problems


def _smooth_field(points: np.ndarray, rng, amplitude: float, width: float = 30.0) -> np.ndarray:
    """A smooth random displacement (mm) of ``points``: the kind of error a registration makes."""
    centres = points[rng.choice(len(points), 40, replace=False)]
    k = np.exp(-((points[:, None, :] - centres[None]) ** 2).sum(-1) / (2 * width ** 2))
    field = k @ rng.standard_normal((len(centres), 3))
    return amplitude * field / np.sqrt((field ** 2).sum(1).mean())


def test_correlated_registration_error_does_not_drive_the_face_off_the_model(model, head, face_mask):
    """With 4 mm of smooth registration error on the skull, the old conditioning (1 mm of
    independent noise per coordinate) fits the error: its latent mean lies far out in the prior.
    The robust conditioning keeps it plausible and the face no worse."""
    rng = np.random.default_rng(7)
    skull = np.concatenate([head.cranium.vertices, head.mandible.vertices])
    noisy = skull + _smooth_field(skull, rng, 4.0)
    nc = model.n_cranium
    cranium, mandible = noisy[:nc], noisy[nc:]
    naive = model.condition(cranium, mandible, sigma=1.0)
    robust, check = C.robust_condition(model, cranium, mandible, distance=np.zeros(len(noisy)),
                                       regions=np.full(len(noisy), "skull", dtype=object))
    assert np.linalg.norm(robust.mean_z) < 0.7 * np.linalg.norm(naive.mean_z)
    assert _error(robust.mean, head.skin.vertices, face_mask) <= _error(naive.mean, head.skin.vertices, face_mask) + 0.1
    # the honest SD: the robust posterior is less sure of itself
    assert np.median(robust.sd(include_residual=False)) > 1.15 * np.median(naive.sd(include_residual=False))
    # the noise was measured from the residuals (what the model cannot absorb of the error), not assumed
    assert check.regions[0]["noise_sd_mm"] > 1.5 * C.MIN_NOISE_MM


def test_fit_check_flags_a_skull_the_model_has_not_seen_and_a_missing_facial_skeleton(model):
    t = template_head()
    regions = C.skull_regions(t)
    # a skull 12 prior SDs along the first component from the mean
    post = model.prior()
    z = np.zeros(model.n_components)
    z[0] = 12.0
    x = model.mean + model.W @ z
    sl_c, sl_m, _, _ = model._slices()
    cranium = np.zeros((model.n_cranium, 3))
    cranium[model.cranium_idx] = x[sl_c].reshape(-1, 3)
    mandible = np.zeros((model.n_mandible, 3))
    mandible[model.mandible_idx] = x[sl_m].reshape(-1, 3)
    dist = np.zeros(len(regions))
    _, far = C.robust_condition(model, cranium, mandible, distance=dist, regions=regions)
    assert not far.ok and any("outside what the model has seen" in p for p in far.problems)
    assert far.mahalanobis > 8.0
    # the same skull with its facial skeleton meeting no bone
    dist[np.isin(regions, C.FACIAL_REGIONS)] = 30.0
    _, missing = C.robust_condition(model, cranium, mandible, distance=dist, regions=regions)
    assert any("facial skeleton" in p for p in missing.problems)


def test_skull_regions_follow_the_anatomy():
    t = template_head()
    regions = C.skull_regions(t)
    n_cranium = len(t.cranium.vertices)
    assert set(regions[n_cranium:]) <= {"mandible", "chin"}
    assert {"cranial vault", "orbit", "nose", "maxilla", "zygoma"} <= set(regions[:n_cranium])
    top = np.argmax(t.cranium.vertices[:, 2])
    assert regions[top] == "cranial vault"


def test_bone_distance_does_not_depend_on_how_coarsely_the_bone_is_meshed():
    # one big triangle: a point above its middle is 1 mm from it, though 50 mm from every vertex
    v = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 100.0, 0.0]])
    d = C.bone_distance(np.array([[30.0, 30.0, 1.0]]), v, np.array([[0, 1, 2]]))
    assert d[0] < 1.8


def test_a_wrong_scale_is_named_with_the_factor_the_registration_finds():
    from medface_forensic.register import scale_warning

    text = scale_warning(0.65, 10.0)
    assert "--scale 15.4" in text and "smaller" in text
