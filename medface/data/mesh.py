"""`SurfaceMesh`: a triangle surface with vertices in LPS millimetres."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
    """Area-weighted unit vertex normals (following the faces' winding), for all vertices or
    only the vertex indices ``at`` (then ``faces`` may be just the faces around them)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    flat = f.ravel()
    n = np.stack([np.bincount(flat, weights=np.repeat(fn[:, axis], 3), minlength=len(v)) for axis in range(3)],
                 axis=1)
    if at is not None:
        n = n[at]
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def winds_inward(mesh: "SurfaceMesh") -> bool:
    """Whether a watertight surface's triangles wind inward (its signed volume is negative, so its
    face and vertex normals point into it).

    This is the one rule medface orients surfaces by (:func:`orient_outward`,
    :func:`outward_normals`). Only a watertight surface encloses a volume: an open one (with
    boundary edges) or a non-manifold one never counts as inward and keeps the winding it was
    given.
    """
    return mesh.signed_volume() < 0 and mesh.is_watertight()


def orient_outward(mesh: "SurfaceMesh") -> "SurfaceMesh":
    """The mesh itself when its faces wind outward (or it is not watertight), else a copy with every
    triangle's winding reversed (name, source and point data kept); see :func:`winds_inward`."""
    if not winds_inward(mesh):
        return mesh
    return SurfaceMesh(mesh.vertices, mesh.faces[:, ::-1].copy(), {k: x.copy() for k, x in mesh.point_data.items()},
                       name=mesh.name, source=mesh.source)


def outward_normals(mesh: "SurfaceMesh") -> np.ndarray:
    """Area-weighted unit vertex normals pointing out of a watertight surface, whatever its
    winding (an open surface's follow its winding); see :func:`winds_inward`."""
    normals = vertex_normals(mesh.vertices, mesh.faces)
    return -normals if winds_inward(mesh) else normals


#: what :func:`mesh_problems` looks for, in the order it reports
MESH_CHECKS = ("size", "open", "non_manifold", "components", "degenerate", "duplicate_vertices", "duplicate_faces",
               "unused_vertices", "winding", "inward")
LARGE_MESH_FACES = 5_000_000  # above this, processing a mesh takes long (an assumption, not a limit)


def unique_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each distinct row's first occurrence, row -> distinct row number) for a 2-D
    float64 array, rows compared by value (-0.0 equals 0.0, as ``np.unique`` compares them).

    One sort of a 64-bit hash per row (fast on millions of rows); every merge is verified value
    by value, and a hash collision (or NaN) falls back to ``np.unique(axis=0)``.
    """
    key = np.asarray(key, dtype=np.float64).reshape(len(key), -1)
    bits = np.ascontiguousarray(key + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
    digest = np.full(len(key), 0xCBF29CE484222325, dtype=np.uint64)
    for column in bits.T:  # FNV-1a style mixing, one 64-bit word per value
        digest = (digest ^ column) * np.uint64(0x100000001B3)
        digest ^= digest >> np.uint64(29)
    _, first, inverse = np.unique(digest, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    representative = first[inverse]
    if all(np.array_equal(key[representative, c], key[:, c]) for c in range(key.shape[1])):  # a column at a time
        return first, inverse
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return first, np.asarray(inverse).reshape(-1)


def mesh_problems(mesh: "SurfaceMesh", checks=MESH_CHECKS) -> list[str]:
    """Sentences naming what is wrong with a surface a user gave (an empty list when nothing is):
    very many triangles, holes, non-manifold edges, several components, degenerate (zero-area)
    triangles, duplicated vertices or triangles, unused vertices, neighbours with opposite
    winding (flipped normals), and an inward-wound closed surface. ``checks`` picks some of
    :data:`MESH_CHECKS`. Commands put these into their result's warnings; none is an error by
    itself, since what a command can work with differs (a cut needs a closed surface,
    a measurement does not). Time O(n log n) in the number of triangles."""
    unknown = set(checks) - set(MESH_CHECKS)
    if unknown:
        raise ValueError(f"unknown mesh checks {sorted(unknown)}; known: {', '.join(MESH_CHECKS)}")
    found = {name: finder(mesh) for name, finder in _PROBLEM_FINDERS.items() if name in checks}
    return [found[name] for name in MESH_CHECKS if found.get(name)]


def _size_problem(mesh) -> str:
    return (f"{mesh.n_faces:,} triangles: processing will be slow and need much memory (consider decimating the "
            "mesh)" if mesh.n_faces > LARGE_MESH_FACES else "")


def _edge_problems(mesh) -> tuple[str, str]:
    boundary, nonmanifold = mesh.edge_counts()
    return (f"open: {boundary:,} boundary edges (holes or open rims), so it encloses no volume" if boundary else "",
            f"{nonmanifold:,} non-manifold edges (shared by more than two triangles)" if nonmanifold else "")


def _components_problem(mesh) -> str:
    count = mesh.n_components()
    return f"{count} separate components (loose parts or fragments)" if count > 1 else ""


def _degenerate_problem(mesh) -> str:
    v, f = mesh.vertices, mesh.faces
    scale = float(np.max(mesh.extent)) if mesh.n_vertices else 0.0
    doubled = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    flat = (doubled <= 1e-12 * scale * scale) | (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    count = int(flat.sum())
    return (f"{count:,} degenerate triangles (zero area: repeated or collinear corners), first at face "
            f"{int(np.argmax(flat))}" if count else "")


def _duplicate_vertex_problem(mesh) -> str:
    first, _ = unique_rows(mesh.vertices)
    count = mesh.n_vertices - len(first)
    return (f"{count:,} duplicated vertices (at exactly the same place as another), so the surface may be split "
            "along them" if count else "")


def _duplicate_face_problem(mesh) -> str:
    first, _ = unique_rows(np.sort(mesh.faces, axis=1).astype(np.float64))
    count = mesh.n_faces - len(first)
    return f"{count:,} duplicated triangles (the same three vertices as another)" if count else ""


def _unused_vertex_problem(mesh) -> str:
    used = np.zeros(mesh.n_vertices, bool)
    used[mesh.faces.ravel()] = True
    count = int((~used).sum())
    return f"{count:,} vertices used by no triangle" if count else ""


def _winding_problem(mesh) -> str:
    """Edges that two triangles traverse in the same direction: their normals disagree."""
    f = mesh.faces
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64)
    keys = directed[:, 0] * np.int64(max(mesh.n_vertices, 1)) + directed[:, 1]
    _, counts = np.unique(keys, return_counts=True)
    count = int((counts > 1).sum())
    return (f"{count:,} edges where neighbouring triangles wind in opposite directions (flipped normals)"
            if count else "")


def _inward_problem(mesh) -> str:
    return ("the triangles wind inward (the normals point into the closed surface); medface orients it outward "
            "where it needs to" if winds_inward(mesh) else "")


_PROBLEM_FINDERS = {
    "size": _size_problem, "open": lambda m: _edge_problems(m)[0], "non_manifold": lambda m: _edge_problems(m)[1],
    "components": _components_problem, "degenerate": _degenerate_problem,
    "duplicate_vertices": _duplicate_vertex_problem, "duplicate_faces": _duplicate_face_problem,
    "unused_vertices": _unused_vertex_problem, "winding": _winding_problem, "inward": _inward_problem,
}


@dataclass(eq=False)
class SurfaceMesh:
    """A triangle mesh: ``vertices`` (N, 3) float64 in LPS mm, ``faces`` (M, 3) int64.

    ``point_data`` holds per-vertex arrays (for example a signed distance in mm or a standard
    deviation); each has N rows.
    """

    vertices: np.ndarray
    faces: np.ndarray
    point_data: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    source: str | None = None

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        faces = np.asarray(self.faces)
        if faces.size == 0:
            faces = faces.reshape(0, 3)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        self.validate()
        self.point_data = {k: np.asarray(v) for k, v in self.point_data.items()}
        for key, values in self.point_data.items():
            if len(values) != len(self.vertices):
                raise InputError(
                    f"point data '{key}' has {len(values)} values for {len(self.vertices)} vertices", path=self.source
                )

    def validate(self) -> None:
        v, f = self.vertices, self.faces
        if v.ndim != 2 or v.shape[1] != 3:
            raise InputError(f"vertices must be an (N, 3) array, got shape {v.shape}", path=self.source)
        if f.ndim != 2 or f.shape[1] != 3:
            raise InputError(f"faces must be an (M, 3) array of triangles, got shape {f.shape}", path=self.source)
        if len(v) == 0 or len(f) == 0:
            raise InputError("the mesh is empty (no vertices or no triangles)", path=self.source)
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            where = np.flatnonzero(bad)
            named = ", ".join(str(i) for i in where[:5]) + (", ..." if len(where) > 5 else "")
            raise InputError(
                f"1 vertex has NaN or infinite coordinates (vertex index {named})" if len(where) == 1 else
                f"{len(where):,} vertices have NaN or infinite coordinates (vertex indices {named})",
                path=self.source,
                hint="repair or re-export the mesh",
            )
        if f.min() < 0 or f.max() >= len(v):
            raise InputError(
                f"faces refer to vertex indices outside 0..{len(v) - 1}", path=self.source
            )

    # properties -------------------------------------------------------------------------
    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    def bounds(self) -> np.ndarray:
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    @property
    def extent(self) -> np.ndarray:
        b = self.bounds()
        return b[1] - b[0]

    def face_normals(self) -> np.ndarray:
        v = self.vertices
        n = np.cross(v[self.faces[:, 1]] - v[self.faces[:, 0]], v[self.faces[:, 2]] - v[self.faces[:, 0]])
        length = np.linalg.norm(n, axis=1, keepdims=True)
        return n / np.where(length > 0, length, 1.0)

    def area(self) -> float:
        v = self.vertices
        n = np.cross(v[self.faces[:, 1]] - v[self.faces[:, 0]], v[self.faces[:, 2]] - v[self.faces[:, 0]])
        return float(0.5 * np.linalg.norm(n, axis=1).sum())

    def signed_volume(self) -> float:
        """Enclosed volume in mm^3 (positive when faces wind outward); meaningful if watertight."""
        v = self.vertices
        a, b, c = v[self.faces[:, 0]], v[self.faces[:, 1]], v[self.faces[:, 2]]
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Unique undirected edges (K, 2), sorted, and how many triangles share each."""
        f = self.faces
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        n = np.int64(max(self.n_vertices, 1))
        keys, counts = np.unique(edges[:, 0] * n + edges[:, 1], return_counts=True)  # one int per edge: fast
        return np.stack([keys // n, keys % n], axis=1), counts

    def boundary_edges(self) -> np.ndarray:
        """Edges used by one triangle only (the rims of holes), as vertex index pairs."""
        edges, counts = self._edges()
        return edges[counts == 1]

    def edge_counts(self) -> tuple[int, int]:
        """(number of boundary edges, number of non-manifold edges)."""
        _, counts = self._edges()
        return int((counts == 1).sum()), int((counts > 2).sum())

    def is_watertight(self) -> bool:
        boundary, nonmanifold = self.edge_counts()
        return boundary == 0 and nonmanifold == 0

    def n_components(self) -> int:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        f = self.faces
        rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
        cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
        n = self.n_vertices
        graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
        used = np.zeros(n, bool)
        used[f.ravel()] = True
        count, labels = connected_components(graph, directed=False)
        return int(len(np.unique(labels[used])))

    # transforms -------------------------------------------------------------------------
    def transformed(self, matrix: np.ndarray) -> "SurfaceMesh":
        """A copy moved by a 4x4 homogeneous matrix (faces flipped if it mirrors)."""
        m = np.asarray(matrix, float)
        v = self.vertices @ m[:3, :3].T + m[:3, 3]
        faces = self.faces.copy()
        if np.linalg.det(m[:3, :3]) < 0:
            faces = faces[:, ::-1].copy()
        return SurfaceMesh(v, faces, {k: x.copy() for k, x in self.point_data.items()}, name=self.name)

    def scaled(self, factor: float) -> "SurfaceMesh":
        m = np.eye(4)
        m[:3, :3] *= float(factor)
        return self.transformed(m)

    # conversions ------------------------------------------------------------------------
    def to_trimesh(self):
        import trimesh

        return trimesh.Trimesh(self.vertices.copy(), self.faces.copy(), process=False)

    @classmethod
    def from_trimesh(cls, mesh, *, name: str = "", source: str | None = None) -> "SurfaceMesh":
        return cls(np.asarray(mesh.vertices), np.asarray(mesh.faces), name=name, source=source)

    def to_pyvista(self):
        import pyvista as pv

        cells = np.hstack([np.full((self.n_faces, 1), 3, np.int64), self.faces]).ravel()
        poly = pv.PolyData(self.vertices.copy(), cells)
        for key, values in self.point_data.items():
            poly.point_data[key] = values
        return poly

    @classmethod
    def from_pyvista(cls, poly, *, name: str = "", source: str | None = None) -> "SurfaceMesh":
        """From a pyvista/VTK data set; polygons are triangulated and other cells dropped."""
        import pyvista as pv

        if not isinstance(poly, pv.PolyData):
            poly = poly.extract_surface()
        if poly.n_points == 0:
            raise InputError("the mesh has no points", path=source)
        if not poly.is_all_triangles:
            poly = poly.triangulate()
        faces = np.asarray(poly.faces).reshape(-1, 4)
        if len(faces) and not np.all(faces[:, 0] == 3):
            raise InputError("could not triangulate the mesh", path=source)
        point_data = {}
        for key in poly.point_data.keys():  # a name that is not UTF-8 comes back as bytes
            name = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)
            values = np.asarray(poly.point_data[key])
            if not name.startswith("vtk") and len(values) == poly.n_points:
                point_data[name] = values
        return cls(np.asarray(poly.points, dtype=np.float64), faces[:, 1:], point_data, name=name, source=source)

    def describe(self) -> dict:
        boundary, nonmanifold = self.edge_counts()
        b = self.bounds()
        return {
            "vertices": self.n_vertices,
            "triangles": self.n_faces,
            "bounds_min_mm": b[0].round(4).tolist(),
            "bounds_max_mm": b[1].round(4).tolist(),
            "extent_mm": (b[1] - b[0]).round(4).tolist(),
            "area_mm2": round(self.area(), 3),
            "watertight": boundary == 0 and nonmanifold == 0,
            "boundary_edges": boundary,
            "non_manifold_edges": nonmanifold,
            "components": self.n_components(),
            "volume_mm3": round(abs(self.signed_volume()), 3) if boundary == 0 else None,
            "point_data": sorted(self.point_data),
        }

    def __repr__(self) -> str:
        return f"SurfaceMesh(name={self.name!r}, vertices={self.n_vertices}, faces={self.n_faces})"
