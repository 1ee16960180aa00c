"""Skull input for registration: load a skull surface, bring it to millimetres, refuse sizes that
no human skull has, and split a loose mandible from the cranium.

Holes and open rims are accepted: registration (:mod:`medface_forensic.register`) works on
points. Whether the surface is *shaped* like a skull is judged later, by the registration
residual (see :func:`medface_forensic.register.register_skull`).

::

    skull = load_skull("skull.obj", scale=10.0)
    skull.mandible_present, skull.size.length_mm
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError, ParameterError

from .skull_size import UNIT_FACTORS

# Largest principal extent of a skull: a cranium alone is about 165-200 mm long (glabella-
# opisthocranion, Martin & Saller 1957); with the mandible the vertex-menton height reaches about
# 230 mm. The diagonal of the principal box covers both.
LENGTH_MM = (140.0, 300.0)
DIAGONAL_MM = (200.0, 420.0)
TYPICAL_LENGTH_MM = 190.0
# A loose mandible: largest extent (bicondylar breadth or length) and area relative to the rest.
MANDIBLE_EXTENT_MM = (60.0, 160.0)
MANDIBLE_AREA_FRACTION = (0.03, 0.5)
MANDIBLE_GAP_MM = 30.0  # its nearest vertex lies at most this far from the cranium
MANDIBLE_HOLLOW = 0.12  # a U shape: its centroid lies away from its own surface (fraction of extent)


@dataclass
class SkullSize:
    """Extents along the principal axes (largest first), in mm after scaling."""

    extents_mm: np.ndarray

    @property
    def length_mm(self) -> float:
        return float(self.extents_mm[0])

    @property
    def diagonal_mm(self) -> float:
        return float(np.linalg.norm(self.extents_mm))


@dataclass
class SkullInput:
    """A skull ready for registration (all coordinates in mm).

    ``mesh`` is the whole input (every component); ``mandible`` the component recognised as a
    separate mandible, or None (absent, or fused to the cranium: registration then decides).
    """

    mesh: SurfaceMesh
    mandible: SurfaceMesh | None
    size: SkullSize
    components: int
    scale: float
    warnings: list[str] = field(default_factory=list)

    @property
    def mandible_present(self) -> bool:
        return self.mandible is not None


def principal_extents(points: np.ndarray) -> np.ndarray:
    """Extents of a point set along its principal axes, largest first (pose independent)."""
    centred = points - points.mean(0)
    _, _, axes = np.linalg.svd(centred[:: max(1, len(points) // 20000)], full_matrices=False)
    return np.sort(np.ptp(centred @ axes.T, axis=0))[::-1]


def scale_hint(length: float) -> str:
    """A ``--scale`` suggestion for a skull whose largest extent is ``length`` in file units."""
    if not length > 0:
        return "the mesh has no extent: check the file"
    lo, hi = LENGTH_MM
    fits = [(unit, f) for unit, f in UNIT_FACTORS.items() if f != 1.0 and lo <= length * f <= hi]
    if fits:
        unit, factor = min(fits, key=lambda kv: abs(np.log(length * kv[1] / TYPICAL_LENGTH_MM)))
        return f"if the file is in {unit}, pass --scale {factor:g}"
    return f"pass --scale {TYPICAL_LENGTH_MM / length:.4g} (scales the largest extent to a typical {TYPICAL_LENGTH_MM:.0f} mm)"


def check_size(size: SkullSize, scale: float) -> None:
    """Raise :class:`InputError` when the size is not a human skull's, with a ``--scale`` hint."""
    length, diagonal = size.length_mm, size.diagonal_mm
    ok = LENGTH_MM[0] <= length <= LENGTH_MM[1] and DIAGONAL_MM[0] <= diagonal <= DIAGONAL_MM[1]
    if ok:
        return
    raw = length / scale
    raise InputError(
        f"the skull's largest extent is {length:.4g} mm (diagonal {diagonal:.4g} mm) at scale {scale:g}; "
        f"a human skull measures {LENGTH_MM[0]:.0f}-{LENGTH_MM[1]:.0f} mm (diagonal "
        f"{DIAGONAL_MM[0]:.0f}-{DIAGONAL_MM[1]:.0f} mm)",
        hint=f"the file's largest extent is {raw:.4g} units; {scale_hint(raw)}")


