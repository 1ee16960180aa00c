"""A tetrahedral mesh of the soft tissue between bone segments and the skin.

Method (no TetGen, no GPL code): a regular grid of spacing ``h`` mm is laid over the skin's
bounding box. Which grid nodes lie inside a closed surface is decided by VTK's scan conversion
(``vtkPolyDataToImageStencil``, exact for watertight surfaces and fast on a grid). A grid cube is
kept when one of its corners is inside the skin or a skin vertex lies in it, so every skin vertex
falls in a kept cube. Every kept cube is split into the same six Kuhn (Freudenthal) tetrahedra
around its main diagonal; because every cube is split the same way, neighbouring cubes share the
diagonals of their common faces and the mesh is conforming.

Nodes inside a bone segment, or within ``bone_margin`` (default ``h/2``) of its surface, are
bone-attached (Dirichlet) nodes labelled with that segment; a node near two segments goes to the
nearer one. Parts of the tissue that no skin vertex can feel are dropped: tetrahedra whose four
nodes are all bone nodes (unless a skin vertex lies in them) and free nodes that are only
connected to the rest through bone (the cranial cavity, for example), which is exact for linear
elasticity because the stiffness matrix is block-diagonal over such pieces.

``roi`` (mm), when given, keeps the soft tissue near the moving segments only: free nodes farther
than ``roi`` from every moving segment's bone nodes (grid distance transform) become anchored (zero displacement, label
``ANCHOR``), as if tied to the fixed skeleton. This is the usual region-of-interest
simplification of surgical soft-tissue models (Mollemans et al. 2007); leave it ``None`` for the
full domain.

Each skin vertex is embedded with barycentric coordinates in the tetrahedron that contains it (the
nearest one, with extrapolating coordinates, if it is slightly outside every tetrahedron).

The grid follows the LPS axes; all coordinates are millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.data import SurfaceMesh
from medface.data.mesh import winds_inward
from medface.errors import InputError, ModelError, ParameterError

FREE = -1
ANCHOR = -2
HANGING = -3  # a graded mesh's fine node on a coarse face: interpolated from the coarse side

# Kuhn split of the unit cube into six tetrahedra around the diagonal 0 -> 7. Corner c has
# offset (c & 1, (c >> 1) & 1, (c >> 2) & 1); each tetrahedron walks 0 -> 7 along the axes in
# one of the six orders.
_CORNERS = np.array([[(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)])
_KUHN = np.array([
    [0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7],
])


@dataclass(eq=False)
class TissueMesh:
    """Soft-tissue tetrahedra with bone labels and the skin embedded in them.

    ``nodes`` (n, 3) LPS mm; ``tets`` (m, 4) node indices, positively oriented; ``labels`` (n,)
    per node: ``FREE`` (-1) soft tissue, ``ANCHOR`` (-2) anchored (outside the region of
    interest), ``HANGING`` (-3) interpolated from its masters (``constraints``, a graded mesh),
    or ``k >= 0``: attached to ``segment_names[k]``. ``skin_tet`` (N,) and
    ``skin_bary`` (N, 4) embed the N skin vertices (a vertex just outside the piecewise-linear
    boundary takes the nearest point of its host). ``cells`` (m,): the grid cube each
    tetrahedron came from (both meshers set it; None only for meshes built by hand).
    """

    nodes: np.ndarray
    tets: np.ndarray
    labels: np.ndarray
    segment_names: list[str]
    skin_tet: np.ndarray
    skin_bary: np.ndarray
    h: float
    stats: dict = field(default_factory=dict)
    cells: np.ndarray | None = None  # (m,) grid cube of each tetrahedron: B-bar groups
    #: a graded mesh's hanging nodes: (node ids (k,), master nodes (k, 4), weights (k, 4))
    constraints: tuple | None = None

    def constraint_matrix(self):
        """Sparse (3n, 3n) ``P`` over the degrees of freedom (``3 * node + axis``) with ``u = P u``:
        identity rows, and for a hanging node's dofs its masters' weights (its own columns
        empty). None without hanging nodes."""
        if self.constraints is None:
            return None
        from scipy.sparse import csr_matrix, identity, kron

        hang, masters, weights = self.constraints
        n = len(self.nodes)
        plain = np.setdiff1d(np.arange(n), hang)
        rows = np.concatenate([plain, np.repeat(hang, masters.shape[1])])
        cols = np.concatenate([plain, masters.ravel()])
        vals = np.concatenate([np.ones(len(plain)), weights.ravel()])
        return kron(csr_matrix((vals, (rows, cols)), shape=(n, n)), identity(3), format="csr")

    def counts(self) -> dict:
        """Numbers of nodes, tetrahedra, free/bone/anchored nodes, bone nodes per segment."""
        per = {name: int((self.labels == k).sum()) for k, name in enumerate(self.segment_names)}
        return {
            "h_mm": float(self.h),
            "nodes": len(self.nodes),
            "tets": len(self.tets),
            "free_nodes": int((self.labels == FREE).sum()),
            "anchored_nodes": int((self.labels == ANCHOR).sum()),
            "hanging_nodes": int((self.labels == HANGING).sum()),
            "bone_nodes": per,
            "skin_vertices": len(self.skin_tet),
            "skin_vertices_outside": int(self.stats.get("skin_outside", 0)),
        }

    def interpolation_matrix(self):
        """Sparse (N, n) matrix mapping node values to skin vertex values (barycentric)."""
        from scipy.sparse import csr_matrix

        n_skin = len(self.skin_tet)
        hosted = np.flatnonzero(self.skin_tet >= 0)  # -1: beyond the meshed box, does not move
        rows = np.repeat(hosted, 4)
        cols = self.tets[self.skin_tet[hosted]].ravel()
        return csr_matrix((self.skin_bary[hosted].ravel(), (rows, cols)), shape=(n_skin, len(self.nodes)))


# inside tests -------------------------------------------------------------------------------
def inside_grid(mesh: SurfaceMesh, origin: np.ndarray, h: float, dims) -> np.ndarray:
    """Boolean array of shape ``dims`` (i, j, k): is grid node ``origin + h*(i, j, k)`` inside
    the closed surface ``mesh``? VTK scan conversion along grid rows (parity of crossings)."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    dims = [int(d) for d in dims]
    stencil = vtk.vtkPolyDataToImageStencil()
    stencil.SetInputData(mesh.to_pyvista())
    stencil.SetOutputOrigin(*map(float, origin))
    stencil.SetOutputSpacing(h, h, h)
    stencil.SetOutputWholeExtent(0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1)
    stencil.SetTolerance(0.0)
    image = vtk.vtkImageData()
    image.SetOrigin(*map(float, origin))
    image.SetSpacing(h, h, h)
    image.SetDimensions(*dims)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    image.GetPointData().GetScalars().Fill(1)
    apply = vtk.vtkImageStencil()
    apply.SetInputData(image)
    apply.SetStencilConnection(stencil.GetOutputPort())
    apply.ReverseStencilOff()
    apply.SetBackgroundValue(0)
    apply.Update()
    flat = vtk_to_numpy(apply.GetOutput().GetPointData().GetScalars())
    return flat.reshape(dims[::-1]).transpose(2, 1, 0).astype(bool)


