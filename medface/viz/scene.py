"""`Scene`: what to draw (meshes, landmarks, planes, CT slices), independent of where it is drawn.

A scene holds prepared pyvista data sets (normals computed once) and their styles; the
renderers in :mod:`medface.viz.render` draw it into a PNG, a window, panels or an HTML file, as
many times as needed. pyvista is imported when the first item is added, not when medface is.

::

    from medface import io
    from medface.viz import Scene, render_png

    scene = Scene().add_mesh(io.read("skin.ply"), color="skin")
    scene.add_landmarks(io.read("landmarks.mrk.json"))
    render_png(scene, "frontal.png", view="frontal")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.landmarks import Landmarks
from ..data.mesh import SurfaceMesh
from ..data.mesh import vertex_normals as _vertex_normals
from ..data.volume import Volume
from ..errors import InputError, ParameterError

#: named colours used by medface figures (RGB in 0..1); any matplotlib/pyvista colour name works too
COLORS = {
    "skin": (0.87, 0.68, 0.58),
    "bone": (0.93, 0.91, 0.84),
    "landmark": (0.85, 0.10, 0.10),
    "plane": (0.30, 0.55, 0.90),
    "outline": (1.00, 0.85, 0.10),
}

PLANES = ("axial", "coronal", "sagittal")
_PLANE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # the LPS axis normal to each plane


def resolve_color(color) -> tuple[float, float, float]:
    """RGB in 0..1 from a medface colour name, any pyvista colour name, hex or an RGB triple."""
    if isinstance(color, str) and color in COLORS:
        return COLORS[color]
    if isinstance(color, (tuple, list, np.ndarray)) and len(color) == 3:
        c = np.asarray(color, float)
        if c.max() > 1.0:
            c = c / 255.0
        return tuple(float(x) for x in np.clip(c, 0, 1))
    import pyvista as pv

    try:
        return tuple(float(x) for x in pv.Color(color).float_rgb)
    except ValueError as exc:
        raise ParameterError(f"unknown colour {color!r}: {exc}", parameter="color") from None


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals as float32, as VTK wants them."""
    return _vertex_normals(vertices, faces).astype(np.float32)


def _polydata(vertices: np.ndarray, faces: np.ndarray, *, normals: bool = True):
    """A pyvista PolyData built without copies, with point normals set once."""
    import pyvista as pv

    cells = np.empty((len(faces), 4), dtype=np.int64)
    cells[:, 0] = 3
    cells[:, 1:] = faces
    poly = pv.PolyData(np.ascontiguousarray(vertices, dtype=np.float64), cells.ravel(), deep=False)
    if normals:
        poly.point_data.set_array(vertex_normals(vertices, faces), "Normals")
        poly.point_data.active_normals_name = "Normals"
    return poly


@dataclass
class Item:
    """One drawable: a pyvista data set and its style (``kind``: surface, lines, points, labels)."""

    kind: str
    data: Any
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    opacity: float = 1.0
    scalars: str | None = None
    cmap: str | None = None
    clim: tuple[float, float] | None = None
    scalar_bar_title: str | None = None
    labels: list[str] = field(default_factory=list)
    size: float = 1.0  # line width, point size or label font size
    name: str = ""

    def bounds(self) -> np.ndarray | None:
        if self.kind == "labels":
            pts = np.asarray(self.data)
            return np.stack([pts.min(0), pts.max(0)]) if len(pts) else None
        if self.data.n_points == 0:
            return None
        return np.asarray(self.data.bounds, float).reshape(3, 2).T


