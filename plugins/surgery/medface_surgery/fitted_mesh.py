"""A tetrahedral mesh of the soft tissue fitted to the skin and bone surfaces (cut cells).

Method: a regular grid of spacing ``h`` mm over the skin, each cube split into the six Kuhn
(Freudenthal) tetrahedra of :mod:`.tissue_mesh` (conforming), is cut along the tissue's
boundary, the zero set of a signed distance ``phi = max(phi_skin, -phi_bone_1, ...)`` (negative
in the tissue: inside the skin and outside every bone). This is the lattice cutting of
isosurface stuffing (Labelle & Shewchuk, "Isosurface stuffing: fast tetrahedral meshes with good
dihedral angles", ACM TOG 26(3), 2007), on the Kuhn lattice and without its quality guarantee:

1. *Signed distance* at the grid nodes: the sign from VTK scan conversion of each closed
   surface (exact for watertight meshes), the magnitude, on nodes of edges that cross a surface,
   from the nearest of dense surface samples, measured along that sample's face normal (the
   distance to the tangent plane: second-order accurate on smooth surfaces).
2. *Snapping*: a node whose nearest cut point along one of its edges is closer than
   ``snap * h`` moves onto that cut point (Labelle & Shewchuk's warping), so that no tetrahedron
   is cut very close to a vertex (no slivers from near-vertex cuts).
3. *Cutting*: on every edge whose ends have strictly opposite signs, the cut point is placed by
   linear interpolation of ``phi``; the tissue part of each tetrahedron (a tetrahedron, a
   pyramid or a triangular prism) is split into tetrahedra, the quadrilateral faces along the
   diagonal from their lowest-numbered vertex (Dompierre, Labbé, Vallet & Camarero, "How to
   subdivide pyramids, prisms and hexahedra into tetrahedra", 8th International Meshing
   Roundtable, 1999), which neighbouring pieces then share: the mesh stays conforming.

The boundary is the piecewise-linear interpolant of the surfaces (no stair steps): its distance
to the true surface is of order ``h^2`` times the curvature. Nodes on a bone surface (cut points
and snapped nodes there) are labelled with that bone and follow it; nodes on the skin are free.
Every tetrahedron remembers the grid cube it came from (``cells``), the macro element of the
mean-dilatation (B-bar) formulation in :mod:`.fem`.
"""

from __future__ import annotations

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import ModelError

from .tissue_mesh import _CORNERS, _KUHN, FREE, inside_grid

SKIN = 0  # surface id of the skin in the cut labels; bone k has id k + 1


