"""Mirroring: the healthy half of a bone reflected across the mid-sagittal plane onto the defect side.

The plane comes from the plan (given), from bilateral landmarks
(:func:`medface.anatomy.cephalometry.midsagittal_plane`) or from the surface's own symmetry
(:func:`symmetry_plane_from_surface`); the reflected half is then registered onto the defect
side by the core's trimmed rigid ICP (:func:`medface.anatomy.registration.icp`: closest points
both ways, pairs whose normals disagree dropped, the worst 15 % trimmed, so the part of the
defect side that the healthy side has no counterpart for does not pull the mirror).
"""

from __future__ import annotations

import numpy as np

from medface.anatomy.cephalometry import SymmetryPlane, midsagittal_plane, reflection_matrix
from medface.anatomy.registration import PointCloud, icp
from medface.data import SurfaceMesh
from medface.data.mesh import outward_normals
from medface.errors import InputError, ParameterError

from .cutting import check_closed, to_manifold
from .transforms import transform_points


def _sample(points: np.ndarray, n: int) -> np.ndarray:
    step = max(1, len(points) // n)
    return points[::step]


def _cloud(points: np.ndarray, normals: np.ndarray, n: int) -> PointCloud:
    return PointCloud(_sample(points, n), _sample(normals, n))


def _rigid_icp(moving: PointCloud, fixed: PointCloud, iterations: int) -> tuple[np.ndarray, float]:
    """(4x4 rigid matrix taking ``moving`` onto ``fixed``, RMS distance in mm from the moved
    points to their closest fixed points) by the core's trimmed ICP
    (:func:`medface.anatomy.registration.icp`, rigid)."""
    matrix = icp(moving, fixed, iterations=iterations, scale=False).transform.matrix
    distances, _ = fixed.tree.query(transform_points(matrix, moving.points))
    return matrix, float(np.sqrt(np.mean(distances ** 2)))


def symmetry_plane_from_surface(mesh: SurfaceMesh, initial: SymmetryPlane | None = None,
                                samples: int = 3000, iterations: int = 30) -> SymmetryPlane:
    """The mid-sagittal plane of a surface from its own symmetry.

    The surface is mirrored across an initial plane (default: the x = const LPS plane through
    the vertex centroid), the mirror image registered back onto the surface by rigid ICP; each
    sample point p and its image S(p) then straddle the symmetry plane, whose normal is the
    principal direction of S(p) - p and whose centre is the mean of the midpoints.
    """
    v, normals = mesh.vertices, outward_normals(mesh)
    if initial is None:
        initial = SymmetryPlane(v.mean(axis=0), np.array([1.0, 0.0, 0.0]))
    p = _sample(v, samples)
    flip = reflection_matrix(initial.centre, initial.normal)[:3, :3]
    mirrored = PointCloud(initial.reflect(p), _sample(normals, samples) @ flip.T)
    matrix, _ = _rigid_icp(mirrored, _cloud(v, normals, 4 * samples), iterations)
    images = transform_points(matrix, mirrored.points)
    diffs = images - p
    keep = np.linalg.norm(diffs, axis=1) > 1.0  # points near the plane give no direction
    units = diffs[keep] / np.linalg.norm(diffs[keep], axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(units.T @ units)
    normal = vecs[:, -1]
    if normal @ initial.normal < 0:
        normal = -normal
    centre = (0.5 * (images + p)).mean(axis=0)
    return SymmetryPlane(centre, normal)


def healthy_half(mesh: SurfaceMesh, plane: SymmetryPlane, towards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of the part of ``mesh`` on the side ``towards`` points to: a closed
    half (cut and capped) for a closed mesh, the whole triangles on that side for an open one."""
    try:
        closed = check_closed(mesh)
        half = to_manifold(closed).trim_by_plane(towards, float(towards @ plane.centre)).to_mesh64()
        return np.asarray(half.vert_properties, float)[:, :3], np.asarray(half.tri_verts, np.int64)
    except InputError:  # an open surface: keep the healthy side's triangles
        d = (mesh.vertices - plane.centre) @ towards
        keep = (d[mesh.faces] > 0).all(axis=1)
        used = np.unique(mesh.faces[keep])
        remap = -np.ones(mesh.n_vertices, np.int64)
        remap[used] = np.arange(len(used))
        return mesh.vertices[used], remap[mesh.faces[keep]]


def mirror_healthy_side(mesh: SurfaceMesh, plane: SymmetryPlane, healthy_side: str = "left",
                        register: bool = True, name: str = "mirror", iterations: int = 40):
    """The healthy half mirrored across ``plane`` and (optionally) registered onto the defect side.

    Returns ``(mesh, matrix, rms_mm)``: the mirrored half (closed when the input is closed),
    the 4x4 transform applied to the original healthy half (reflection, then the rigid ICP
    correction) and the ICP's RMS distance. Outward winding is kept (faces reversed).
    """
    if healthy_side not in ("left", "right"):
        raise ParameterError(f"healthy_side must be 'left' or 'right', got {healthy_side!r}", parameter="healthy_side")
    towards = plane.normal if healthy_side == "left" else -plane.normal
    hv, hf = healthy_half(mesh, plane, towards)
    if len(hf) == 0:
        raise InputError(f"no part of the mesh lies on the {healthy_side} side of the mid-sagittal plane",
                         hint="check the mirror plane (or the landmarks it is fitted to) against the mesh")
    reflect = reflection_matrix(plane.centre, plane.normal)
    correction, rms = np.eye(4), 0.0
    if register:
        defect = (mesh.vertices - plane.centre) @ towards < 0
        if defect.sum() < 10:
            raise InputError("the defect side has too few vertices to register the mirror onto",
                             hint="plan the mirror with register 'none', or check the mirror plane")
        half_normals = outward_normals(SurfaceMesh(hv, hf)) @ reflect[:3, :3].T  # normals reflect too
        mirrored = _cloud(transform_points(reflect, hv), half_normals, 4000)
        target = _cloud(mesh.vertices[defect], outward_normals(mesh)[defect], 16000)
        correction, rms = _rigid_icp(mirrored, target, iterations)
    matrix = correction @ reflect
    out = SurfaceMesh(transform_points(matrix, hv), hf[:, ::-1], name=name)
    return out, matrix, rms


def mirror_plane(mirror: dict, bone: SurfaceMesh, points: dict[str, np.ndarray]) -> SymmetryPlane:
    """The plan's mirror plane: given, fitted to the surface's symmetry, or to bilateral landmarks."""
    plane = mirror.get("plane")
    if plane is not None:
        return SymmetryPlane(np.asarray(plane["centre"], float),
                             np.asarray(plane["normal"], float) / np.linalg.norm(plane["normal"]))
    if mirror.get("plane_method", "landmarks") == "surface":
        initial = midsagittal_plane(points) if len(points) >= 4 else None
        return symmetry_plane_from_surface(bone, initial)
    return midsagittal_plane(points)
