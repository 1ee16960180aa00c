"""Geometry for printed parts (cutting guides, occlusal splints): height-field solids and checks.

A printed guide must slide onto the bone from one direction and come off the same way, so it may
have no undercuts along that direction. medface builds every such part as a **height field** over
a grid perpendicular to its approach direction ``d``: in each grid column the part occupies one
interval ``lower(u, v) <= t <= upper(u, v)`` of the coordinate ``t`` along ``d``, with the bone
below it (its outermost surface seen from ``+d``, found by :func:`depth_buffer`). A height field
has no undercuts along ``d`` by construction. The solid is the zero level set of a field sampled
on a voxel grid, meshed by marching cubes (scikit-image, Lewiner), which gives a closed surface;
booleans (slots) are then done with manifold3d so the output stays a watertight 2-manifold.

:func:`check_printable` is the check every printed output passes in the tests: watertight, no
non-manifold edges, positive volume, one piece, and no self-intersections (every edge tested
against every triangle it does not touch; :func:`self_intersections`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medface.data import SurfaceMesh
from medface.data.mesh import orient_outward
from medface.errors import InputError, ParameterError


@dataclass(frozen=True)
class GridFrame:
    """A right-handed grid frame: columns along ``d`` over the ``(u, v)`` plane through ``origin``.

    Column ``(i, j)`` passes through ``origin + i * spacing * u + j * spacing * v``; ``t`` is the
    coordinate along ``d`` (mm from ``origin``)."""

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    d: np.ndarray
    spacing: float
    shape: tuple[int, int]

    @classmethod
    def around(cls, points: np.ndarray, d, u_hint, spacing: float, pad: float = 3.0) -> "GridFrame":
        """A frame whose grid covers ``points`` projected along ``d`` (plus ``pad`` mm)."""
        d = np.asarray(d, float) / np.linalg.norm(d)
        u = np.asarray(u_hint, float) - (np.asarray(u_hint, float) @ d) * d
        if np.linalg.norm(u) < 1e-6:
            u = np.eye(3)[int(np.argmin(np.abs(d)))] - d * d[int(np.argmin(np.abs(d)))]
        u /= np.linalg.norm(u)
        v = np.cross(d, u)
        pu, pv = points @ u, points @ v
        lo = np.array([pu.min() - pad, pv.min() - pad])
        n = np.ceil((np.array([pu.max() + pad, pv.max() + pad]) - lo) / spacing).astype(int) + 1
        origin = lo[0] * u + lo[1] * v
        return cls(origin, u, v, d, float(spacing), (int(n[0]), int(n[1])))

    def column_points(self, t=None) -> np.ndarray:
        """(nu, nv, 3) LPS points of the columns at height ``t`` (an (nu, nv) array or a number)."""
        i, j = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        t = 0.0 if t is None else np.asarray(t, float)
        return (self.origin + (i * self.spacing)[..., None] * self.u + (j * self.spacing)[..., None] * self.v
                + np.asarray(t)[..., None] * self.d)


def depth_buffer(mesh: SurfaceMesh, frame: GridFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mesh's outermost surface along ``+d`` and ``-d`` over each grid column.

    Returns ``(top, top_face, bottom, bottom_face)``: ``top[i, j]`` is the largest ``t`` at which
    column ``(i, j)`` meets a triangle (the surface seen from ``+d``), ``bottom`` the smallest
    (seen from ``-d``), NaN where the column misses the mesh, and the index of that triangle
    (-1 there). Exact (triangles are rasterised at the column centres, a z-buffer in numpy)."""
    v, f = mesh.vertices, mesh.faces
    q = v - frame.origin
    pu, pv, pt = q @ frame.u / frame.spacing, q @ frame.v / frame.spacing, q @ frame.d
    tu, tv, tt = pu[f], pv[f], pt[f]
    nu, nv = frame.shape
    i0 = np.maximum(np.ceil(tu.min(1) - 1e-9), 0).astype(np.int64)
    i1 = np.minimum(np.floor(tu.max(1) + 1e-9), nu - 1).astype(np.int64)
    j0 = np.maximum(np.ceil(tv.min(1) - 1e-9), 0).astype(np.int64)
    j1 = np.minimum(np.floor(tv.max(1) + 1e-9), nv - 1).astype(np.int64)
    keep = np.flatnonzero((i1 >= i0) & (j1 >= j0))
    top = np.full(nu * nv, -np.inf)
    bottom = np.full(nu * nv, np.inf)
    top_face = np.full(nu * nv, -1, np.int64)
    bottom_face = np.full(nu * nv, -1, np.int64)
    ni, nj = i1[keep] - i0[keep] + 1, j1[keep] - j0[keep] + 1
    counts = ni * nj
    chunk_edges = np.searchsorted(np.cumsum(counts), np.arange(0, counts.sum() + 4_000_000, 4_000_000))
    for a, b in zip(chunk_edges[:-1], chunk_edges[1:]):
        if b <= a:
            continue
        tri = keep[a:b]
        cnt = counts[a:b]
        idx = np.repeat(np.arange(len(tri)), cnt)
        local = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        ii = i0[tri][idx] + local // nj[a:b][idx]
        jj = j0[tri][idx] + local % nj[a:b][idx]
        t_id = tri[idx]
        x0, y0 = tu[t_id, 0], tv[t_id, 0]
        e1x, e1y = tu[t_id, 1] - x0, tv[t_id, 1] - y0
        e2x, e2y = tu[t_id, 2] - x0, tv[t_id, 2] - y0
        det = e1x * e2y - e1y * e2x
        ok = np.abs(det) > 1e-12
        px, py = ii - x0, jj - y0
        with np.errstate(divide="ignore", invalid="ignore"):
            b1 = (px * e2y - py * e2x) / det
            b2 = (e1x * py - e1y * px) / det
            inside = ok & (b1 >= -1e-9) & (b2 >= -1e-9) & (b1 + b2 <= 1 + 1e-9)  # degenerate: inf - inf
        if not inside.any():
            continue
        b1, b2, t_id = b1[inside], b2[inside], t_id[inside]
        depth = tt[t_id, 0] + b1 * (tt[t_id, 1] - tt[t_id, 0]) + b2 * (tt[t_id, 2] - tt[t_id, 0])
        pix = ii[inside] * nv + jj[inside]
        order = np.lexsort((depth, pix))
        pix_s, depth_s, face_s = pix[order], depth[order], t_id[order]
        last = np.r_[pix_s[1:] != pix_s[:-1], True]
        first = np.r_[True, pix_s[1:] != pix_s[:-1]]
        better = depth_s[last] > top[pix_s[last]]
        top[pix_s[last][better]] = depth_s[last][better]
        top_face[pix_s[last][better]] = face_s[last][better]
        better = depth_s[first] < bottom[pix_s[first]]
        bottom[pix_s[first][better]] = depth_s[first][better]
        bottom_face[pix_s[first][better]] = face_s[first][better]
    top[~np.isfinite(top)] = np.nan
    bottom[~np.isfinite(bottom)] = np.nan
    shape = frame.shape
    return top.reshape(shape), top_face.reshape(shape), bottom.reshape(shape), bottom_face.reshape(shape)