def face_samples(mesh: SurfaceMesh, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on every face (centroid, plus a barycentric grid of step at most ``spacing`` on
    faces with longer edges) and the unit normal of the face each lies on."""
    v, f = mesh.vertices, mesh.faces
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    longest = np.sqrt(np.max(np.sum((tri - np.roll(tri, 1, axis=1)) ** 2, axis=2), axis=1))
    steps = np.maximum(np.ceil(longest / spacing), 1).astype(int)
    points, normals = [tri.mean(axis=1)], [normal]
    for n in np.unique(steps[steps > 1]):
        sel = steps == n
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        w = np.stack([i[keep], j[keep]], axis=1) / n
        w = np.column_stack([1 - w.sum(axis=1), w])
        q = len(w)
        points.append(np.einsum("qk,tkd->tqd", w, tri[sel]).reshape(-1, 3))
        normals.append(np.repeat(normal[sel], q, axis=0))
    return np.concatenate(points), np.concatenate(normals)


class PlaneDistance:
    """Unsigned distance (mm) from points to a surface: to the tangent plane of the nearest
    surface sample (``spacing`` mm apart; exact on flat faces, second-order on curved ones),
    never more than the distance to the sample itself. Built once, asked many times. With
    ``box`` ((2, 3) mm) only the faces that reach into it are sampled: exact for points whose
    nearest surface point lies in the box."""

    def __init__(self, mesh: SurfaceMesh, spacing: float, box=None):
        from scipy.spatial import cKDTree

        if box is not None:
            tri = mesh.vertices[mesh.faces]
            inside = np.all((tri.max(axis=1) >= box[0]) & (tri.min(axis=1) <= box[1]), axis=1)
            mesh = SurfaceMesh(mesh.vertices, mesh.faces[inside]) if inside.any() else mesh
        self.samples, self.normals = face_samples(mesh, spacing)
        self.tree = cKDTree(self.samples, balanced_tree=False, compact_nodes=False)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        if len(points) == 0:
            return np.zeros(0)
        d, i = self.tree.query(points)
        along = np.abs(np.einsum("ij,ij->i", points - self.samples[i], self.normals[i]))
        return np.minimum(along, d)



def _edge_table(tets: np.ndarray) -> np.ndarray:
    """Unique edges (e, 2) of the tetrahedra, low id first."""
    pairs = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    e = np.sort(tets[:, pairs], axis=2).reshape(-1, 2)
    n = int(tets.max()) + 1
    uniq = np.unique(e[:, 0].astype(np.int64) * n + e[:, 1])
    return np.stack([uniq // n, uniq % n], axis=1)


def signed_distance(grid_nodes: np.ndarray, inside: np.ndarray, distance, band: np.ndarray,
                    far: float) -> np.ndarray:
    """phi (negative inside) at the nodes: exact sign, magnitude (``distance(points)``, a
    :class:`PlaneDistance`) measured on ``band`` nodes only (``far`` elsewhere)."""
    mag = np.full(len(grid_nodes), far)
    idx = np.flatnonzero(band)
    mag[idx] = np.maximum(distance(grid_nodes[idx]), 1e-9 * far)
    return np.where(inside, -mag, mag)


# the splits of the cut pieces into tetrahedra --------------------------------------------------
# a prism (0 1 2 | 3 4 5, lateral edges 0-3, 1-4, 2-5) rotated so that vertex 0 has the lowest id
_PRISM_ROT = np.array([[0, 1, 2, 3, 4, 5], [1, 2, 0, 4, 5, 3], [2, 0, 1, 5, 3, 4],
                       [3, 5, 4, 0, 2, 1], [4, 3, 5, 1, 0, 2], [5, 4, 3, 2, 1, 0]])


def split_prisms(p: np.ndarray) -> np.ndarray:
    """(k, 6) prisms -> (3k, 4) tetrahedra, every quadrilateral split from its lowest vertex id."""
    if len(p) == 0:
        return np.zeros((0, 4), np.int64)
    q = np.take_along_axis(p, _PRISM_ROT[np.argmin(p, axis=1)], axis=1)
    first = np.minimum(q[:, 1], q[:, 5]) < np.minimum(q[:, 2], q[:, 4])
    a = np.stack([q[:, [0, 1, 2, 5]], q[:, [0, 1, 5, 4]], q[:, [0, 4, 5, 3]]], axis=1)
    b = np.stack([q[:, [0, 1, 2, 4]], q[:, [0, 4, 2, 5]], q[:, [0, 4, 5, 3]]], axis=1)
    return np.where(first[:, None, None], a, b).reshape(-1, 4)


def split_pyramids(base: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """(k, 4) cyclic quadrilateral bases and (k,) apexes -> (2k, 4) tetrahedra, the base split
    along the diagonal from its lowest vertex id."""
    if len(base) == 0:
        return np.zeros((0, 4), np.int64)
    low = np.argmin(base, axis=1)
    d02 = (low == 0) | (low == 2)
    a = np.stack([np.column_stack([base[:, 0], base[:, 1], base[:, 2], apex]),
                  np.column_stack([base[:, 0], base[:, 2], base[:, 3], apex])], axis=1)
    b = np.stack([np.column_stack([base[:, 0], base[:, 1], base[:, 3], apex]),
                  np.column_stack([base[:, 1], base[:, 2], base[:, 3], apex])], axis=1)
    return np.where(d02[:, None, None], a, b).reshape(-1, 4)


def cut_tetrahedra(tets: np.ndarray, sign: np.ndarray, cut_id) -> tuple[np.ndarray, np.ndarray]:
    """The tissue part (``sign < 0``) of each tetrahedron, as tetrahedra, and the parent index
    of each. ``sign`` per node in {-1, 0, +1}; ``cut_id(a, b)`` the node ids of the cut points on
    edges (a, b) (arrays)."""
    s = sign[tets]
    n_in, n_out = (s < 0).sum(axis=1), (s > 0).sum(axis=1)
    out_tets, parents = [], []

    def emit(t, parent):
        out_tets.append(t)
        parents.append(parent)

    whole = (n_in >= 1) & (n_out == 0)
    emit(tets[whole], np.flatnonzero(whole))
    # order each tet's vertices: inside first, then zero, then outside (stable)
    order = np.argsort(s, axis=1, kind="stable")
    v = np.take_along_axis(tets, order, axis=1)
    n_zero = 4 - n_in - n_out
    for ni, nz, no in [(1, 0, 3), (1, 1, 2), (1, 2, 1), (2, 0, 2), (2, 1, 1), (3, 0, 1)]:
        sel = np.flatnonzero((n_in == ni) & (n_zero == nz) & (n_out == no))
        if len(sel) == 0:
            continue
        w = v[sel]
        ins, zs, outs = w[:, :ni], w[:, ni:ni + nz], w[:, ni + nz:]
        if ni == 1:  # a tetrahedron: the inside vertex, the zero vertices and the cut points
            cuts = np.column_stack([cut_id(ins[:, 0], outs[:, j]) for j in range(no)])
            emit(np.column_stack([ins, zs, cuts]), sel)
        elif (ni, no) == (2, 2):
            c = [[cut_id(ins[:, i], outs[:, j]) for j in range(2)] for i in range(2)]
            prism = np.column_stack([ins[:, 0], c[0][0], c[0][1], ins[:, 1], c[1][0], c[1][1]])
            emit(split_prisms(prism), np.repeat(sel, 3))
        elif (ni, nz, no) == (2, 1, 1):
            c0, c1 = cut_id(ins[:, 0], outs[:, 0]), cut_id(ins[:, 1], outs[:, 0])
            base = np.column_stack([ins[:, 0], ins[:, 1], c1, c0])
            emit(split_pyramids(base, zs[:, 0]), np.repeat(sel, 2))
        else:  # (3, 0, 1): the tetrahedron less its outside corner
            c = [cut_id(ins[:, i], outs[:, 0]) for i in range(3)]
            prism = np.column_stack([ins[:, 0], ins[:, 1], ins[:, 2], c[0], c[1], c[2]])
            emit(split_prisms(prism), np.repeat(sel, 3))
    return np.concatenate(out_tets).astype(np.int64), np.concatenate(parents).astype(np.int64)


def lattice_frame(skin: SurfaceMesh, h: float, box=None) -> tuple[np.ndarray, np.ndarray]:
    """(origin, node dims) of the Kuhn lattice over the skin (or the part of it in ``box``, (2, 3)
    LPS mm; the lattice stays aligned with the whole skin's, so a box changes no tetrahedron
    inside it)."""
    b = skin.bounds()
    origin = b[0] - h
    dims = np.ceil((b[1] - b[0]) / h).astype(int) + 3
    if box is not None:
        lo = np.clip(np.floor((np.asarray(box[0], float) - origin) / h).astype(int), 0, dims - 1)
        hi = np.clip(np.ceil((np.asarray(box[1], float) - origin) / h).astype(int), 0, dims - 1)
        origin, dims = origin + lo * h, hi - lo + 1
    return origin, dims


def inside_masks(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, origin, h: float, dims) -> list:
    """Inside flags at the lattice nodes: the skin's, then every bone segment's."""
    return [inside_grid(skin, origin, h, dims)] + [inside_grid(seg, origin, h, dims) for seg in bone_segments.values()]


def tissue_of(masks: list) -> np.ndarray:
    """Lattice nodes in the soft tissue: inside the skin, outside every bone."""
    tissue = masks[0].copy()
    for m in masks[1:]:
        tissue &= ~m
    return tissue


def corner_any(flags: np.ndarray) -> np.ndarray:
    """Per cube of a lattice of node ``flags``: whether any of its eight corners is set."""
    cube_dims = np.asarray(flags.shape) - 1
    out = np.zeros(cube_dims, bool)
    for off in _CORNERS:
        out |= flags[off[0]:off[0] + cube_dims[0], off[1]:off[1] + cube_dims[1], off[2]:off[2] + cube_dims[2]]
    return out


def _lattice(masks: list, origin, h: float, keep_cubes: np.ndarray | None = None) -> dict:
    """The lattice of spacing ``h`` with node inside ``masks``: the cubes with a tissue corner
    (and, with ``keep_cubes``, set there), their nodes and tets."""
    dims = np.asarray(masks[0].shape)
    any_tissue = corner_any(tissue_of(masks))
    if keep_cubes is not None:
        any_tissue &= keep_cubes
    cubes = np.argwhere(any_tissue)
    node_grid = np.zeros(dims, bool)
    for off in _CORNERS:
        node_grid[tuple((cubes + off).T)] = True
    node_ijk = np.argwhere(node_grid)
    node_id = np.full(dims, -1, np.int64)
    node_id[tuple(node_ijk.T)] = np.arange(len(node_ijk))
    corner_ids = np.stack([node_id[tuple((cubes + off).T)] for off in _CORNERS], axis=1)
    at = tuple(node_ijk.T)
    return {"origin": np.asarray(origin, float), "dims": dims, "h": float(h), "cubes": cubes, "ijk": node_ijk,
            "nodes": origin + node_ijk * h, "tets": corner_ids[:, _KUHN].reshape(-1, 4),
            "inside": [m[at] for m in masks]}


def _level_set(grid: dict, distances: list, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi = max(phi_skin, -phi_bone_1, ...) at the nodes and which surface attains it
    (``distances``: a :class:`PlaneDistance` per surface, the skin's first)."""
    nodes, h = grid["nodes"], grid["h"]
    phis = []
    for k, (distance, inside) in enumerate(zip(distances, grid["inside"])):
        band = np.zeros(len(nodes), bool)
        crossing = inside[edges[:, 0]] != inside[edges[:, 1]]
        band[edges[crossing].ravel()] = True
        phi = signed_distance(nodes, inside, distance, band, 2.0 * h)
        phis.append(phi if k == 0 else -phi)
    stack = np.stack(phis, axis=1)
    which = np.argmax(stack, axis=1)  # the surface that bounds the tissue there
    phi = stack[np.arange(len(nodes)), which]
    if not (phi < 0).any():
        raise ModelError("no grid node lies in the soft tissue: the grid is too coarse for this anatomy")
    return phi, which


def _snap(nodes: np.ndarray, edges: np.ndarray, phi: np.ndarray, which: np.ndarray, limit: float, frozen=None):
    """Move every node whose nearest cut point along one of its edges is closer than ``limit``
    onto it: (nodes, sign in {-1, 0, 1}, surface of each node, snapped node ids). A ``frozen``
    node stays where it is and the surface comes to it instead (it becomes a surface node): no
    sliver either way."""
    a, c = edges[:, 0], edges[:, 1]
    crossing = np.sign(phi[a]) * np.sign(phi[c]) < 0
    ea, ec = a[crossing], c[crossing]
    t = phi[ea] / (phi[ea] - phi[ec])
    length = np.linalg.norm(nodes[ec] - nodes[ea], axis=1)
    cand_node = np.concatenate([ea, ec])
    cand_dist = np.concatenate([t * length, (1 - t) * length])
    cand_point = np.concatenate([nodes[ea] + t[:, None] * (nodes[ec] - nodes[ea])] * 2)
    outside_end = np.concatenate([np.where(phi[ea] > 0, ea, ec)] * 2)
    close = cand_dist < limit
    order = np.lexsort((cand_dist[close], cand_node[close]))
    sel_node, sel_first = np.unique(cand_node[close][order], return_index=True)
    picked = np.flatnonzero(close)[order][sel_first]
    moves = np.ones(len(sel_node), bool) if frozen is None else ~frozen[sel_node]
    nodes = nodes.copy()
    nodes[sel_node[moves]] = cand_point[picked[moves]]
    surf_of_node = which.copy()
    surf_of_node[sel_node] = which[outside_end[picked]]
    sign = np.sign(phi).astype(np.int8)
    sign[sel_node] = 0
    return nodes, sign, surf_of_node, sel_node


def _cut_points(nodes: np.ndarray, edges: np.ndarray, phi: np.ndarray, sign: np.ndarray, which: np.ndarray):
    """Cut points on the edges with strictly opposite signs, their surface, ``cut_id(p, q)``:
    the node id (after the grid nodes) of the cut point on edges (p, q), and the edge of each."""
    a, c = edges[:, 0], edges[:, 1]
    crossing = sign[a].astype(int) * sign[c] < 0
    ea, ec = a[crossing], c[crossing]
    t = phi[ea] / (phi[ea] - phi[ec])
    cut_nodes = nodes[ea] + t[:, None] * (nodes[ec] - nodes[ea])
    cut_surface = which[np.where(sign[ea] > 0, ea, ec)]
    n0 = len(nodes)
    key_n = n0 + 1
    cut_keys = np.minimum(ea, ec) * key_n + np.maximum(ea, ec)
    order = np.argsort(cut_keys)
    cut_keys = cut_keys[order]

    def cut_id(p, q):
        k = np.minimum(p, q) * key_n + np.maximum(p, q)
        pos = np.searchsorted(cut_keys, k)
        if np.any(pos >= len(cut_keys)) or np.any(cut_keys[np.minimum(pos, len(cut_keys) - 1)] != k):
            raise ModelError("tissue mesher: a cut edge has no cut point (internal error)")
        return n0 + order[pos]

    return cut_nodes, cut_surface, cut_id, np.column_stack([ea, ec])


def sample_spacing(h: float) -> float:
    """Spacing (mm) of the surface samples behind the signed distance of a lattice of spacing
    ``h``: the tangent-plane distance needs no finer."""
    return min(h / 3.0, 1.0)


def fitted_tetrahedra(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, h: float, *,
                      snap: float = 0.25, box=None) -> dict:
    """Nodes, tetrahedra, node labels (``FREE`` or the bone index), the grid cube of every
    tetrahedron and statistics of the fitted tissue mesh (see the module notes). ``box``
    ((2, 3) LPS mm) meshes only the grid cubes in that box."""
    origin, dims = lattice_frame(skin, h, box)
    masks, distances = masks_and_distances(bone_segments, skin, origin, h, dims, sampling_box(origin, dims, h, h))
    return fit_lattice(_lattice(masks, origin, h), distances, snap=snap)


def masks_and_distances(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, origin, h: float, dims,
                        box) -> tuple[list, list]:
    """:func:`inside_masks` at the lattice nodes and :func:`surface_distances` (samples in
    ``box``): the distances' sample trees are built in a second thread while VTK scan-converts
    the surfaces (the two overlap on two cores: about 0.8 s instead of 1.7 s on the sample
    head), unless ``OMP_NUM_THREADS`` allows one thread only."""
    from medface.threads import query_workers

    if query_workers() == 1:
        return (inside_masks(bone_segments, skin, origin, h, dims),
                surface_distances(bone_segments, skin, sample_spacing(h), box))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        distances = pool.submit(surface_distances, bone_segments, skin, sample_spacing(h), box)
        masks = inside_masks(bone_segments, skin, origin, h, dims)
        return masks, distances.result()


def surface_distances(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, spacing: float, box=None) -> list:
    """A :class:`PlaneDistance` for the skin, then for every bone segment (sampled in ``box``)."""
    return [PlaneDistance(m, spacing, box) for m in (skin, *bone_segments.values())]


def sampling_box(origin, dims, h: float, longest_edge: float) -> np.ndarray:
    """The lattice's extent (``origin``, node ``dims``, spacing ``h``) widened by one lattice
    edge of up to ``longest_edge`` mm and a sample spacing: a node whose edge crosses a surface
    (the only nodes whose distance is measured) has that crossing within an edge's length."""
    lo = np.asarray(origin, float)
    hi = lo + (np.asarray(dims) - 1) * h
    pad = np.sqrt(3.0) * longest_edge + 1.0
    return np.stack([lo - pad, hi + pad])


def fit_lattice(grid: dict, distances: list, *, snap: float, frozen=None, level_set=None) -> dict:
    """The tissue part of a :func:`_lattice`'s tetrahedra, cut along the surfaces of
    ``distances`` (:func:`surface_distances`): the dict of :func:`fitted_tetrahedra`, with
    ``lattice_pos``, each node's place in lattice units before snapping (a cut point: the
    middle of its edge), and ``grid_phi`` / ``grid_which``, the level set at the lattice nodes as
    the cutting saw it (0 at snapped nodes) and the surface bounding the tissue there.
    ``frozen(ijk)`` marks lattice nodes that must not move when snapping; ``level_set(ijk)``
    gives (nodes, phi, surface) that replace the level set there (a finer level takes a coarser
    one's on their interface, so that both cut it alike)."""
    h = grid["h"]
    tets = grid["tets"]
    cube_of_tet = np.repeat(np.arange(len(grid["cubes"])), 6)
    edges = _edge_table(tets)
    phi, which = _level_set(grid, distances, edges)
    if level_set is not None:
        at, values, surfaces = level_set(grid["ijk"])
        phi[at], which[at] = values, surfaces
    nodes, sign, surf_of_node, snapped = _snap(grid["nodes"], edges, phi, which, snap * h,
                                               None if frozen is None else frozen(grid["ijk"]))
    cut_nodes, cut_surface, cut_id, cut_edges = _cut_points(nodes, edges, phi, sign, which)
    new_tets, parent = cut_tetrahedra(tets, sign, cut_id)
    all_nodes = np.concatenate([nodes, cut_nodes])
    lattice_pos = np.concatenate([grid["ijk"], 0.5 * (grid["ijk"][cut_edges[:, 0]] + grid["ijk"][cut_edges[:, 1]])])
    surface = np.concatenate([np.where(sign == 0, surf_of_node, -1), cut_surface])  # -1: interior node
    # orientation and degenerate pieces
    x = all_nodes[new_tets]
    vol = np.einsum("ij,ij->i", np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), x[:, 3] - x[:, 0]) / 6.0
    flat = np.abs(vol) < 1e-9 * h ** 3
    new_tets, parent, vol = new_tets[~flat], parent[~flat], vol[~flat]
    neg = vol < 0
    new_tets[neg] = new_tets[neg][:, [0, 2, 1, 3]]
    used = np.unique(new_tets)
    remap = np.full(len(all_nodes), -1, np.int64)
    remap[used] = np.arange(len(used))
    labels = np.where(surface[used] >= 1, surface[used] - 1, FREE).astype(np.int64)
    vol = np.abs(vol)
    stats = {"grid_dims": grid["dims"].tolist(), "origin": grid["origin"].tolist(), "snapped_nodes": int(len(snapped)),
             "cut_points": int(len(cut_nodes)), "dropped_flat_pieces": int(flat.sum()),
             "min_volume_ratio": float(vol.min() / (h ** 3 / 6.0)) if len(vol) else 0.0}
    tets = remap[new_tets]
    level = {"tets": (0, len(tets)), "cubes": grid["cubes"], "origin": grid["origin"], "h": h,
             "cube_dims": np.asarray(grid["dims"]) - 1, "cell_offset": 0}  # where to look points up
    return {"nodes": all_nodes[used], "tets": tets, "labels": labels, "cells": cube_of_tet[parent],
            "cubes": grid["cubes"], "origin": grid["origin"], "dims": grid["dims"], "h": h,
            "lattice_pos": lattice_pos[used], "levels": [level], "stats": stats,
            "grid_ijk": grid["ijk"], "grid_phi": np.where(sign == 0, 0.0, phi), "grid_which": surf_of_node}