def surface_samples(mesh: SurfaceMesh, spacing: float) -> np.ndarray:
    """Points on the surface: the vertices, plus a regular barycentric grid of step at most
    ``spacing`` on every triangle with an edge longer than ``2 * spacing``. Every surface point
    then lies within about ``spacing`` of a sample."""
    v, f = mesh.vertices, mesh.faces
    longest = np.sqrt(np.max(np.sum((v[f] - v[np.roll(f, 1, axis=1)]) ** 2, axis=2), axis=1))
    parts = [v]
    steps = np.where(longest > 2 * spacing, np.ceil(longest / spacing), 1).astype(int)
    for n in np.unique(steps[steps > 1]):
        tri = v[f[steps == n]]  # (t, 3, 3)
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = (i + j <= n)
        w = np.stack([i[keep], j[keep]], axis=1) / n  # (q, 2)
        w = np.column_stack([1 - w.sum(axis=1), w])
        parts.append(np.einsum("qk,tkd->tqd", w, tri).reshape(-1, 3))
    return np.concatenate(parts)


def surface_distance(mesh: SurfaceMesh, points: np.ndarray, upper: float, spacing: float = 1.0) -> np.ndarray:
    """Unsigned distance (mm) from ``points`` to the surface, ``inf`` beyond ``upper``. Measured
    to surface samples (:func:`surface_samples`) with a k-d tree: it over-estimates the exact
    point-to-triangle distance by at most about ``spacing``."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, float)
    if len(points) == 0:
        return np.full(0, np.inf)
    d, _ = cKDTree(surface_samples(mesh, spacing)).query(points, distance_upper_bound=upper)
    return d


def _implicit_distance(mesh: SurfaceMesh, points: np.ndarray) -> np.ndarray:
    import pyvista as pv

    cloud = pv.PolyData(np.ascontiguousarray(points, float))
    return np.asarray(cloud.compute_implicit_distance(mesh.to_pyvista())["implicit_distance"], float)


# validation ---------------------------------------------------------------------------------
def check_closed(mesh: SurfaceMesh, what: str) -> None:
    """InputError unless ``mesh`` is watertight (no holes, manifold edges)."""
    if not isinstance(mesh, SurfaceMesh):
        raise InputError(f"{what} must be a SurfaceMesh, got {type(mesh).__name__}")
    boundary, nonmanifold = mesh.edge_counts()
    if boundary or nonmanifold:
        raise InputError(
            f"{what} is not a closed surface: {boundary} boundary edges (holes), {nonmanifold} non-manifold edges",
            path=mesh.source,
            hint="soft-tissue prediction needs watertight skin and bone surfaces; fill the holes "
                 "(e.g. pyvista fill_holes or trimesh.repair.fill_holes) and re-export",
        )


def _check_enclosed(segments: dict[str, SurfaceMesh], skin: SurfaceMesh) -> None:
    """InputError when a bone segment sticks out of the skin."""
    sb = skin.bounds()
    samples = {}
    for name, seg in segments.items():
        b = seg.bounds()
        if np.any(b[0] < sb[0]) or np.any(b[1] > sb[1]):
            raise InputError(f"bone segment '{name}' reaches outside the skin's bounding box: the skin does "
                             "not enclose the bone", hint="pass the skin and bone surfaces of the same patient, in "
                                                          "the same LPS frame")
        # sample the segment's vertices: all must be inside the skin (1% tolerance for contact)
        samples[name] = seg.vertices[np.linspace(0, seg.n_vertices - 1, min(seg.n_vertices, 2000)).astype(int)]
    sd = _implicit_distance(skin, np.concatenate(list(samples.values())))  # one locator for all segments
    if winds_inward(skin):
        sd = -sd  # negative inside for outward normals
    start = 0
    for name, pts in samples.items():
        outside = sd[start:start + len(pts)] > 1e-6
        start += len(pts)
        if outside.mean() > 0.01:
            raise InputError(f"bone segment '{name}': {100 * outside.mean():.0f}% of its sampled vertices lie "
                             "outside the skin: the skin does not enclose the bone",
                             hint="pass the skin and bone surfaces of the same patient, in the same LPS frame")


# the mesher ---------------------------------------------------------------------------------
@dataclass(eq=False)
class _Grid:
    """The regular grid over the skin: ``nodes`` (corners of the kept ``cubes``), their grid
    indices ``node_ijk`` and the node number of every grid point (``node_id``, -1 if unused)."""

    origin: np.ndarray
    h: float
    dims: np.ndarray
    cubes: np.ndarray
    node_ijk: np.ndarray
    node_id: np.ndarray

    @property
    def nodes(self) -> np.ndarray:
        return self.origin + self.node_ijk * self.h

    def at_nodes(self, grid_values: np.ndarray) -> np.ndarray:
        """Values of a grid-shaped array at the nodes."""
        return grid_values[tuple(self.node_ijk.T)]


def _checked_spacing(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, h, bone_margin,
                     roi) -> tuple[float, float]:
    """(h, bone margin) after checking the surfaces and the parameters."""
    if not bone_segments:
        raise ParameterError("at least one bone segment is needed", parameter="bone_segments")
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ParameterError(f"grid spacing must be a positive number of mm, got {h}", parameter="h")
    check_closed(skin, "the skin")
    for name, seg in bone_segments.items():
        check_closed(seg, f"bone segment '{name}'")
    if h > 0.25 * float(skin.extent.min()):
        raise ParameterError(f"grid spacing {h} mm is too coarse for a skin {skin.extent.min():.1f} mm across",
                             parameter="h", hint="use at most a quarter of the skin's smallest extent")
    _check_enclosed(bone_segments, skin)
    margin = 0.5 * h if bone_margin is None else float(bone_margin)
    if not np.isfinite(margin) or margin < 0:
        raise ParameterError(f"bone margin must be >= 0 mm, got {margin}", parameter="bone_margin")
    if roi is not None and (not np.isfinite(roi) or roi <= 0):
        raise ParameterError(f"region of interest must be a positive distance in mm, got {roi}", parameter="roi")
    return h, margin


def _skin_grid(skin: SurfaceMesh, h: float) -> _Grid:
    """The grid over the skin's bounding box (one spacing of padding) and the cubes to keep: a
    corner inside the skin, or a skin vertex in the cube (cubes indexed by their lowest corner)."""
    b = skin.bounds()
    origin = b[0] - h
    dims = np.ceil((b[1] - b[0]) / h).astype(int) + 3
    in_skin = inside_grid(skin, origin, h, dims)
    cube_dims = dims - 1
    any_corner = np.zeros(cube_dims, bool)
    for off in _CORNERS:
        any_corner |= in_skin[off[0]:off[0] + cube_dims[0], off[1]:off[1] + cube_dims[1], off[2]:off[2] + cube_dims[2]]
    skin_cell = np.floor((skin.vertices - origin) / h).astype(int)
    skin_cell = np.clip(skin_cell, 0, cube_dims - 1)
    any_corner[tuple(skin_cell.T)] = True
    cubes = np.argwhere(any_corner)
    node_grid = np.zeros(dims, bool)  # candidate nodes: corners of kept cubes
    for off in _CORNERS:
        node_grid[tuple((cubes + off).T)] = True
    node_ijk = np.argwhere(node_grid)
    node_id = np.full(dims, -1, np.int64)
    node_id[tuple(node_ijk.T)] = np.arange(len(node_ijk))
    return _Grid(origin, h, dims, cubes, node_ijk, node_id)


def _bone_labels(grid: _Grid, bone_segments: dict[str, SurfaceMesh], margin: float) -> np.ndarray:
    """Per node: the segment it is attached to (inside it, or within ``margin``; the nearest
    segment wins), or ``FREE``."""
    spacing = min(0.2 * grid.h, 1.0)  # surface sampling for distances (see surface_distance)
    nodes = grid.nodes
    best = np.full(len(nodes), np.inf)
    labels = np.full(len(nodes), FREE, np.int64)
    for k, seg in enumerate(bone_segments.values()):
        d = surface_distance(seg, nodes, margin, spacing)
        d[grid.at_nodes(inside_grid(seg, grid.origin, grid.h, grid.dims))] = 0.0
        closer = d < best
        labels[closer] = k
        best[closer] = d[closer]
    return labels


def _kept_tetrahedra(tets: np.ndarray, labels: np.ndarray, skin_tet: np.ndarray, *, links=None,
                     must_keep=None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, hosts): drop all-bone tetrahedra that host no skin vertex, and free nodes that
    reach the skin only through bone (exact for linear elasticity: the stiffness is
    block-diagonal over such pieces). ``hosts`` marks the tetrahedra holding a skin vertex (and
    those of ``must_keep``); ``links`` (k, 2) joins nodes that constraints couple."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    skin_tet = skin_tet[skin_tet >= 0]
    hosts = np.zeros(len(tets), bool)
    hosts[skin_tet] = True
    if must_keep is not None:
        hosts[must_keep] = True
    is_free = labels == FREE
    keep_tet = hosts | is_free[tets].any(axis=1)
    t_free = tets[keep_tet]  # the free-node graph through tetrahedra
    a = np.repeat(t_free, 4, axis=1).ravel()
    c = np.tile(t_free, (1, 4)).ravel()
    if links is not None and len(links):
        a, c = np.concatenate([a, links[:, 0]]), np.concatenate([c, links[:, 1]])
    both = is_free[a] & is_free[c]
    graph = coo_matrix((np.ones(int(both.sum()), np.int8), (a[both], c[both])), shape=(len(labels),) * 2)
    _, comp = connected_components(graph, directed=False)
    wanted = np.unique(comp[tets[skin_tet].ravel()][is_free[tets[skin_tet].ravel()]])
    dropped_free = is_free & ~np.isin(comp, wanted)
    # a kept tet that touches a dropped free node (only when it hosts skin) keeps it free
    keep_tet &= ~(dropped_free[tets].any(axis=1) & ~hosts)
    return keep_tet, hosts


def _anchor_outside_roi(grid: _Grid, labels: np.ndarray, moving_ids: list[int], roi: float) -> None:
    """Label ``ANCHOR`` the free nodes farther than ``roi`` from every moving segment's nodes
    (Euclidean distance transform on the grid, to within one spacing)."""
    from scipy import ndimage

    seed = np.ones(grid.dims, bool)
    seed[tuple(grid.node_ijk[np.isin(labels, moving_ids)].T)] = False
    dist = ndimage.distance_transform_edt(seed) * grid.h
    labels[(labels == FREE) & (grid.at_nodes(dist) > roi)] = ANCHOR


def _compact(nodes: np.ndarray, tets: np.ndarray, labels: np.ndarray, skin_tet: np.ndarray,
             keep_tet: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes, tetrahedra, labels and skin hosts with only the kept tetrahedra and their nodes,
    and the new id of every old node (-1: dropped)."""
    old_tets = np.flatnonzero(keep_tet)
    new_of_old_tet = np.full(len(tets), -1, np.int64)
    new_of_old_tet[old_tets] = np.arange(len(old_tets))
    tets = tets[old_tets]
    used = np.unique(tets)
    new_of_old_node = np.full(len(nodes), -1, np.int64)
    new_of_old_node[used] = np.arange(len(used))
    hosted = skin_tet >= 0
    lost = hosted & (new_of_old_tet[np.maximum(skin_tet, 0)] < 0)
    skin_tet = np.where(hosted, new_of_old_tet[np.maximum(skin_tet, 0)], -1)
    if lost.any():  # a bug in the pruning, never the input's fault
        raise ModelError("the tissue mesh lost a tetrahedron holding a skin vertex")
    return nodes[used], new_of_old_node[tets], labels[used], skin_tet, new_of_old_node


