"""A fitted tissue mesh of nested lattices: spacing ``h`` near the moving bone, ``2 h`` beyond, finer in gaps.

Most of the tissue a plan moves lies near the moving bone; tissue farther away moves little and
smoothly, yet a uniform mesh spends most of its unknowns there. Here the lattice of spacing
``2 h`` (every other node of the fine lattice) covers the *far* cubes, those whose every point
lies more than ``fine_mm`` from the moving bone, and the lattice of spacing ``h`` the rest. Both
are cut along the skin and bone surfaces by :func:`.fitted_mesh.fit_lattice`.

The two levels meet on faces of the coarse cubes. Fine nodes on those faces that the coarse
side lacks ("hanging" nodes: edge midpoints, face centres, cut points of fine edges lying in the
face) are tied to the coarse side: their displacement is the coarse tetrahedron's linear
interpolant there (barycentric weights; the usual hanging-node constraint of adaptive finite
elements, e.g. Bangerth, Hartmann & Kanschat, ACM TOMS 33, 2007). Away from the surfaces this
is exactly conforming: a coarse cube's face is split into two triangles along the same diagonal
direction as the fine faces, so every fine face triangle lies inside one coarse triangle, where
the coarse field is linear (nodes on the interface do not move when snapping, on either side,
so that both keep the same faces: the surface moves onto such a node instead). Where a surface crosses the interface, the two levels' cut surfaces
differ by the linear interpolation error of each, and a hanging node there takes the nearest
point of the coarse tissue (a gap of at most half a fine spacing; farther ones stay free): a
small, local non-conformity far from the moving bone.

With ``gap_pairs`` a third, finer level replaces the cubes of ``h`` that hold a gap between two
bone pieces narrower than ``h`` (:mod:`.gap_refinement`); it is tied to the ``h`` level the same
way, and takes that level's level set on their common faces so that both cut them alike. The
levels are built so that no cube of ``2 h`` touches a finer one than ``h`` (no chained ties).

A coarse cube stays fine when the coarse lattice would lose tissue there: when tissue shows at
one of its 27 fine nodes but at none of its eight corners (a tissue layer thinner than ``2 h``,
such as the scalp, that the coarse cut cells could not see).
"""

from __future__ import annotations

import numpy as np

from medface.data import SurfaceMesh

from .fitted_mesh import _lattice, corner_any, fit_lattice, lattice_frame, masks_and_distances, sampling_box, tissue_of
from .tissue_mesh import FREE

#: hanging nodes farther than this (in fine spacings) from the coarse tissue stay free
HANG_GAP = 0.5


def graded_tetrahedra(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, h: float,
                      moving_points: np.ndarray, fine_mm: float | None, *, snap: float = 0.25, box=None,
                      gap_pairs=()) -> dict:
    """The fitted mesh of :func:`.fitted_mesh.fitted_tetrahedra` with cubes of ``2 h`` farther
    than ``fine_mm`` from ``moving_points`` (the moving bone's vertices; ``fine_mm`` None: no
    coarse level) and, with ``gap_pairs`` (bone index pairs), cubes of ``h / r`` where the two
    bones of a pair are closer than ``h`` (:mod:`.gap_refinement`); plus ``levels`` (the
    lattices, for locating points) and ``constraints`` (hanging node ids, their four master
    nodes, the weights and the masters' tetrahedron)."""
    from .gap_refinement import gap_cubes, refinement_factor

    origin, dims = lattice_frame(skin, h, box)
    dims = dims + (dims - 1) % 2  # an even number of fine cubes along every axis
    # one signed distance for every level
    masks, distances = masks_and_distances(bone_segments, skin, origin, h, dims, sampling_box(origin, dims, h, 2.0 * h))
    coarse = _coarse_or_none(masks, origin, h, moving_points, fine_mm)
    under_coarse = _per_fine(coarse)
    r = refinement_factor(h)
    refined = gap_cubes(distances, gap_pairs, origin, h, dims - 1, under_coarse) if gap_pairs and r > 1 else None
    if refined is not None and not refined.any():
        refined = None
    if not coarse.any() and refined is None:  # one level only: uniform
        from .fitted_mesh import fitted_tetrahedra

        return fitted_tetrahedra(bone_segments, skin, h, snap=snap, box=box)
    return _nested(bone_segments, skin, masks, distances, (origin, h, snap), coarse, refined, r)