class Scene:
    """A list of things to draw, each with its style; methods return ``self`` so they chain."""

    def __init__(self, *, background: str | tuple = "white"):
        self.items: list[Item] = []
        self.background = background

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{i.kind}:{i.name}" for i in self.items)
        return f"Scene({kinds})"

    # meshes -----------------------------------------------------------------------------
    def add_mesh(self, mesh: SurfaceMesh, *, color="skin", opacity: float = 1.0, scalars=None,
                 cmap: str | None = None, clim=None, diverging: bool = False,
                 scalar_bar_title: str = "mm", name: str | None = None) -> "Scene":
        """Add a surface. ``scalars`` colours it per vertex: the name of one of the mesh's
        ``point_data`` arrays or an array of N values (a colour bar titled ``scalar_bar_title``
        is drawn). ``diverging=True`` uses a blue-white-red map centred at 0 with symmetric
        limits, for signed distances."""
        if not isinstance(mesh, SurfaceMesh):
            raise ParameterError(f"add_mesh needs a SurfaceMesh, got {type(mesh).__name__}", parameter="mesh")
        mesh.validate()
        if not 0.0 <= float(opacity) <= 1.0:
            raise ParameterError(f"opacity must be in [0, 1], got {opacity}", parameter="opacity")
        poly = _polydata(mesh.vertices, mesh.faces)
        item = Item("surface", poly, resolve_color(color), float(opacity), name=name or mesh.name or "mesh")
        if scalars is not None:
            if isinstance(scalars, str):
                if scalars not in mesh.point_data:
                    have = ", ".join(sorted(mesh.point_data)) or "none"
                    raise ParameterError(f"mesh {mesh.name or ''!s} has no point data {scalars!r} (has: {have})",
                                         parameter="scalars")
                values, label = np.asarray(mesh.point_data[scalars]), scalars
            else:
                values, label = np.asarray(scalars), "scalars"
            values = values.astype(np.float64)
            if values.ndim != 1 or len(values) != mesh.n_vertices:
                raise ParameterError(f"scalars need one value per vertex ({mesh.n_vertices}), got shape {values.shape}",
                                     parameter="scalars")
            finite = values[np.isfinite(values)]
            if clim is None:
                if diverging:
                    m = float(np.abs(finite).max()) if finite.size else 1.0
                    clim = (-m or -1.0, m or 1.0)
                else:
                    clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            elif np.isscalar(clim):
                clim = (-abs(float(clim)), abs(float(clim)))
            clim = (float(clim[0]), float(clim[1]))
            if not clim[0] < clim[1]:
                clim = (clim[0] - 0.5, clim[1] + 0.5)
            poly.point_data[label] = values
            item.scalars, item.clim = label, clim
            item.cmap = cmap or ("RdBu_r" if diverging else "viridis")
            item.scalar_bar_title = scalar_bar_title
        self.items.append(item)
        return self

    def add_lines(self, poly, *, color="outline", width: float = 3.0, name: str = "lines") -> "Scene":
        """Add a pyvista PolyData of line cells (for example cut contours)."""
        self.items.append(Item("lines", poly, resolve_color(color), 1.0, size=float(width), name=name))
        return self

    # landmarks --------------------------------------------------------------------------
    def add_landmarks(self, landmarks: Landmarks, *, labels: bool = True, color="landmark", size: float = 2.0,
                      ids=None, font_size: int = 12, name: str = "landmarks") -> "Scene":
        """Add landmarks as spheres of radius ``size`` mm, with their ids as text labels.
        ``ids`` keeps only those landmarks (unknown ids raise :class:`ParameterError`)."""
        import pyvista as pv

        if not isinstance(landmarks, Landmarks):
            raise ParameterError(f"add_landmarks needs Landmarks, got {type(landmarks).__name__}",
                                 parameter="landmarks")
        if ids is not None:
            missing = [i for i in ids if i not in landmarks]
            if missing:
                raise ParameterError(f"no landmark(s) {', '.join(missing)} in {landmarks.name or 'the set'}",
                                     parameter="ids")
            landmarks = landmarks.subset(ids)
        if len(landmarks) == 0:
            raise InputError("the landmark set is empty", path=landmarks.source)
        if not size > 0:
            raise ParameterError(f"landmark size must be > 0 mm, got {size}", parameter="size")
        sphere = pv.Sphere(radius=float(size), theta_resolution=12, phi_resolution=12)
        glyphs = pv.PolyData(landmarks.points.copy()).glyph(geom=sphere, scale=False, orient=False)
        glyphs = glyphs.compute_normals(cell_normals=False, split_vertices=False)
        self.items.append(Item("surface", glyphs, resolve_color(color), 1.0, name=name))
        if labels:
            self.items.append(Item("labels", landmarks.points.copy(), (0.1, 0.1, 0.1), labels=list(landmarks.ids),
                                   size=float(font_size), name=f"{name} labels"))
        return self

    # planes -----------------------------------------------------------------------------
    def add_plane(self, center, normal, size: float = 150.0, *, color="plane", opacity: float = 0.4,
                  name: str = "plane") -> "Scene":
        """Add a square plane of side ``size`` mm through ``center`` with unit ``normal`` (LPS)."""
        import pyvista as pv

        center, normal = np.asarray(center, float), np.asarray(normal, float)
        if center.shape != (3,) or normal.shape != (3,) or not np.linalg.norm(normal) > 0:
            raise ParameterError("a plane needs a 3D centre and a non-zero 3D normal", parameter="normal")
        plane = pv.Plane(center=center, direction=normal / np.linalg.norm(normal), i_size=size, j_size=size,
                         i_resolution=1, j_resolution=1).triangulate()
        self.items.append(Item("surface", plane, resolve_color(color), float(opacity), name=name))
        return self

    # volumes ----------------------------------------------------------------------------
    def add_volume_slices(self, volume: Volume, planes=PLANES, *, window=None, positions=None, meshes=(),
                          outline_colors=None, cmap: str = "gray", outline_width: float = 3.0) -> "Scene":
        """Add CT slices in their physical positions (origin, spacing and direction kept).

        ``planes`` picks among axial, coronal and sagittal: each is the index plane whose
        normal is closest to z, y or x. ``positions`` maps a plane to an LPS coordinate in mm
        along that axis (default: the volume's centre). ``window = (lo, hi)`` maps values to
        grey (default: -200..1300 HU for CT, else the 1st..99th percentile). ``meshes`` are
        outlined on every slice (their cut contours).
        """
        if not isinstance(volume, Volume):
            raise ParameterError(f"add_volume_slices needs a Volume, got {type(volume).__name__}", parameter="volume")
        planes = (planes,) if isinstance(planes, str) else tuple(planes)
        bad = [p for p in planes if p not in PLANES]
        if bad or not planes:
            raise ParameterError(f"unknown plane(s) {bad}; use some of: {', '.join(PLANES)}", parameter="planes")
        if window is None:
            window = default_window(volume)
        lo, hi = (float(w) for w in window)
        if not lo < hi:
            raise ParameterError(f"window must be (lo, hi) with lo < hi, got {window}", parameter="window")
        positions = dict(positions or {})
        meshes = [m for m in meshes]
        outline_colors = list(outline_colors or [])
        cut_sources = [_polydata(m.vertices, m.faces, normals=False) for m in meshes]
        for plane in planes:
            grid, origin, normal = _slice_grid(volume, plane, positions.get(plane))
            self.items.append(Item("surface", grid, (1, 1, 1), 1.0, scalars="value", cmap=cmap, clim=(lo, hi),
                                   name=f"{plane} slice"))
            for n, source in enumerate(cut_sources):
                cut = source.slice(normal=normal, origin=origin)
                if cut.n_points:
                    color = outline_colors[n] if n < len(outline_colors) else "outline"
                    # one copy on each side of the slice, so the contour never hides inside it
                    shift = 0.3 * min(volume.spacing) * np.asarray(normal)
                    for sign in (1.0, -1.0):
                        moved = cut.copy()
                        moved.points = np.asarray(cut.points) + sign * shift
                        self.add_lines(moved, color=color, width=outline_width, name=f"{plane} outline {n}")
        return self

    # geometry ---------------------------------------------------------------------------
    def bounds(self) -> np.ndarray:
        """LPS bounds ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of everything in the scene."""
        boxes = [b for b in (i.bounds() for i in self.items) if b is not None]
        if not boxes:
            raise InputError("the scene is empty: add a mesh, landmarks or a volume first")
        boxes = np.array(boxes)
        return np.stack([boxes[:, 0].min(0), boxes[:, 1].max(0)])