def build_tissue_mesh(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, h: float = 3.0, *,
                      bone_margin: float | None = None, roi: float | None = None,
                      moving: list[str] | None = None, mesher: str = "fitted",
                      grade_mm: float | None = None, resolve_gaps=False) -> TissueMesh:
    """Mesh the soft tissue between ``bone_segments`` and ``skin`` with tetrahedra of size ``h``.

    ``mesher``: ``"fitted"`` (default; cut cells fitted to the surfaces, :mod:`.fitted_mesh`) or
    ``"voxel"`` (the stair-stepped grid of whole cubes of earlier versions, kept as a baseline).
    ``bone_margin`` (mm) ties free nodes that close to a bone to it (default: none for the fitted
    mesh, ``h/2`` for the voxel mesh). ``moving`` names the segments that may move (default:
    all); it matters only with ``roi`` and ``grade_mm``. ``grade_mm`` (fitted mesh only): tissue
    farther than that from the moving bone is meshed at ``2 h`` (:mod:`.graded_mesh`).
    ``resolve_gaps`` (fitted mesh only): grid cubes holding a gap narrower than ``h`` between
    bones that move apart are meshed finer (:mod:`.gap_refinement`): True for every pair of
    segments of which one moves (saw cuts, teeth in occlusion, joints), or the pairs of segment
    names to look at (``simulation.saw_gaps``: the saw's cuts). Raises
    InputError for surfaces that are not closed or a skin that does not enclose the bone,
    ParameterError for a bad ``h``, ``bone_margin``, ``roi``, ``grade_mm`` or ``mesher``.
    """
    if mesher not in ("fitted", "voxel"):
        raise ParameterError(f"unknown mesher {mesher!r}; use 'fitted' or 'voxel'", parameter="mesher")
    if grade_mm is not None and not (np.isfinite(grade_mm) and grade_mm > 0):
        raise ParameterError(f"grade_mm must be a positive distance in mm, got {grade_mm}", parameter="grade_mm")
    if mesher == "voxel":
        return build_voxel_tissue_mesh(bone_segments, skin, h, bone_margin=bone_margin, roi=roi, moving=moving)
    h, margin = _checked_spacing(bone_segments, skin, h, 0.0 if bone_margin is None else bone_margin, roi)
    names = list(bone_segments)
    moving = names if moving is None else list(moving)
    box = None
    if roi is not None and moving:  # no node outside this box can lie within roi of the moving bone
        bounds = np.stack([bone_segments[name].bounds() for name in moving])
        box = np.stack([bounds[:, 0].min(axis=0) - roi - 2 * h, bounds[:, 1].max(axis=0) + roi + 2 * h])
    mesh = _fitted(bone_segments, skin, h, moving, grade_mm, box, resolve_gaps)
    nodes, tets, labels, cells = mesh["nodes"], mesh["tets"], mesh["labels"], mesh["cells"]
    if margin > 0:
        _tie_near_bone(bone_segments, nodes, labels, margin, min(0.2 * h, 1.0))
    inside = np.ones(skin.n_vertices, bool) if box is None else np.all(
        (skin.vertices > box[0] + h) & (skin.vertices < box[1] - h), axis=1)  # the rest stays still
    skin_tet = np.full(skin.n_vertices, -1, np.int64)
    skin_bary, gap = np.zeros((skin.n_vertices, 4)), np.zeros(skin.n_vertices)
    skin_tet[inside], skin_bary[inside], gap[inside] = _embed_in_levels(mesh, skin.vertices[inside])
    tie = mesh.get("constraints")
    keep_tet, hosts = _kept_tetrahedra(tets, labels, skin_tet, links=None if tie is None else _links(tie),
                                       must_keep=None if tie is None else tie["hosts"])
    if roi is not None:
        _anchor_beyond(nodes, labels, [names.index(name) for name in moving], roi)
        keep_tet &= (labels[tets] == FREE).any(axis=1) | hosts
    keep_cells = cells[keep_tet]
    nodes, tets, labels, skin_tet, new_id = _compact(nodes, tets, labels, skin_tet, keep_tet)
    constraints = None if tie is None else _kept_constraints(labels, new_id, tie)
    stats = {**mesh["stats"], "skin_outside": int((gap > 0.5 * h).sum()), "skin_gap_max_mm": float(gap.max()),
             "skin_beyond_box": int((~inside).sum()),
             "skin_gap_p99_mm": float(np.percentile(gap, 99)), "mesher": "graded" if any(lv["h"] > h for lv in mesh["levels"]) else "fitted"}
    return TissueMesh(nodes, tets, labels, names, skin_tet, skin_bary, h, stats,
                      cells=np.unique(keep_cells, return_inverse=True)[1], constraints=constraints)


