"""A fitted tissue mesh graded away from the moving bone: spacing ``h`` near it, ``2 h`` beyond.

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
                      moving_points: np.ndarray, fine_mm: float, *, snap: float = 0.25, box=None) -> dict:
    """The fitted mesh of :func:`.fitted_mesh.fitted_tetrahedra` with cubes of ``2 h`` farther
    than ``fine_mm`` from ``moving_points`` (the moving bone's vertices), plus ``levels`` (the
    two lattices, for locating points) and ``constraints`` (hanging node ids, their four master
    nodes, the weights and the masters' tetrahedron)."""
    origin, dims = lattice_frame(skin, h, box)
    dims = dims + (dims - 1) % 2  # an even number of fine cubes along every axis
    # one signed distance for both levels
    masks, distances = masks_and_distances(bone_segments, skin, origin, h, dims, sampling_box(origin, dims, h, 2.0 * h))
    coarse, tissue_corner = coarse_cubes(masks, origin, h, moving_points, fine_mm)
    if not (coarse & tissue_corner).any() or (coarse | ~tissue_corner).all():  # one level only: uniform
        from .fitted_mesh import fitted_tetrahedra

        return fitted_tetrahedra(bone_segments, skin, h, snap=snap, box=box)
    # nodes on the interface do not move when snapping, so that both sides keep the same faces there
    coarse_list, fine_list = np.argwhere(coarse), np.argwhere(~coarse)
    big = fit_lattice(_lattice([m[::2, ::2, ::2] for m in masks], origin, 2.0 * h, coarse), distances, snap=snap,
                      frozen=lambda ijk: on_cubes(ijk.astype(float), fine_list, coarse.shape))
    fine_keep = ~np.repeat(np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1), 2, axis=2)
    small = fit_lattice(_lattice(masks, origin, h, fine_keep), distances, snap=snap,
                        frozen=lambda ijk: on_cubes(ijk / 2.0, coarse_list, coarse.shape))
    return _merged(big, small, _hanging_nodes(big, small, h))


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


def _hanging_nodes(big: dict, small: dict, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fine node ids, coarse host tetrahedra, weights (k, 4)) of the free fine nodes on the
    coarse cubes' faces: the coarse tetrahedron nearest each and its barycentric coordinates."""
    from .tissue_mesh import _embed_in_cells

    cube_dims = np.asarray(big["dims"]) - 1
    on = on_cubes(small["lattice_pos"] / 2.0, big["cubes"], cube_dims) & (small["labels"] == FREE)
    idx = np.flatnonzero(on)
    if len(idx) == 0 or len(big["tets"]) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.int64), np.zeros((0, 4))
    host, bary, gap = _embed_in_cells(big["nodes"], big["tets"], big["cells"], big["cubes"], big["origin"],
                                      big["h"], cube_dims, small["nodes"][idx])
    near = gap <= HANG_GAP * h
    return idx[near], host[near], bary[near]


def _merged(big: dict, small: dict, hanging) -> dict:
    """One mesh of both levels (coarse nodes first); the fine ids of ``hanging`` shifted."""
    nc, tc = len(big["nodes"]), len(big["tets"])
    ids, host, weights = hanging
    levels = [big["levels"][0], {**small["levels"][0], "tets": (tc, tc + len(small["tets"])),
                                 "cell_offset": len(big["cubes"])}]
    stats = {"grid_dims": small["stats"]["grid_dims"], "origin": small["stats"]["origin"],
             "coarse_nodes": nc, "fine_nodes": len(small["nodes"]), "hanging_nodes": len(ids),
             **{k: big["stats"][k] + small["stats"][k] for k in ("snapped_nodes", "cut_points", "dropped_flat_pieces")},
             "min_volume_ratio": min(big["stats"]["min_volume_ratio"] * 8.0, small["stats"]["min_volume_ratio"])}
    return {"nodes": np.concatenate([big["nodes"], small["nodes"]]),
            "tets": np.concatenate([big["tets"], small["tets"] + nc]),
            "labels": np.concatenate([big["labels"], small["labels"]]),
            "cells": np.concatenate([big["cells"], small["cells"] + len(big["cubes"])]),
            "levels": levels, "stats": stats,
            "constraints": {"nodes": ids + nc, "masters": big["tets"][host], "weights": weights, "hosts": host}}
