"""medface.anatomy.registration: similarity fits, trimmed ICP and the Gaussian displacement field."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medface.anatomy.registration import (DisplacementField, Pins, PointCloud, Similarity, fit_displacement_field,
                                          grid_sample, icp, umeyama)
from medface.errors import InputError


def _rotation_2d(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def test_umeyama_recovers_a_known_similarity_in_2d_and_3d():
    rng = np.random.default_rng(0)
    for dim, rot in ((2, _rotation_2d(0.7)), (3, Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix())):
        src = rng.normal(size=(40, dim)) * 50
        t = rng.normal(size=dim) * 20
        dst = 1.7 * src @ rot.T + t
        fit = umeyama(src, dst)
        assert fit.scale == pytest.approx(1.7, rel=1e-12)
        np.testing.assert_allclose(fit.rotation, rot, atol=1e-12)
        np.testing.assert_allclose(fit.translation, t, atol=1e-9)
        np.testing.assert_allclose(fit.apply(src), dst, atol=1e-9)
        np.testing.assert_allclose(fit.inverse().apply(dst), src, atol=1e-9)
        assert fit.affine.shape == (dim, dim + 1) and fit.matrix.shape == (dim + 1, dim + 1)
        s, r, _ = umeyama(src, src @ rot.T + t, scale=False)  # rigid: unpacks as (s, R, t)
        assert s == 1.0 and np.allclose(r, rot, atol=1e-12)


def test_weights_ignore_an_outlier_that_would_spoil_the_fit():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 3)) * 30
    rot = Rotation.from_euler("z", 40, degrees=True).as_matrix()
    dst = src @ rot.T + [5.0, 0.0, -3.0]
    dst[0] += 80.0  # one point is wrong
    weights = np.ones(20)
    weights[0] = 0.0
    fit = umeyama(src, dst, weights)
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-12)
    assert fit.scale == pytest.approx(1.0, abs=1e-12)
    assert not np.allclose(umeyama(src, dst).rotation, rot, atol=1e-3)  # unweighted, the outlier pulls


def test_a_mirrored_point_set_gets_a_proper_rotation_not_a_reflection():
    rng = np.random.default_rng(2)
    for dim in (2, 3):
        src = rng.normal(size=(30, dim)) * 40
        mirror = np.eye(dim)
        mirror[0, 0] = -1.0
        dst = src @ mirror.T
        fit = umeyama(src, dst)
        assert np.linalg.det(fit.rotation) == pytest.approx(1.0)
        free = umeyama(src, dst, allow_reflection=True)
        np.testing.assert_allclose(free.rotation, mirror, atol=1e-12)
        np.testing.assert_allclose(free.apply(src), dst, atol=1e-9)


def test_bad_point_sets_are_input_errors():
    with pytest.raises(InputError, match="matching point sets"):
        umeyama(np.zeros((5, 3)), np.zeros((4, 3)))
    with pytest.raises(InputError, match="coincide"):
        umeyama(np.ones((5, 2)), np.zeros((5, 2)))
    with pytest.raises(InputError, match="weights"):
        umeyama(np.eye(3), np.eye(3), weights=[1.0, -1.0, 1.0])


def _blob(n: int, rng) -> PointCloud:
    """Points and outward normals of a skull-sized, irregular closed surface (no symmetry)."""
    from scipy.spatial import cKDTree

    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    radius = 80 * (1 + 0.25 * np.sin(2 * d[:, 0] + 1) * np.cos(3 * d[:, 1]) + 0.15 * d[:, 2] ** 3)
    p = d * radius[:, None] * np.array([0.9, 1.15, 1.0])
    near = p[cKDTree(p).query(p, 12)[1]]
    near -= near.mean(1, keepdims=True)
    normals = np.linalg.eigh(np.einsum("nki,nkj->nij", near, near))[1][:, :, 0]  # least spread: the normal
    normals *= np.sign(np.einsum("ij,ij->i", normals, p - p.mean(0)))[:, None]
    return PointCloud(p, normals)


ROT = Rotation.from_euler("xyz", [8, -6, 10], degrees=True).as_matrix()
SHIFT = np.array([6.0, -4.0, 5.0])


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))


def test_icp_recovers_a_known_rigid_move_of_a_noisy_surface():
    rng = np.random.default_rng(3)
    surface = _blob(20000, rng)
    noisy = surface.points @ ROT.T + SHIFT + rng.normal(scale=0.3, size=surface.points.shape)
    target = PointCloud(noisy, surface.normals @ ROT.T)
    source = surface.sampled(3000)
    res = icp(source, target, scale=False, iterations=60)
    s, r, t = res.transform
    assert s == 1.0
    assert _angle_deg(r, ROT) < 0.5 and np.linalg.norm(t - SHIFT) < 0.3
    start = icp(source, target, scale=False, iterations=0)
    assert start.score > 3 * res.score
    scaled = icp(source, target, iterations=60)  # a similarity fit finds no scale to add
    assert scaled.transform.scale == pytest.approx(1.0, abs=0.003)


def test_icp_ignores_source_points_outside_the_field_of_view():
    """A scan that stops at z = 20 mm: the source's top has no partner in it. With the field of
    view those points look for none and the move is found; without it they drag the fit."""
    surface = _blob(20000, np.random.default_rng(5))
    rot = Rotation.from_euler("xyz", [3, -2, 4], degrees=True).as_matrix()
    shift = np.array([2.0, -3.0, 4.0])
    below = surface.points[:, 2] < 20.0
    cut = PointCloud(surface.points[below] @ rot.T + shift, surface.normals[below] @ rot.T)

    def fov(points):  # the scanned box, in the target's frame
        return (points - shift) @ rot[:, 2] < 20.0

    source = surface.sampled(3000)
    res = icp(source, cut, scale=False, field_of_view=fov, iterations=80)
    assert _angle_deg(res.transform.rotation, rot) < 0.2
    assert np.linalg.norm(res.transform.translation - shift) < 0.1
    blind = icp(source, cut, scale=False, iterations=80)
    assert np.linalg.norm(blind.transform.translation - shift) > 3.0


def test_displacement_field_interpolates_given_displacements_smoothly():
    rng = np.random.default_rng(6)
    surface = _blob(5000, rng)

    def bump(p):  # a smooth displacement: 6 mm outwards at the front, fading over ~40 mm
        return 6.0 * np.exp(-((p[:, 1] + 95.0) ** 2) / (2 * 40.0 ** 2))[:, None] * np.array([0.0, -1.0, 0.0])

    target = PointCloud(surface.points + bump(surface.points), surface.normals)
    sample = grid_sample(surface.points, 1500)
    fit = fit_displacement_field(surface.points[sample], surface.normals[sample], target, widths=(50.0, 30.0))
    # points the fit never saw get the displacement of their neighbourhood
    others = _blob(2000, np.random.default_rng(7)).points
    err = np.linalg.norm(fit.field(others) - bump(others), axis=1)
    assert np.median(err) < 0.8 and np.percentile(err, 95) < 2.0, (np.median(err), np.percentile(err, 95))
    # smooth: two points 1 mm apart move almost alike
    step = np.linalg.norm(fit.field(others + [1.0, 0.0, 0.0]) - fit.field(others), axis=1)
    assert step.max() < 0.5
    np.testing.assert_allclose(fit.moved, surface.points[sample] + fit.field(surface.points[sample]), atol=1e-3)


def test_pins_pull_the_field_onto_their_targets():
    rng = np.random.default_rng(8)
    surface = _blob(3000, rng)
    target = surface  # nothing to fit but the pin
    pin = Pins(surface.points[:1], surface.points[:1] + [4.0, 0.0, 0.0], weight=200.0)
    free = fit_displacement_field(surface.points, surface.normals, target, widths=(30.0,))
    pinned = fit_displacement_field(surface.points, surface.normals, target, pins=pin, widths=(30.0,))
    assert np.abs(free.field(pin.source)).max() < 0.5
    assert pinned.field(pin.source)[0, 0] > 2.0


def test_empty_field_moves_nothing():
    assert np.all(DisplacementField()(np.ones((4, 3))) == 0)
    assert Similarity.identity(2).apply(np.ones((1, 2))).tolist() == [[1.0, 1.0]]


def test_icp_without_normals_still_recovers_a_small_move():
    surface = _blob(20000, np.random.default_rng(9))
    rot = Rotation.from_euler("xyz", [2, -3, 2], degrees=True).as_matrix()
    target = PointCloud(surface.points @ rot.T + [1.0, 2.0, -1.0])  # points only, e.g. a scan
    res = icp(PointCloud(surface.sampled(3000).points), target, scale=False, iterations=80)
    assert _angle_deg(res.transform.rotation, rot) < 0.3
    np.testing.assert_allclose(res.transform.translation, [1.0, 2.0, -1.0], atol=0.2)
