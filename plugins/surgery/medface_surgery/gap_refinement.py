"""Finer cubes where two bones that move apart are closer than the lattice spacing.

An osteotomy leaves a gap of the saw's kerf (1 mm by default) between the pieces, and teeth in
occlusion lie a fraction of a millimetre apart. A lattice of spacing ``h`` = 3 mm holds no node
in such a gap, so the mesher cannot see it: the two pieces meet on the bone surface, and where
the moving piece's displacement stops along that surface is set by the lattice, not by the cut
(measured on the sample head's genioplasty: soft pogonion 8-11 % off the converged movement at
h = 2-4 mm, docs/validation/surgery.md). Here the grid cubes that hold such a gap are split into
``r**3`` cubes of ``h / r`` (``r`` the smallest whole number that makes ``h / r`` at most
:data:`GAP_SPACING_MM`; a Kuhn lattice split any whole number of ways nests in the coarser
one), meshed by the same cut-cell method (:func:`.fitted_mesh.fit_lattice`)
and tied to the neighbouring cubes of ``h`` through hanging nodes, as the graded mesh ties its
two levels (:mod:`.graded_mesh`). Only the pairs of pieces asked for, of which one moves, are
looked at (`surgery simulate` asks for the saw's gaps: :func:`.simulation.saw_gaps`).
"""

from __future__ import annotations

import numpy as np

from medface.data import SurfaceMesh

#: largest spacing (mm) in a gap between bones: the default 1 mm kerf, so that a node layer lies
#: in it (an assumption; on the sample head's genioplasty, at h = 1 mm without refinement, one
#: node layer in the kerf, the landmarks agreed with h = 1.5 mm to 1.4 %: docs/validation/surgery.md)
GAP_SPACING_MM = 1.0
#: the largest split of a cube (8**3 = 512 small cubes, at h = 8 mm)
MAX_REFINEMENT = 8


def refinement_factor(h: float) -> int:
    """The smallest whole ``r`` that takes ``h`` to at most :data:`GAP_SPACING_MM` (1: no split;
    any whole split of a Kuhn lattice nests in it)."""
    return int(min(max(np.ceil(h / GAP_SPACING_MM - 1e-9), 1), MAX_REFINEMENT))