def split_components(mesh: SurfaceMesh) -> list[SurfaceMesh]:
    """Connected components (by shared vertices), largest area first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = mesh.faces
    n = mesh.n_vertices
    rows = np.concatenate([f[:, 0], f[:, 1]])
    cols = np.concatenate([f[:, 1], f[:, 2]])
    _, labels = connected_components(coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n)),
                                     directed=False)
    face_label = labels[f[:, 0]]
    parts = []
    for label in np.unique(face_label):
        faces = f[face_label == label]
        used, inverse = np.unique(faces.ravel(), return_inverse=True)
        parts.append(SurfaceMesh(mesh.vertices[used], inverse.reshape(-1, 3), name=f"{mesh.name}#{label}"))
    return sorted(parts, key=lambda p: -p.area())


def looks_like_mandible(candidate: SurfaceMesh, cranium: SurfaceMesh) -> bool:
    """A separate mandible: of mandible size and relative area, U-shaped (its centroid lies
    away from its own surface), and next to the cranium."""
    from scipy.spatial import cKDTree

    extent = principal_extents(candidate.vertices)[0]
    if not MANDIBLE_EXTENT_MM[0] <= extent <= MANDIBLE_EXTENT_MM[1]:
        return False
    fraction = candidate.area() / max(cranium.area(), 1e-12)
    if not MANDIBLE_AREA_FRACTION[0] <= fraction <= MANDIBLE_AREA_FRACTION[1]:
        return False
    hollow = cKDTree(candidate.vertices).query(candidate.vertices.mean(0))[0] / extent
    if hollow < MANDIBLE_HOLLOW:
        return False
    gap = cKDTree(cranium.vertices).query(candidate.vertices[:: max(1, candidate.n_vertices // 2000)])[0].min()
    return bool(gap <= MANDIBLE_GAP_MM)


def prepare_skull(mesh: SurfaceMesh, scale: float = 1.0) -> SkullInput:
    """Scale a skull surface to mm, check its size and find a separate mandible."""
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
        raise ParameterError(f"must be a positive number, got {scale!r}", parameter="scale")
    if mesh is None or mesh.n_vertices == 0 or mesh.n_faces == 0:
        raise InputError("the skull mesh is empty (no vertices or no triangles)")
    mm = mesh.scaled(scale) if scale != 1.0 else mesh
    mm.name, mm.source = mesh.name, mesh.source
    size = SkullSize(principal_extents(mm.vertices[np.unique(mm.faces)]))
    check_size(size, scale)
    parts = split_components(mm)
    warnings = []
    mandible = None
    if len(parts) > 1:
        candidates = [p for p in parts[1:4] if looks_like_mandible(p, parts[0])]
        mandible = candidates[0] if candidates else None
        small = len(parts) - 1 - (mandible is not None)
        if small:
            warnings.append(f"{small} further component(s) (teeth, fragments or debris) are kept as skull points")
    return SkullInput(mm, mandible, size, len(parts), float(scale), warnings)


def load_skull(source, scale: float = 1.0) -> SkullInput:
    """Read a skull (STL, PLY, OBJ, VTP, VTK path, or a :class:`SurfaceMesh`) and prepare it.

    ``scale`` multiplies the coordinates into millimetres (10 for cm, 25.4 for inches).
    Raises :class:`InputError` for an empty or unreadable mesh and for an implausible size.
    """
    if isinstance(source, (str, os.PathLike)):
        from medface.io import read_mesh

        mesh = read_mesh(source)
    elif isinstance(source, SurfaceMesh):
        mesh = source
    else:
        raise ParameterError(f"expected a mesh path or SurfaceMesh, got {type(source).__name__}", parameter="skull")
    return prepare_skull(mesh, scale)
