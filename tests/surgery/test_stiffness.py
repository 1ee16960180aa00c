"""The stiffness assembly on one block pattern (medface_surgery.stiffness) against the definitions
it replaces: the mean-dilatation term summed group by group as dense outer products, and the
hanging-node elimination as the sparse product P^T K P. Synthetic meshes only."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from medface.data import SurfaceMesh
from medface.data.mesh import unique_keys
from medface_surgery.stiffness import assemble_stiffness, lame, shape_gradients
from medface_surgery.tissue_mesh import build_tissue_mesh


@pytest.fixture(scope="module")
def graded():
    skin = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(3, radius=32.0), name="skin")
    bone = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(3, radius=8.0), name="bone")
    return build_tissue_mesh({"bone": bone}, skin, 4.0, grade_mm=2.0)


def _dense_dilatation(nodes, tets, cells, E, nu):
    """sum_c kappa / V_c b_c b_c^T with b_c = sum_{e in c} V_e grad N, one group at a time."""
    lam, mu = lame(E, nu)
    kappa = lam + 2.0 * mu / 3.0
    g, vol = shape_gradients(nodes, tets)
    k = np.zeros((3 * len(nodes), 3 * len(nodes)))
    for c in np.unique(cells):
        b = np.zeros(3 * len(nodes))
        for e in np.flatnonzero(cells == c):
            for a in range(4):
                b[3 * tets[e, a]:3 * tets[e, a] + 3] += vol[e] * g[e, a]
        k += kappa / vol[cells == c].sum() * np.outer(b, b)
    return k


def _dense_elements(nodes, tets, lam, mu):
    """sum_e V (lam g_a g_b^T + mu g_b g_a^T + mu (g_a . g_b) I) at the blocks (a, b)."""
    g, vol = shape_gradients(nodes, tets)
    k = np.zeros((3 * len(nodes), 3 * len(nodes)))
    for e, t in enumerate(tets):
        for i, a in enumerate(t):
            for j, b in enumerate(t):
                ga, gb = g[e, i], g[e, j]
                block = lam * np.outer(ga, gb) + mu * np.outer(gb, ga) + mu * (ga @ gb) * np.eye(3)
                k[3 * a:3 * a + 3, 3 * b:3 * b + 3] += vol[e] * block
    return k


def test_both_elements_match_their_definitions():
    """P1: the element matrices summed; B-bar: their deviatoric part (lambda = -2 mu / 3) plus
    the mean dilatation of each group."""
    rng = np.random.default_rng(3)
    nodes = rng.uniform(0, 10, (14, 3))
    tets = np.array([[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [5, 6, 7, 8], [6, 7, 8, 9], [9, 10, 11, 12],
                     [10, 11, 12, 13], [0, 4, 8, 12]])
    cells = np.array([0, 0, 0, 1, 1, 2, 2, 0])
    E, nu = 3000.0, 0.45
    lam, mu = lame(E, nu)
    p1 = _dense_elements(nodes, tets, lam, mu)
    bbar = _dense_elements(nodes, tets, -2.0 * mu / 3.0, mu) + _dense_dilatation(nodes, tets, cells, E, nu)
    for cells_arg, expected in ((None, p1), (cells, bbar)):
        got = assemble_stiffness(nodes, tets, E, nu, cells=cells_arg).toarray()
        assert np.abs(got - expected).max() <= 1e-9 * np.abs(expected).max()
    assert np.abs(p1 - bbar).max() > 1e-3 * np.abs(p1).max()  # the two elements differ here


def test_hanging_nodes_are_eliminated_as_p_transpose_k_p(graded):
    tie = graded.constraint_matrix()
    assert tie is not None
    for cells in (graded.cells, None):
        plain = assemble_stiffness(graded.nodes, graded.tets, 3000.0, 0.45, cells=cells)
        tied = assemble_stiffness(graded.nodes, graded.tets, 3000.0, 0.45, cells=cells, tie=tie)
        expected = (tie.T @ plain @ tie).tocsr()
        assert abs(tied - expected).max() <= 1e-12 * abs(expected).max()
        hanging = np.repeat(np.diff(tie.indptr)[0::3] > 1, 3)
        assert abs(tied[hanging]).max() == 0.0  # nothing left at the hanging nodes' own dofs


def test_unique_keys_matches_numpy_unique():
    rng = np.random.default_rng(0)
    keys = np.concatenate([np.sort(rng.integers(0, 500, 2000)), rng.integers(0, 500, 300)])
    values, inverse, first = unique_keys(keys)
    v, i, inv = np.unique(keys, return_index=True, return_inverse=True)
    assert np.array_equal(values, v) and np.array_equal(inverse, inv.reshape(-1)) and np.array_equal(first, i)