def _fitted(bone_segments, skin, h, moving, grade_mm, box, resolve_gaps) -> dict:
    """The fitted mesh: uniform, graded away from the moving bone, refined in the gaps between
    bones that move apart (:mod:`.gap_refinement`), or both."""
    from .gap_refinement import gap_pairs

    pairs = gap_pairs(list(bone_segments), moving, resolve_gaps)
    if (grade_mm is None or not moving) and not pairs:
        from .fitted_mesh import fitted_tetrahedra

        return fitted_tetrahedra(bone_segments, skin, h, box=box)
    from .graded_mesh import graded_tetrahedra

    points = np.concatenate([bone_segments[name].vertices for name in moving]) if moving else np.zeros((0, 3))
    return graded_tetrahedra(bone_segments, skin, h, points, None if grade_mm is None or not moving else float(grade_mm),
                             box=box, gap_pairs=pairs)


def _tie_near_bone(bone_segments, nodes, labels, margin: float, spacing: float) -> None:
    """Label free nodes within ``margin`` of a bone with the nearest such bone."""
    best = np.full(len(nodes), np.inf)
    for k, seg in enumerate(bone_segments.values()):
        d = surface_distance(seg, nodes, margin, spacing)
        closer = (labels == FREE) & (d < best) & (d <= margin)
        labels[closer] = k
        best[closer] = d[closer]