def looks_like_ct(volume: Volume) -> bool:
    """True for volumes in Hounsfield units (``units == "HU"`` or air near -1000 and bone above 300)."""
    if volume.units.upper() == "HU":
        return True
    a = volume.array
    step = max(1, a.size // 2_000_000)
    sample = a.reshape(-1)[::step]
    return bool(sample.min() <= -700 and sample.max() >= 300 and np.issubdtype(a.dtype, np.number))


def default_window(volume: Volume) -> tuple[float, float]:
    if looks_like_ct(volume):
        return (-200.0, 1300.0)
    a = volume.array.reshape(-1)[:: max(1, volume.array.size // 2_000_000)].astype(float)
    lo, hi = np.percentile(a, [1, 99])
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)


def _slice_grid(volume: Volume, plane: str, position: float | None):
    """A PolyData of one index plane at its physical place, with the voxel values as 'value'."""
    world_axis = _PLANE_AXIS[plane]
    index_axis = int(np.argmax(np.abs(volume.direction[world_axis, :])))  # i, j or k closest to the axis
    n_ijk = volume.shape_ijk
    if position is None:
        index = (n_ijk[index_axis] - 1) // 2
    else:
        centre = volume.index_to_physical([(n - 1) / 2.0 for n in n_ijk])
        point = centre.copy()
        point[world_axis] = float(position)
        index = int(round(volume.physical_to_index(point[None])[0][index_axis]))
        if not 0 <= index < n_ijk[index_axis]:
            raise ParameterError(f"{plane} position {position} mm is outside the volume", parameter="positions")
    # array is [k, j, i]; take the 2D slab and the two in-plane index axes
    a = volume.array
    slab = np.take(a, index, axis=2 - index_axis)  # remaining axes in array order
    in_plane = [ax for ax in (0, 1, 2) if ax != index_axis]  # index axes, ascending (i before j before k)
    # slab axes are (higher index axis, lower index axis) because the array is reversed
    u_ax, v_ax = in_plane  # u = lower axis (columns), v = higher axis (rows)
    nu, nv = n_ijk[u_ax], n_ijk[v_ax]
    if nu < 2 or nv < 2:
        raise InputError(f"the volume is too thin for a {plane} slice ({nu} x {nv} voxels)", path=volume.source)
    uu, vv = np.meshgrid(np.arange(nu), np.arange(nv), indexing="xy")  # shape (nv, nu)
    ijk = np.zeros((nv * nu, 3))
    ijk[:, u_ax] = uu.ravel()
    ijk[:, v_ax] = vv.ravel()
    ijk[:, index_axis] = index
    pts = volume.index_to_physical(ijk)
    corner = (np.arange(nv - 1)[:, None] * nu + np.arange(nu - 1)[None, :]).ravel()
    a0, a1, a2, a3 = corner, corner + 1, corner + 1 + nu, corner + nu
    faces = np.concatenate([np.column_stack([a0, a1, a2]), np.column_stack([a0, a2, a3])])
    poly = _polydata(pts, faces, normals=False)
    poly.point_data["value"] = np.asarray(slab, dtype=np.float32).ravel()
    origin = volume.index_to_physical([[index if ax == index_axis else 0 for ax in range(3)]])[0]
    normal = volume.direction[:, index_axis]
    return poly, origin, normal