def gap_cubes(distances: list, pairs, origin, h: float, cube_dims, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per grid cube of spacing ``h``: whether it holds a surface sample of one bone of a pair
    (bone indices, ``distances[k + 1]`` the :class:`.fitted_mesh.PlaneDistance` of bone k) lying
    within ``h`` of the other bone's samples: the whole gap, its depth inside the bone too (ending
    the refinement inside a saw cut would leave a free face there, which a linear field does not
    pass). ``exclude`` cubes and their neighbours are left out (a graded mesh's coarse cubes:
    the levels must not touch)."""
    from scipy.ndimage import binary_dilation

    cube_dims = np.asarray(cube_dims, int)
    out = np.zeros(tuple(cube_dims), bool)
    for i, j in pairs:
        for a, b in ((i, j), (j, i)):
            samples = distances[a + 1].samples
            d, _ = distances[b + 1].tree.query(samples, distance_upper_bound=h)
            cube = np.floor((samples[np.isfinite(d)] - origin) / h).astype(int)
            cube = cube[np.all((cube >= 0) & (cube < cube_dims), axis=1)]
            out[tuple(cube.T)] = True
    if exclude is not None and exclude.any():
        out &= ~binary_dilation(exclude, structure=np.ones((3, 3, 3), bool))
    return out


def moving_pairs(names: list[str], moving: list[str]) -> list[tuple[int, int]]:
    """Index pairs of bone pieces that can move relative to each other (at least one moving)."""
    return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))
            if names[i] in moving or names[j] in moving]


def gap_pairs(names: list[str], moving: list[str], resolve) -> list[tuple[int, int]]:
    """The index pairs whose gaps are refined: none (``resolve`` false), every pair with a moving
    piece (True), or the named pairs (a sequence of two names each) among those."""
    from medface.errors import ParameterError

    if resolve is True:
        return moving_pairs(names, moving)
    if not resolve:
        return []
    wanted = set()
    for pair in resolve:
        a, b = pair
        if a not in names or b not in names:
            raise ParameterError(f"gap pair {pair!r} names a segment that is not among {names}",
                                 parameter="resolve_gaps")
        wanted.add(tuple(sorted((names.index(a), names.index(b)))))
    return [p for p in moving_pairs(names, moving) if p in wanted]


def refined_level(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, distances: list, frame,
                  refined: np.ndarray, outer: dict, *, r: int, snap: float) -> tuple[dict, np.ndarray]:
    """The cut-cell mesh of the ``refined`` cubes of the lattice ``frame`` (origin, spacing
    ``h``) split ``r`` ways (a lattice of ``h / r`` over
    their bounding box only), and its nodes' places in units of the ``h`` lattice. Its nodes on
    the cubes of ``outer`` (the ``h`` level, :func:`.fitted_mesh.fit_lattice`) do not move when
    snapping and take the outer level's level set, interpolated on its tetrahedra: both levels
    then cut their common faces along the same lines (a linear field passes exactly)."""
    from .fitted_mesh import _lattice, fit_lattice, inside_masks
    from .graded_mesh import on_cubes

    origin, h = frame
    at = np.argwhere(refined)
    lo, hi = at.min(axis=0), at.max(axis=0) + 1
    sub_origin = np.asarray(origin, float) + lo * h
    masks = inside_masks(bone_segments, skin, sub_origin, h / r, (hi - lo) * r + 1)
    keep = refined[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    for axis in range(3):
        keep = np.repeat(keep, r, axis=axis)
    cube_dims = np.asarray(refined.shape)
    def on_outer(ijk):
        return on_cubes(lo + ijk / r, outer["cubes"], cube_dims)

    def outer_level_set(ijk):
        at = np.flatnonzero(on_outer(ijk))
        phi, which = kuhn_interpolation(outer, lo + ijk[at] / r, cube_dims + 1)
        return at, phi, which

    level = fit_lattice(_lattice(masks, sub_origin, h / r, keep), distances, snap=snap, frozen=on_outer,
                        level_set=outer_level_set)
    return level, lo + level["lattice_pos"] / r


def kuhn_interpolation(level: dict, points: np.ndarray, node_dims) -> tuple[np.ndarray, np.ndarray]:
    """A lattice level's level set (``grid_phi``) at ``points`` (lattice units), linear on the
    Kuhn tetrahedron holding each (the one walking from the cube's low corner along the axes in
    the order of decreasing fractional coordinate), and the surface (``grid_which``) of the
    tetrahedron's corner with the largest level set there."""
    dims = tuple(int(d) for d in node_dims)
    phi = np.zeros(dims)
    which = np.zeros(dims, np.int64)
    at = tuple(level["grid_ijk"].T)
    phi[at], which[at] = level["grid_phi"], level["grid_which"]
    base = np.floor(points + 1e-9).astype(int)
    frac = np.clip(points - base, 0.0, 1.0)
    base = np.minimum(base, np.asarray(dims) - 1)
    order = np.argsort(-frac, axis=1, kind="stable")
    f = np.take_along_axis(frac, order, axis=1)
    weights = np.column_stack([1.0 - f[:, 0], f[:, 0] - f[:, 1], f[:, 1] - f[:, 2], f[:, 2]])
    corner = base.copy()
    corners = [corner.copy()]
    for k in range(3):
        corner[np.arange(len(corner)), order[:, k]] += 1
        corners.append(np.minimum(corner, np.asarray(dims) - 1))
    values = np.stack([phi[tuple(c.T)] for c in corners], axis=1)
    surfaces = np.stack([which[tuple(c.T)] for c in corners], axis=1)
    top = np.argmax(np.where(weights > 1e-12, values, -np.inf), axis=1)
    return (weights * values).sum(axis=1), surfaces[np.arange(len(points)), top]