def _anchor_beyond(nodes, labels, moving_ids: list[int], roi: float) -> None:
    """Label ``ANCHOR`` the free nodes farther than ``roi`` from every moving segment's nodes."""
    from scipy.spatial import cKDTree

    seeds = np.flatnonzero(np.isin(labels, moving_ids))
    if len(seeds):
        d, _ = cKDTree(nodes[seeds]).query(nodes, distance_upper_bound=roi)
        labels[(labels == FREE) & ~np.isfinite(d)] = ANCHOR
    else:
        labels[labels == FREE] = ANCHOR


def _embed_in_levels(mesh: dict, points: np.ndarray):
    """Host tetrahedron, barycentric coordinates and gap of every point in a fitted mesh: in its
    one lattice, or in the nearer of a graded mesh's two (the fine one first: it holds the skin)."""
    levels = mesh["levels"]
    host = np.full(len(points), -1, np.int64)
    bary, gap = np.zeros((len(points), 4)), np.full(len(points), np.inf)
    for level in reversed(levels):
        a, b = level["tets"]
        todo = np.flatnonzero(gap > 0)
        if b == a or len(todo) == 0:
            continue
        t, w, g = _embed_in_cells(mesh["nodes"], mesh["tets"][a:b], mesh["cells"][a:b] - level["cell_offset"],
                                  level["cubes"], level["origin"], level["h"], level["cube_dims"], points[todo],
                                  fallback=False)
        better = g < gap[todo]
        host[todo[better]], bary[todo[better]], gap[todo[better]] = t[better] + a, w[better], g[better]
    best = {"t": host, "bary": bary, "gap": gap}
    _nearer_among_nearest_centroids(mesh["nodes"], mesh["tets"], points, best, beyond=mesh.get("h", levels[-1]["h"]))
    return host, bary, gap


