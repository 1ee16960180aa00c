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
            raise InputError(
                f"{int(bad.sum())} vertices have NaN or infinite coordinates (first at index {int(np.argmax(bad))})",
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
        point_data = {k: np.asarray(poly.point_data[k]) for k in poly.point_data.keys()
                      if not k.startswith("vtk") and len(poly.point_data[k]) == poly.n_points}
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