def _coarse_or_none(masks: list, origin, h: float, moving_points, fine_mm) -> np.ndarray:
    """The coarse cubes of :func:`coarse_cubes`, none when grading is off or would leave one level."""
    c = tuple((np.asarray(masks[0].shape) - 1) // 2)
    if fine_mm is None:
        return np.zeros(c, bool)
    coarse, tissue_corner = coarse_cubes(masks, origin, h, moving_points, fine_mm)
    if not (coarse & tissue_corner).any() or (coarse | ~tissue_corner).all():
        return np.zeros(c, bool)
    return coarse


def _per_fine(coarse: np.ndarray) -> np.ndarray:
    """A per-coarse-cube flag on each of its eight fine cubes."""
    return np.repeat(np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1), 2, axis=2)


def _nested(bone_segments, skin, masks, distances, frame, coarse: np.ndarray, refined, r: int) -> dict:
    """The levels (coarse ``2 h``, ``h``, refined ``h / r``; the first and last where they have
    cubes), cut and tied together (nodes on an interface do not move when snapping, so that both
    sides keep the same faces there)."""
    origin, h, snap = frame
    coarse_list = np.argwhere(coarse)
    cube_dims = np.asarray(masks[0].shape) - 1

    def frozen_fine(ijk):
        frozen = on_cubes(ijk / 2.0, coarse_list, coarse.shape)
        if refined is not None:
            frozen |= on_cubes(ijk.astype(float), np.argwhere(refined), cube_dims)
        return frozen

    keep = ~_per_fine(coarse) if refined is None else ~_per_fine(coarse) & ~refined
    small = fit_lattice(_lattice(masks, origin, h, keep), distances, snap=snap, frozen=frozen_fine)
    levels, ties = [small], []
    if len(coarse_list):
        fine_list = np.argwhere(~coarse)
        big = fit_lattice(_lattice([m[::2, ::2, ::2] for m in masks], origin, 2.0 * h, coarse), distances, snap=snap,
                          frozen=lambda ijk: on_cubes(ijk.astype(float), fine_list, coarse.shape))
        levels.insert(0, big)
        ties.append((1, 0, _hanging_nodes(big, small, small["lattice_pos"] / 2.0, h)))
    if refined is not None:
        from .gap_refinement import refined_level

        tiny, at = refined_level(bone_segments, skin, distances, (origin, h), refined, small, r=r, snap=snap)
        levels.append(tiny)
        ties.append((len(levels) - 1, len(levels) - 2, _hanging_nodes(small, tiny, at, h / r, extrapolate=True)))
    return _merged(levels, ties, h)