def _links(tie: dict) -> np.ndarray:
    """(k, 2) node pairs joining every hanging node to its masters."""
    return np.column_stack([np.repeat(tie["nodes"], tie["masters"].shape[1]), tie["masters"].ravel()])


def _kept_constraints(labels: np.ndarray, new_id: np.ndarray, tie: dict):
    """The hanging-node constraints ``(nodes, masters (k, 4), weights (k, 4))`` in the compacted
    mesh's ids; the hanging nodes still free get the label ``HANGING``. None without any."""
    nodes, masters, weights = new_id[tie["nodes"]], new_id[tie["masters"]], tie["weights"]
    if np.any(masters < 0):  # the masters' tetrahedra are kept (must_keep): a bug, not the input
        raise ModelError("the graded tissue mesh lost the master node of a hanging node")
    keep = (nodes >= 0) & (labels[np.maximum(nodes, 0)] == FREE)
    nodes, masters, weights = nodes[keep], masters[keep], weights[keep]
    labels[nodes] = HANGING
    return (nodes, masters, weights) if len(nodes) else None


def _embed_in_cells(nodes, tets, cells, cubes, origin, h, cube_dims, points, *, fallback: bool = True):
    """Host tetrahedron, barycentric coordinates (clamped to the tetrahedron) and distance to
    the host (mm, 0 inside) of every point: among the pieces of the point's grid cube and its 26
    neighbours, the one nearest the point (the first of equally near ones). A point with no piece
    there gets the tetrahedron of the nearest centroid (with ``fallback``) or host -1 and an
    infinite gap."""
    from scipy.sparse import csr_matrix

    cube_index = np.full(tuple(cube_dims), -1, np.int64)
    cube_index[tuple(cubes.T)] = np.arange(len(cubes))
    cell = np.clip(np.floor((points - origin) / h).astype(int), 0, np.asarray(cube_dims) - 1)
    inverse = _LazyInverses(nodes, tets)  # bary(1:4) = inv @ (p - x0), for the tetrahedra asked about
    by_cube = csr_matrix((np.arange(1, len(tets) + 1), (cells, np.arange(len(tets)))), shape=(len(cubes), len(tets)))
    by_cube.sort_indices()
    best = {"t": np.full(len(points), -1, np.int64), "gap": np.full(len(points), np.inf),
            "bary": np.zeros((len(points), 4))}
    offsets = [np.zeros(3, int)] + [np.array(o) - 1 for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]
    for off in offsets:  # neighbours only for points farther than 2 % of h outside their own cube's pieces
        todo = best["gap"] > (0 if not off.any() else 0.02 * h)
        if off.any():  # and only neighbours whose pieces (within h/2 of their cube: snapping) can be nearer
            lo = origin + (cell + off) * h
            reach = np.linalg.norm(np.maximum(np.maximum(lo - points, points - (lo + h)), 0.0), axis=1)
            todo &= reach - 0.5 * h < best["gap"]
        if not todo.any():
            continue
        c = cell[todo] + off
        ok = np.all((c >= 0) & (c < np.asarray(cube_dims)), axis=1)
        ci = np.full(len(c), -1, np.int64)
        ci[ok] = cube_index[tuple(c[ok].T)]
        idx = np.flatnonzero(todo)[ci >= 0]
        ci = ci[ci >= 0]
        for chunk in _candidate_chunks(by_cube.indptr[ci + 1] - by_cube.indptr[ci]):
            p_idx, t = _candidates(idx[chunk], by_cube, ci[chunk])
            _keep_nearest(best, p_idx, t, *_nearest_point_in(nodes[tets[t]], inverse(t), points[p_idx]))
    if fallback:
        _nearest_centroid_for_lost(nodes, tets, points, best)
    return best["t"], best["bary"], best["gap"]