def fill_outside(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` with every column outside ``mask`` given the value of the nearest column inside
    (so a field built from them stays continuous across the footprint's edge)."""
    from scipy import ndimage

    if not mask.any():
        raise InputError("the part's footprint is empty: no column of the grid meets the bone there")
    _, (ii, jj) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return values[ii, jj]


def footprint_distance(mask: np.ndarray, spacing: float) -> np.ndarray:
    """Signed distance (mm) to the edge of a 2D footprint: negative inside, positive outside."""
    from scipy import ndimage

    outside = ndimage.distance_transform_edt(~mask) * spacing
    inside = ndimage.distance_transform_edt(mask) * spacing
    return np.where(mask, 0.5 * spacing - inside, outside - 0.5 * spacing)


def mesh_field(field: np.ndarray, frame: GridFrame, t0: float, name: str) -> SurfaceMesh:
    """The closed surface ``field = 0`` (negative inside) of a field sampled at
    ``origin + i*s*u + j*s*v + (t0 + k*s)*d``; the grid is padded so the surface always closes."""
    from skimage.measure import marching_cubes

    padded = np.pad(np.asarray(field, np.float32), 1, constant_values=np.float32(frame.spacing))
    if not (padded < 0).any():
        raise InputError(f"the {name} is empty: nothing of it lies inside the grid",
                         hint="check the planes and the approach direction against the bone")
    verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(frame.spacing,) * 3, allow_degenerate=False)
    verts = verts - frame.spacing  # undo the padding
    points = (frame.origin + verts[:, :1] * frame.u + verts[:, 1:2] * frame.v
              + (t0 + verts[:, 2:3]) * frame.d)
    return orient_outward(SurfaceMesh(points, faces.astype(np.int64), name=name))


def clean_solid(solid, name: str, *, keep_largest: bool = True) -> tuple[SurfaceMesh, list[float]]:
    """A manifold3d solid as a watertight :class:`SurfaceMesh`: the largest piece kept (the
    volumes of the other pieces are returned, for a warning) when ``keep_largest``."""
    from .cutting import from_manifold

    parts = sorted(solid.decompose(), key=lambda p: -p.volume())
    if not parts or parts[0].volume() <= 0:
        raise InputError(f"the {name} came out empty", hint="check the planes and the parameters")
    if keep_largest:
        dropped = [float(p.volume()) for p in parts[1:]]
        solid = parts[0]
    else:
        dropped = []
    mesh = as_stored_in_float32(from_manifold(solid, name))
    return orient_outward(mesh), dropped


def as_stored_in_float32(mesh: SurfaceMesh) -> SurfaceMesh:
    """``mesh`` with its vertices rounded to float32, as STL stores them: vertices that become
    equal are merged and the triangles they collapse dropped, so that the file read back is
    as closed as the mesh checked (two vertices 1e-5 mm apart would otherwise merge on reading
    and leave the edges between them open)."""
    from medface.io.meshes import merge_exact_duplicates

    rounded = np.asarray(mesh.vertices, np.float32).astype(np.float64)
    vertices, faces, _ = merge_exact_duplicates(rounded, np.asarray(mesh.faces))
    faces = np.asarray(faces)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    return SurfaceMesh(vertices[used], remap[faces], name=mesh.name)


# ---------------------------------------------------------------------------------------------
# checks
def _edge_triangle_hits(v, f, edges, ei, ti, boxes) -> int:
    """How many of the (edge, triangle) pairs cross (Moeller-Trumbore), pairs sharing a vertex or
    with disjoint bounding boxes skipped first."""
    if len(ei) == 0:
        return 0
    e_lo, e_hi, t_lo, t_hi = boxes
    keep = (e_lo[ei] <= t_hi[ti]).all(axis=1) & (e_hi[ei] >= t_lo[ti]).all(axis=1)
    ei, ti = ei[keep], ti[keep]
    tri = f[ti]
    shares = (tri == edges[ei, 0:1]).any(axis=1) | (tri == edges[ei, 1:2]).any(axis=1)
    ei, ti = ei[~shares], ti[~shares]
    if len(ei) == 0:
        return 0
    p0, p1, p2 = v[f[ti, 0]], v[f[ti, 1]], v[f[ti, 2]]
    o = v[edges[ei, 0]]
    direction = v[edges[ei, 1]] - o
    e1, e2 = p1 - p0, p2 - p0
    h = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = o - p0
    uu = inv * np.einsum("ij,ij->i", s, h)
    qv = np.cross(s, e1)
    vv = inv * np.einsum("ij,ij->i", direction, qv)
    tt = inv * np.einsum("ij,ij->i", e2, qv)
    eps = 1e-9
    return int((ok & (uu > eps) & (vv > eps) & (uu + vv < 1 - eps) & (tt > eps) & (tt < 1 - eps)).sum())


def _pairs(tree_points, tree_radii, query_points, query_radii, reach: float, chunk: int = 40000):
    """(query index, tree index) pairs closer than the sum of their radii (at most ``reach``),
    in chunks (KD-tree sparse distance matrices, no Python loop per point)."""
    from scipy.spatial import cKDTree

    if len(tree_points) == 0 or len(query_points) == 0:
        return
    tree = cKDTree(tree_points)
    for start in range(0, len(query_points), chunk):
        q = query_points[start:start + chunk]
        pairs = cKDTree(q).sparse_distance_matrix(tree, reach, output_type="ndarray")
        qi, tj = pairs["i"].astype(np.int64) + start, pairs["j"].astype(np.int64)
        keep = pairs["v"] <= query_radii[qi] + tree_radii[tj] + 1e-6
        yield qi[keep], tj[keep]


def self_intersections(mesh: SurfaceMesh, limit: int = 100) -> int:
    """How many (edge, triangle) pairs cross, where the triangle does not share a vertex with
    the edge (stops counting past ``limit``); 0 for a surface that does not intersect itself.

    A surface intersects itself only where some edge passes through a triangle it does not
    touch, so testing every edge against the triangles near it (KD-trees on edge midpoints and
    triangle centres; the few long edges and large triangles, such as those a boolean leaves on a
    flat face, searched with their own reach) finds every crossing except coplanar overlaps."""
    v, f = mesh.vertices, mesh.faces
    edges = np.unique(np.sort(np.vstack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    mids = 0.5 * (v[edges[:, 0]] + v[edges[:, 1]])
    half = 0.5 * np.linalg.norm(v[edges[:, 1]] - v[edges[:, 0]], axis=1)
    corners = v[f]
    centres = corners.mean(axis=1)
    radius = np.max(np.linalg.norm(corners - centres[:, None, :], axis=2), axis=1)
    boxes = (np.minimum(v[edges[:, 0]], v[edges[:, 1]]), np.maximum(v[edges[:, 0]], v[edges[:, 1]]),
             corners.min(axis=1), corners.max(axis=1))
    h_cut, r_cut = 3.0 * float(np.median(half)), 3.0 * float(np.median(radius))
    small_e, small_t = np.flatnonzero(half <= h_cut), np.flatnonzero(radius <= r_cut)
    big_e, big_t = np.flatnonzero(half > h_cut), np.flatnonzero(radius > r_cut)
    found = 0
    # small edges against small triangles; big edges against small triangles; big triangles
    # against small edges (each search with the largest reach in it); big against big by boxes
    searches = [(small_t, small_e, h_cut + r_cut, False), (small_t, big_e, None, False),
                (small_e, big_t, None, True)]
    for tree_idx, q_idx, reach, swapped in searches:
        if len(tree_idx) == 0 or len(q_idx) == 0:
            continue
        if swapped:  # the tree holds edges, the queries are triangles
            t_pts, t_rad, q_pts, q_rad = mids[tree_idx], half[tree_idx], centres[q_idx], radius[q_idx]
        else:
            t_pts, t_rad, q_pts, q_rad = centres[tree_idx], radius[tree_idx], mids[q_idx], half[q_idx]
        reach = reach if reach is not None else float(q_rad.max() + t_rad.max())
        for qi, tj in _pairs(t_pts, t_rad, q_pts, q_rad, reach + 1e-6):
            ei, ti = (tree_idx[tj], q_idx[qi]) if swapped else (q_idx[qi], tree_idx[tj])
            found += _edge_triangle_hits(v, f, edges, ei, ti, boxes)
            if found >= limit:
                return found
    if len(big_e) and len(big_t):  # big edges against big triangles: their bounding boxes overlap
        e_lo, e_hi, t_lo, t_hi = boxes
        for start in range(0, len(big_e), 256):
            chunk = big_e[start:start + 256]
            overlap = ((e_lo[chunk, None, :] <= t_hi[big_t][None]) & (e_hi[chunk, None, :] >= t_lo[big_t][None])).all(axis=2)
            a, b = np.nonzero(overlap)
            found += _edge_triangle_hits(v, f, edges, chunk[a], big_t[b], boxes)
            if found >= limit:
                return found
    return found


@dataclass
class PrintCheck:
    """What a printer (and a surgeon) needs to know of a part: all must hold to print it."""

    name: str
    watertight: bool
    boundary_edges: int
    nonmanifold_edges: int
    volume_mm3: float
    components: int
    self_intersections: int
    faces: int
    extent_mm: tuple[float, float, float]

    @property
    def ok(self) -> bool:
        return (self.watertight and self.volume_mm3 > 0 and self.components == 1
                and self.self_intersections == 0)

    def to_dict(self) -> dict:
        return {"part": self.name, "watertight": self.watertight, "boundary_edges": self.boundary_edges,
                "nonmanifold_edges": self.nonmanifold_edges, "volume_mm3": round(self.volume_mm3, 1),
                "components": self.components, "self_intersections": self.self_intersections,
                "faces": self.faces, "extent_mm": [round(float(x), 1) for x in self.extent_mm], "printable": self.ok}


def check_printable(mesh: SurfaceMesh, name: str | None = None) -> PrintCheck:
    """Watertightness, manifold edges, volume, pieces and self-intersections of a part."""
    boundary, nonmanifold = mesh.edge_counts()
    return PrintCheck(name or mesh.name or "part", boundary == 0 and nonmanifold == 0, int(boundary),
                      int(nonmanifold), float(mesh.signed_volume()), int(mesh.n_components()),
                      self_intersections(mesh), int(mesh.n_faces), tuple(float(x) for x in mesh.extent))


def check_parameter(value: float, name: str, lo: float, hi: float, units: str = "mm") -> float:
    value = float(value)
    if not np.isfinite(value) or not lo <= value <= hi:
        raise ParameterError(f"{name} must be between {lo:g} and {hi:g} {units}, got {value:g}", parameter=name)
    return value