def coarse_cubes(masks: list, origin, h: float, moving_points: np.ndarray,
                 fine_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Per cube of the coarse lattice (every other fine node): whether it is meshed coarse, and
    whether one of its corners lies in the tissue."""
    from scipy.spatial import cKDTree

    tissue = tissue_of(masks)
    c = (np.asarray(tissue.shape) - 1) // 2
    fine_any = _per_coarse(corner_any(tissue), c)
    skin_crossed = _per_coarse(corner_any(~masks[0]), c)  # a fine node outside the skin
    corner = corner_any(tissue[::2, ::2, ::2])
    centres = np.asarray(origin, float) + (np.indices(tuple(c)).reshape(3, -1).T + 0.5) * 2.0 * h
    if len(moving_points):
        d, _ = cKDTree(np.asarray(moving_points, float)).query(centres)
    else:
        d = np.full(len(centres), np.inf)
    far = (d > fine_mm + np.sqrt(3.0) * h).reshape(tuple(c))  # the whole cube beyond fine_mm
    return far & ~skin_crossed & (corner | ~fine_any), corner


def _per_coarse(per_fine_cube: np.ndarray, coarse_dims) -> np.ndarray:
    """Any over the eight fine cubes of every coarse cube."""
    c = coarse_dims
    return per_fine_cube.reshape(c[0], 2, c[1], 2, c[2], 2).any(axis=(1, 3, 5))


def on_cubes(points: np.ndarray, cubes: np.ndarray, cube_dims) -> np.ndarray:
    """Whether each point (lattice units) lies on the closure of one of ``cubes``."""
    occupied = np.zeros(tuple(cube_dims), bool)
    occupied[tuple(cubes.T)] = True
    lo = (np.ceil(points) - 1).astype(int)
    hi = np.floor(points).astype(int)
    hit = np.zeros(len(points), bool)
    for pick in np.ndindex(2, 2, 2):
        idx = np.where(np.array(pick, bool), hi, lo)
        ok = np.all((idx >= 0) & (idx < np.asarray(cube_dims)), axis=1)
        hit[ok] |= occupied[tuple(idx[ok].T)]
    return hit


def _hanging_nodes(master: dict, slave: dict, positions: np.ndarray, spacing: float, *,
                  extrapolate: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slave node ids, master host tetrahedra, weights (k, 4)) of the free nodes of the finer
    level ``slave`` on the cubes of the coarser level ``master`` (``positions``: the slave's
    nodes in the master's lattice units): the master tetrahedron nearest each and its
    barycentric coordinates; nodes farther than ``HANG_GAP * spacing`` from it stay free. A node
    just outside its host (where a surface crosses the interface, the two levels' cut surfaces
    differ) takes the host's nearest point, or with ``extrapolate`` the host's linear field
    continued to where the node is (weights outside [0, 1]: an affine field stays exact)."""
    from .tissue_mesh import _embed_in_cells, _LazyInverses

    cube_dims = np.asarray(master["dims"]) - 1
    on = on_cubes(positions, master["cubes"], cube_dims) & (slave["labels"] == FREE)
    idx = np.flatnonzero(on)
    if len(idx) == 0 or len(master["tets"]) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.int64), np.zeros((0, 4))
    host, bary, gap = _embed_in_cells(master["nodes"], master["tets"], master["cells"], master["cubes"],
                                      master["origin"], master["h"], cube_dims, slave["nodes"][idx])
    near = gap <= HANG_GAP * spacing
    idx, host, bary = idx[near], host[near], bary[near]
    if extrapolate and len(idx):
        x0 = master["nodes"][master["tets"][host, 0]]
        lam = np.einsum("pij,pj->pi", _LazyInverses(master["nodes"], master["tets"])(host), slave["nodes"][idx] - x0)
        bary = np.column_stack([1.0 - lam.sum(axis=1), lam])
    return idx, host, bary


def _merged(levels: list, ties: list, h: float) -> dict:
    """One mesh of all ``levels`` (coarsest first); ``ties``: (slave level, master level,
    :func:`_hanging_nodes`) in level-local ids, shifted here. A master that hangs itself would
    need chained constraints: the levels are built so that this cannot happen."""
    from medface.errors import ModelError

    node_off = np.cumsum([0] + [len(lv["nodes"]) for lv in levels])
    tet_off = np.cumsum([0] + [len(lv["tets"]) for lv in levels])
    cube_off = np.cumsum([0] + [len(lv["cubes"]) for lv in levels])
    hang, masters, weights, hosts = [], [], [], []
    for slave, master, (ids, host, w) in ties:
        hang.append(ids + node_off[slave])
        masters.append(levels[master]["tets"][host] + node_off[master])
        weights.append(w)
        hosts.append(host + tet_off[master])
    hang, masters = np.concatenate(hang), np.concatenate(masters)
    if np.isin(masters, hang).any():
        raise ModelError("tissue mesher: a hanging node's master hangs itself (internal error)")
    merged_levels = [{**lv["levels"][0], "tets": (int(tet_off[k]), int(tet_off[k + 1])), "cell_offset": int(cube_off[k])}
                     for k, lv in enumerate(levels)]
    base = next(lv for lv in levels if lv["h"] == h)
    stats = {"grid_dims": base["stats"]["grid_dims"], "origin": base["stats"]["origin"],
             "level_spacings_mm": [float(lv["h"]) for lv in levels], "level_nodes": [len(lv["nodes"]) for lv in levels],
             "hanging_nodes": len(hang),
             **{k: sum(lv["stats"][k] for lv in levels) for k in ("snapped_nodes", "cut_points", "dropped_flat_pieces")},
             "min_volume_ratio": min(lv["stats"]["min_volume_ratio"] * (lv["h"] / h) ** 3 for lv in levels)}
    return {"nodes": np.concatenate([lv["nodes"] for lv in levels]),
            "tets": np.concatenate([lv["tets"] + node_off[k] for k, lv in enumerate(levels)]),
            "labels": np.concatenate([lv["labels"] for lv in levels]),
            "cells": np.concatenate([lv["cells"] + cube_off[k] for k, lv in enumerate(levels)]),
            "levels": merged_levels, "stats": stats, "h": float(h),
            "constraints": {"nodes": hang, "masters": masters, "weights": np.concatenate(weights),
                            "hosts": np.concatenate(hosts)}}