#: candidate (point, tetrahedron) pairs looked at in one go (bounds the memory of their corners)
CANDIDATE_CHUNK = 400_000


def _candidate_chunks(counts: np.ndarray):
    """Slices of consecutive points whose candidates add up to about :data:`CANDIDATE_CHUNK`."""
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + CANDIDATE_CHUNK, "right")), start + 1)
        yield slice(start, stop)
        start = stop


def _candidates(points_idx: np.ndarray, by_cube, cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (point, tetrahedron of its cube) pair, point by point, in the cube's order."""
    start, count = by_cube.indptr[cube], by_cube.indptr[cube + 1] - by_cube.indptr[cube]
    within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return np.repeat(points_idx, count), by_cube.indices[np.repeat(start, count) + within]


def _nearest_point_in(xt: np.ndarray, inv: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the tetrahedra with corners ``xt``, 0 inside; barycentric coordinates, clamped
    outside) of the points ``p``: the clamped coordinates approximate the nearest point."""
    lam = np.einsum("pij,pj->pi", inv, p - xt[:, 0])
    bary = np.column_stack([1 - lam.sum(axis=1), lam])
    clamped = np.clip(bary, 0.0, None)
    clamped /= clamped.sum(axis=1, keepdims=True)
    gap = np.linalg.norm(np.einsum("pk,pkd->pd", clamped, xt) - p, axis=1)
    inside = bary.min(axis=1) >= -1e-12
    gap[inside] = 0.0
    return gap, np.where(inside[:, None], bary, clamped)


def _keep_nearest(best: dict, p_idx: np.ndarray, t: np.ndarray, gap: np.ndarray, bary: np.ndarray) -> None:
    """Per point (its candidates consecutive in ``p_idx``), its nearest candidate (the first of
    equally near ones) where nearer than the best so far."""
    if len(gap) == 0:  # the cubes asked about hold no piece
        return
    starts = np.flatnonzero(np.concatenate([[True], p_idx[1:] != p_idx[:-1]]))
    nearest = np.minimum.reduceat(gap, starts)
    count = np.diff(np.append(starts, len(gap)))
    first = np.minimum.reduceat(np.where(gap <= np.repeat(nearest, count), np.arange(len(gap)), len(gap)), starts)
    better = first[gap[first] < best["gap"][p_idx[first]]]
    at = p_idx[better]
    best["gap"][at], best["t"][at], best["bary"][at] = gap[better], t[better], bary[better]


def _nearest_centroid_for_lost(nodes, tets, points, best: dict) -> None:
    """Points far from every piece (cannot happen for a skin that the grid covers): the
    tetrahedron with the nearest centroid, at its centroid."""
    lost = best["t"] < 0
    if lost.any():
        from scipy.spatial import cKDTree

        centroids = nodes[tets].mean(axis=1)
        _, t = cKDTree(centroids).query(points[lost])
        best["t"][lost] = t
        best["bary"][lost] = 0.25
        best["gap"][lost] = np.linalg.norm(centroids[t] - points[lost], axis=1)


#: tetrahedra (nearest centroids) looked at for a point that no lattice cube near it reaches
CENTROID_CANDIDATES = 8


def _nearer_among_nearest_centroids(nodes, tets, points, best: dict, beyond: float) -> None:
    """Points farther than ``beyond`` (mm) from their host, or without one (outside the lattice
    cubes near them: the thin features of a coarse scan): the nearest of the tetrahedra with the
    :data:`CENTROID_CANDIDATES` nearest centroids, over all levels, where it is nearer than the
    host found so far (a coarse level's neighbour cubes can hold a farther piece than a fine one's)."""
    far = np.flatnonzero(best["gap"] > beyond)
    if len(far) == 0 or len(tets) == 0:
        return
    from scipy.spatial import cKDTree

    k = min(CENTROID_CANDIDATES, len(tets))
    _, t = cKDTree(nodes[tets].mean(axis=1)).query(points[far], k=k)
    t = t.reshape(len(far), k)
    inverse = _LazyInverses(nodes, tets)
    p_idx, cand = np.repeat(far, k), t.ravel()
    _keep_nearest(best, p_idx, cand, *_nearest_point_in(nodes[tets[cand]], inverse(cand), points[p_idx]))


class _LazyInverses:
    """The inverse edge matrices of tetrahedra, computed the first time each is asked for."""

    def __init__(self, nodes: np.ndarray, tets: np.ndarray):
        self.nodes, self.tets = nodes, tets
        self.inv = np.empty((len(tets), 3, 3))
        self.known = np.zeros(len(tets), bool)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        new = np.unique(t[~self.known[t]])
        if len(new):
            x = self.nodes[self.tets[new]]
            self.inv[new] = np.linalg.inv(np.transpose(x[:, 1:] - x[:, :1], (0, 2, 1)))
            self.known[new] = True
        return self.inv[t]


def build_voxel_tissue_mesh(bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh, h: float = 3.0, *,
                            bone_margin: float | None = None, roi: float | None = None,
                            moving: list[str] | None = None) -> TissueMesh:
    """The stair-stepped mesh of whole grid cubes (earlier versions' mesher; a baseline)."""
    h, margin = _checked_spacing(bone_segments, skin, h, bone_margin, roi)
    names = list(bone_segments)
    moving = names if moving is None else list(moving)
    grid = _skin_grid(skin, h)
    nodes = grid.nodes
    labels = _bone_labels(grid, bone_segments, margin)
    corner_ids = np.stack([grid.node_id[tuple((grid.cubes + off).T)] for off in _CORNERS], axis=1)  # (c, 8)
    tets = corner_ids[:, _KUHN].reshape(-1, 4)
    # embed the skin before pruning, then remap
    skin_tet, _, outside = _embed(nodes, tets, grid.cubes, grid.origin, h, skin.vertices, grid.dims - 1)
    keep_tet, hosts = _kept_tetrahedra(tets, labels, skin_tet)
    if roi is not None:
        _anchor_outside_roi(grid, labels, [names.index(name) for name in moving], roi)
        keep_tet &= (labels[tets] == FREE).any(axis=1) | hosts
    cells = np.unique((np.arange(len(tets)) // 6)[keep_tet], return_inverse=True)[1]  # the parent cubes
    nodes, tets, labels, skin_tet, _ = _compact(nodes, tets, labels, skin_tet, keep_tet)
    tets = _orient(nodes, tets)
    # orientation swaps two columns; recompute barycentrics to match
    skin_bary = barycentric(nodes[tets[skin_tet]], skin.vertices)
    stats = {"mesher": "voxel", "skin_outside": int(outside), "grid_dims": grid.dims.tolist(), "origin": grid.origin.tolist()}
    return TissueMesh(nodes, tets, labels, names, skin_tet, skin_bary, h, stats, cells=cells)


def barycentric(tet_points: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (P, 4) of ``points`` (P, 3) in tetrahedra ``tet_points`` (P, 4, 3)."""
    d = tet_points[:, 1:] - tet_points[:, :1]  # (P, 3, 3) rows = edges
    rhs = points - tet_points[:, 0]
    lam = np.linalg.solve(np.transpose(d, (0, 2, 1)), rhs[..., None])[..., 0]
    return np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)


def _embed(nodes, tets, cubes, origin, h, points, cube_dims):
    """Tetrahedron index and barycentric coordinates of every point. A point in a kept cube goes
    to the Kuhn tetrahedron containing it; one outside every kept cube (cannot happen for skin
    vertices, which force their cube) would go to the nearest tetrahedron centroid."""
    cube_index = np.full(tuple(cube_dims), -1, np.int64)
    cube_index[tuple(cubes.T)] = np.arange(len(cubes))
    cell = np.clip(np.floor((points - origin) / h).astype(int), 0, np.asarray(cube_dims) - 1)
    ci = cube_index[tuple(cell.T)]
    out_tet = np.empty(len(points), np.int64)
    out_bary = np.empty((len(points), 4))
    outside = 0
    ok = ci >= 0
    if ok.any():
        # the six Kuhn tets: point with local coords (x, y, z) lies in the tet whose axis order
        # sorts the coordinates descending. Try all six and keep the one with min bary >= ~0.
        best_t = np.zeros(int(ok.sum()), np.int64)
        best_b = None
        best_min = np.full(int(ok.sum()), -np.inf)
        p = points[ok]
        for j in range(6):
            t = ci[ok] * 6 + j
            bary = barycentric(nodes[tets[t]], p)
            m = bary.min(axis=1)
            better = m > best_min
            best_min = np.where(better, m, best_min)
            best_t = np.where(better, t, best_t)
            best_b = bary if best_b is None else np.where(better[:, None], bary, best_b)
        out_tet[ok] = best_t
        out_bary[ok] = best_b
    if (~ok).any():
        from scipy.spatial import cKDTree

        centroids = nodes[tets].mean(axis=1)
        _, t = cKDTree(centroids).query(points[~ok])
        out_tet[~ok] = t
        out_bary[~ok] = barycentric(nodes[tets[t]], points[~ok])
        outside = int((~ok).sum())
    return out_tet, out_bary, outside


def _orient(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """Swap two nodes of negatively oriented tetrahedra (positive volume for all)."""
    x = nodes[tets]
    vol = np.einsum("ij,ij->i", np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), x[:, 3] - x[:, 0])
    tets = tets.copy()
    neg = vol < 0
    tets[neg] = tets[neg][:, [0, 2, 1, 3]]
    return tets
