"""Outward orientation of surfaces: one rule (medface.data.mesh.winds_inward) for every caller."""

from __future__ import annotations

import numpy as np
import pytest

from medface.data import SurfaceMesh
from medface.data.mesh import orient_outward, outward_normals, vertex_normals, winds_inward


def _sphere(radius: float = 20.0, centre=(5.0, -3.0, 40.0)) -> SurfaceMesh:
    """A closed, outward-wound sphere (an icosphere from trimesh), off the origin."""
    trimesh = pytest.importorskip("trimesh")
    ico = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return SurfaceMesh(np.asarray(ico.vertices) + centre, np.asarray(ico.faces), name="ball", source="ball.stl")


def _pointing_out(mesh: SurfaceMesh, normals: np.ndarray) -> float:
    """Fraction of vertex normals that point away from the sphere's centre."""
    radial = mesh.vertices - mesh.vertices.mean(axis=0)
    return float(np.mean(np.einsum("ij,ij->i", normals, radial) > 0))


def test_an_inside_out_sphere_comes_back_outward():
    ball = _sphere()
    inside_out = SurfaceMesh(ball.vertices, ball.faces[:, ::-1], {"d": np.arange(ball.n_vertices, dtype=float)},
                             name="ball", source="ball.stl")
    assert inside_out.signed_volume() < 0 and winds_inward(inside_out)
    fixed = orient_outward(inside_out)
    assert fixed.signed_volume() == pytest.approx(ball.signed_volume())
    assert fixed.signed_volume() == pytest.approx(4 / 3 * np.pi * 20.0 ** 3, rel=0.02)
    np.testing.assert_array_equal(fixed.faces, ball.faces)
    assert _pointing_out(fixed, vertex_normals(fixed.vertices, fixed.faces)) == 1.0  # its winding's normals
    assert (fixed.name, fixed.source) == ("ball", "ball.stl")
    np.testing.assert_array_equal(fixed.point_data["d"], inside_out.point_data["d"])
    assert not winds_inward(fixed)


def test_an_outward_sphere_is_returned_unchanged():
    ball = _sphere()
    assert not winds_inward(ball)
    assert orient_outward(ball) is ball


def test_outward_normals_point_out_whatever_the_winding():
    ball = _sphere()
    inside_out = SurfaceMesh(ball.vertices, ball.faces[:, ::-1])
    for mesh in (ball, inside_out):
        assert _pointing_out(mesh, outward_normals(mesh)) == 1.0
    np.testing.assert_allclose(outward_normals(inside_out), outward_normals(ball), atol=1e-12)


def test_an_open_surface_keeps_its_winding():
    """An open cap encloses no volume: its (origin-dependent) signed volume decides nothing."""
    ball = _sphere()
    top = ball.vertices[ball.faces].mean(axis=1)[:, 2] > ball.vertices[:, 2].mean()
    cap = SurfaceMesh(ball.vertices, ball.faces[top][:, ::-1])
    assert cap.signed_volume() < 0 and not cap.is_watertight()
    assert not winds_inward(cap) and orient_outward(cap) is cap
