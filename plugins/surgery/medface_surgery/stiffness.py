"""Stiffness assembly of the soft-tissue FEM on one block pattern: P1 or mean-dilatation (B-bar)
tetrahedra, a graded mesh's hanging nodes eliminated on the way.

Every contribution is a 3x3 block at a node pair of one *group* of tetrahedra: the deviatoric
(or, for plain P1, the whole) element matrix of a tetrahedron couples its four nodes, and the
mean-dilatation term ``kappa / V_c b_c b_c^T`` of a group ``c`` (its grid cube; a tetrahedron
is its own group for plain P1) couples every node of the group. So the matrix's pattern is
the union over groups of all node pairs within the group, and both terms are summed straight
into one array of blocks (9 ``bincount`` passes) laid out once as a block-sparse matrix: no
sparse products, no sum of two sparse matrices.

Hanging nodes (``u_h = sum_m w_hm u_m``, a graded mesh's fine nodes on a coarse face) are
replaced by their masters before any pair is formed: a tetrahedron's node ``a`` stands for the
entries ``(m, w)`` of row ``a`` of the node-level constraint matrix ``P`` (``(a, 1)`` for a
plain node), and a group's nodes are its tetrahedra's entries. The result is ``P^T K P``
exactly (the element matrices are bilinear in the nodal values), without forming ``K``.
"""

from __future__ import annotations

import numpy as np

from medface.data.mesh import unique_keys
from medface.errors import InputError

#: tetrahedra per chunk of the element pass (bounds the memory of its 16 blocks a tetrahedron)
TET_CHUNK = 100_000


def lame(E: float, nu: float) -> tuple[float, float]:
    """Lame's lambda and mu of Young's modulus ``E`` and Poisson ratio ``nu``."""
    return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


def shape_gradients(nodes: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (m, 4, 3) of the four P1 shape functions and volumes (m,) of the tetrahedra."""
    x = nodes[tets]
    d = x[:, 1:] - x[:, :1]  # rows are edges 0->1, 0->2, 0->3
    det = np.linalg.det(d)
    if np.any(np.abs(det) < 1e-12 * np.abs(d).max() ** 3):
        raise InputError("the tetrahedral mesh has degenerate (flat) elements")
    inv = np.linalg.inv(d)  # columns of inv(d) are the gradients of the local coordinates
    g123 = np.transpose(inv, (0, 2, 1))
    g = np.concatenate([-g123.sum(axis=1, keepdims=True), g123], axis=1)
    return g, np.abs(det) / 6.0


def assemble_stiffness(nodes: np.ndarray, tets: np.ndarray, E: float, nu: float, *, cells: np.ndarray | None = None,
                       tie=None):
    """Global stiffness (3n x 3n CSR, dof ``3*node + axis``) of linear elasticity on P1 tets.

    With ``cells`` (one group number per tetrahedron) the volumetric part uses the mean
    dilatation of each group (B-bar; see :mod:`.fem`): the deviatoric energy ``mu e_dev : e_dev``
    per tetrahedron plus ``kappa/2 V_c theta_c^2`` per group; without it, the plain P1 element.
    With ``tie`` (3n x 3n, ``u = P u``: a graded mesh's hanging nodes) the result is ``P^T K P``
    (the module notes say how)."""
    from scipy.sparse import bsr_matrix

    lam, mu = lame(E, nu)
    n, m = len(nodes), len(tets)
    g, vol = shape_gradients(nodes, tets)
    groups = np.arange(m) if cells is None else np.asarray(cells, np.int64)
    members = _group_members(np.repeat(groups, 4), tets.reshape(-1).astype(np.int64), n)
    pattern, pair_of, _ = unique_keys(members["node"][members["first"]] * n + members["node"][members["second"]])
    blocks = np.zeros((len(pattern), 3, 3))
    corner = members["member_of"].reshape(m, 4)
    where = pair_of[(members["start"][corner][:, :, None] + members["rank"][corner][:, None, :]).reshape(m, 16)]
    gv = g * vol[:, None, None]
    _add_element_blocks(blocks, where, g, gv, lam if cells is None else -2.0 * mu / 3.0, mu)
    if cells is not None:
        _add_dilatation_blocks(blocks, pair_of, members, corner, gv, np.bincount(groups, weights=vol),
                               lam + 2.0 * mu / 3.0)
    if tie is not None:
        pattern, blocks = _eliminated(pattern, blocks, tie[0::3][:, 0::3].tocsr(), n)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(pattern // n, minlength=n))])
    total = bsr_matrix((blocks, pattern % n, indptr), shape=(3 * n, 3 * n)).tocsr()
    total.eliminate_zeros()  # exact zeros of axis-aligned pieces inside the 3x3 blocks
    total.sort_indices()
    return total


def _group_members(group_of_corner: np.ndarray, node_of_corner: np.ndarray, n: int) -> dict:
    """The distinct nodes of every group (sorted by group), each corner's member, and all ordered
    member pairs within each group (member-major: pair ``start[u] + rank[v]`` is ``(u, v)``)."""
    members, member_of, _ = unique_keys(group_of_corner * n + node_of_corner)
    group = members // n
    size = np.bincount(group)[group]  # per member: its group's size
    rank = np.arange(len(members)) - np.searchsorted(group, group)  # place within its group
    start = np.cumsum(size) - size  # where each member's pairs start
    first = np.repeat(np.arange(len(members)), size)
    second = first - rank[first] + (np.arange(len(first)) - start[first])
    return {"node": members % n, "group": group, "member_of": member_of.reshape(-1), "rank": rank,
            "first": first, "second": second, "start": start}


def _add_element_blocks(blocks: np.ndarray, where: np.ndarray, g: np.ndarray, gv: np.ndarray, lam: float,
                        mu: float) -> None:
    """Add the 3x3 blocks ``V (lam g_a g_b^T + mu g_b g_a^T + mu (g_a . g_b) I)`` of tetrahedra
    (shape gradients ``g``, ``gv = V g``) at their node pairs ``where`` (m, 16; a-major)."""
    for s in range(0, len(g), TET_CHUNK):
        gs, gvs = g[s:s + TET_CHUNK], gv[s:s + TET_CHUNK]
        at = where[s:s + TET_CHUNK].ravel()
        mu_gg = mu * np.einsum("eai,ebi->eab", gvs, gs)
        for i in range(3):
            for j in range(3):
                k = lam * gvs[:, :, None, i] * gs[:, None, :, j] + mu * gvs[:, :, None, j] * gs[:, None, :, i]
                if i == j:
                    k += mu_gg
                blocks[:, i, j] += np.bincount(at, weights=k.ravel(), minlength=len(blocks))


def _add_dilatation_blocks(blocks, pair_of, members, corner, gv, group_volume, kappa: float) -> None:
    """Add ``kappa / V_c b_u b_v^T`` of every member pair (u, v) of every group c, with
    ``b = sum_{e in c} V_e grad N`` gathered per member (``corner``: each tetrahedron's members)."""
    rows = corner.reshape(-1)
    b = np.stack([np.bincount(rows, weights=gv[:, :, d].reshape(-1), minlength=len(members["node"]))
                  for d in range(3)], axis=1)
    first, second = members["first"], members["second"]
    scale = kappa / group_volume[members["group"][first]]
    for i in range(3):
        bi = b[first, i] * scale
        for j in range(3):
            blocks[:, i, j] += np.bincount(pair_of, weights=bi * b[second, j], minlength=len(blocks))


def _eliminated(pattern: np.ndarray, blocks: np.ndarray, tie, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``P^T K P`` on the block pattern (keys ``a * n + b``): every block at a pair with a hanging
    node is handed to its masters' pairs, weighted (``tie``: the node-level P, n x n CSR); the
    pairs of plain nodes stay as they are."""
    rows, cols = pattern // n, pattern % n
    count = np.diff(tie.indptr)
    plain = (count == 1) & (tie.indices[tie.indptr[:-1]] == np.arange(n)) & (tie.data[tie.indptr[:-1]] == 1.0)
    moved = np.flatnonzero(~(plain[rows] & plain[cols]))
    spread = count[rows[moved]] * count[cols[moved]]
    pair = np.repeat(moved, spread)
    j = np.arange(len(pair)) - np.repeat(np.cumsum(spread) - spread, spread)
    across = count[cols][pair]
    ia = tie.indptr[rows[pair]] + j // across
    ib = tie.indptr[cols[pair]] + j % across
    kept = np.flatnonzero(plain[rows] & plain[cols])
    keys = np.concatenate([pattern[kept], tie.indices[ia].astype(np.int64) * n + tie.indices[ib]])
    weight = np.concatenate([np.ones(len(kept)), tie.data[ia] * tie.data[ib]])
    order = np.argsort(keys, kind="stable")  # a sorted run and a short unsorted one
    keys, weight = keys[order], weight[order]
    contribution = blocks[np.concatenate([kept, pair])[order]].reshape(-1, 9) * weight[:, None]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    out_of = np.cumsum(first) - 1
    out = np.stack([np.bincount(out_of, weights=contribution[:, q], minlength=int(out_of[-1]) + 1) for q in range(9)],
                   axis=1)
    return keys[first], out.reshape(-1, 3, 3)
