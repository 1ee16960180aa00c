"""Anatomical camera views in the patient's LPS frame (x = patient's left, y = posterior, z = superior).

Every view keeps the head upright and one fixed rule for the patient's sides (see
``docs/viewing.md``):

==================== ========================== ========= ===================================
view                 camera sits at (from focus) view-up   what appears on the image's right
==================== ========================== ========= ===================================
frontal              anterior (-y)               +z        the patient's left (as facing them)
posterior            posterior (+y)              +z        the patient's right
left                 patient's left (+x)         +z        posterior (the face looks left)
right                patient's right (-x)        +z        anterior (the face looks right)
three_quarter_left   anterior-left (+x, -y)      +z        the patient's left / back of the head
three_quarter_right  anterior-right (-x, -y)     +z        the face (and the patient's left)
superior             above (+z)                  -y        the patient's right (anterior up)
inferior             below (-z)                  -y        the patient's left (anterior up,
                                                           the radiological axial convention)
==================== ========================== ========= ===================================

The views around the head (view-up +z) also have a **yaw** (:func:`view_yaw`): the angle of
the camera about the head's vertical axis from the frontal view, positive toward the patient's
left (``left`` = 90°, ``three_quarter_right`` = -45°). The phantom's photos turn their
perspective camera by it.

Pixels (:meth:`Camera.project`, and every 2D landmark medface stores, such as
``FaceImage.landmarks_2d``) are ``(x, y) = (column, row)`` with x to the right, y down and the
origin at the top-left **corner** of the top-left pixel: pixel ``[row, col]`` covers
``col <= x < col + 1`` and ``row <= y < row + 1``, its centre is ``(col + 0.5, row + 0.5)``,
and the pixel holding ``(x, y)`` is ``pixels[int(y), int(x)]``. This is VTK's display
convention (with the row counted from the top), so projected points land exactly where VTK
draws them. See ``docs/viewing.md``.

This module is pure numpy: it never imports pyvista or VTK.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

_S = 1.0 / np.sqrt(2.0)

#: view name -> (unit vector from the focal point to the camera, view-up), in LPS
VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "frontal": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "three_quarter_left": ((_S, -_S, 0.0), (0.0, 0.0, 1.0)),
    "three_quarter_right": ((-_S, -_S, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
}

#: a short caption for each view
VIEW_TITLES = {
    "frontal": "frontal", "posterior": "posterior", "left": "left lateral", "right": "right lateral",
    "three_quarter_left": "three-quarter left", "three_quarter_right": "three-quarter right",
    "superior": "superior", "inferior": "inferior",
}


def check_view(view: str, known=None, *, parameter: str = "view") -> str:
    """Return ``view`` if it is a known view name (of ``known``, default all :data:`VIEWS`), else
    raise :class:`ParameterError` listing the known ones."""
    known = VIEWS if known is None else known
    if view not in known:
        raise ParameterError(f"unknown view {view!r}; use one of: {', '.join(known)}", parameter=parameter)
    return view


def view_yaw(view: str) -> float:
    """Degrees the ``view``'s camera is turned about the head's vertical axis from the frontal
    view, positive toward the patient's left (``left`` = 90, ``right`` = -90, ``posterior`` =
    180). Only views around the head (view-up +z) have one."""
    to_camera, up = VIEWS[check_view(view)]
    if tuple(up) != (0.0, 0.0, 1.0):
        raise ParameterError(f"the {view} view looks along the head's vertical axis and has no yaw", parameter="view")
    return float(np.degrees(np.arctan2(to_camera[0], -to_camera[1])))


def as_bounds(bounds) -> np.ndarray:
    """``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` from that form or VTK's 6-tuple."""
    b = np.asarray(bounds, dtype=float)
    if b.shape == (6,):
        b = b.reshape(3, 2).T
    if b.shape != (2, 3) or not np.all(np.isfinite(b)):
        raise ParameterError(f"bounds must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] or a VTK 6-tuple, got {bounds!r}",
                             parameter="bounds")
    return np.stack([b.min(0), b.max(0)])


@dataclass(frozen=True)
class Camera:
    """A camera in LPS mm: position, focal point and view-up, parallel or perspective.

    ``view`` is the anatomical view it was made for (a :data:`VIEWS` name) or ``""`` for a
    free camera. ``parallel_scale`` is half the height of the view in mm (parallel
    projection); ``view_angle`` the vertical angle in degrees (perspective). VTK's cameras
    and medface's renderers (``medface.viz``, the phantom's photos) take these values as they are.
    """

    view: str
    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    view_up: tuple[float, float, float]
    parallel: bool = True
    parallel_scale: float = 1.0
    view_angle: float = 30.0

    @property
    def direction(self) -> np.ndarray:
        """Unit direction of projection (from the camera to the focal point)."""
        d = np.subtract(self.focal_point, self.position)
        return d / np.linalg.norm(d)

    @property
    def right(self) -> np.ndarray:
        """World direction that points to the image's right."""
        r = np.cross(self.direction, self.view_up)
        return r / np.linalg.norm(r)

    @property
    def up(self) -> np.ndarray:
        """World direction that points to the image's top (``view_up`` made perpendicular to
        the direction of projection, as VTK does)."""
        return np.cross(self.right, self.direction)

    def as_pyvista(self) -> list:
        return [tuple(self.position), tuple(self.focal_point), tuple(self.view_up)]

    def depth(self, points) -> np.ndarray:
        """Distance (mm) of LPS points from the camera along the direction of projection."""
        return (np.atleast_2d(np.asarray(points, float)) - np.asarray(self.position, float)) @ self.direction

    def project(self, points, size: tuple[int, int]) -> np.ndarray:
        """Pixel ``(x, y)`` of LPS points in an image of ``size = (width, height)``.

        x to the right, y down, origin at the top-left corner of the top-left pixel (the
        module's pixel convention: the pixel holding ``(x, y)`` is ``pixels[int(y), int(x)]``).
        Exact for parallel cameras; perspective cameras are pinholes with ``view_angle``.
        """
        p = np.atleast_2d(np.asarray(points, float)) - np.asarray(self.focal_point)
        w, h = size
        x, y = p @ self.right, p @ self.up
        if self.parallel:
            half = self.parallel_scale
            sx, sy = x / half, y / half
        else:
            depth = np.linalg.norm(np.subtract(self.focal_point, self.position)) + p @ self.direction
            t = np.tan(np.radians(self.view_angle) / 2.0)
            sx, sy = x / (depth * t), y / (depth * t)
        col = w / 2.0 + sx * h / 2.0
        row = h / 2.0 - sy * h / 2.0
        return np.column_stack([col, row])


def perspective_camera(focal_point, to_camera, view_up, *, distance: float, view_angle: float,
                       view: str = "") -> Camera:
    """A perspective camera ``distance`` mm from ``focal_point`` along the unit vector
    ``to_camera``, looking back at it, with a vertical ``view_angle`` in degrees."""
    focal = np.asarray(focal_point, float)
    position = focal + distance * np.asarray(to_camera, float)
    return Camera(view, tuple(position), tuple(focal), tuple(np.asarray(view_up, float)), parallel=False,
                  view_angle=float(view_angle))


def camera_for(view: str, bounds, *, distance_factor: float = 3.0, parallel: bool = True,
               aspect: float = 1.0, margin: float = 1.08, view_angle: float = 30.0) -> Camera:
    """A camera looking at the centre of ``bounds`` from the anatomical ``view``.

    The view fits the box: its projected height (and width divided by ``aspect`` = width /
    height of the image) plus ``margin``. ``distance_factor`` times the box's half diagonal is
    the distance of a parallel camera from the centre (far enough to avoid clipping);
    a perspective camera is placed so that the box fits its ``view_angle``.
    """
    check_view(view)
    if not distance_factor > 1.0:
        raise ParameterError(f"distance_factor must be > 1, got {distance_factor}", parameter="distance_factor")
    b = as_bounds(bounds)
    centre = b.mean(0)
    to_camera, up = (np.asarray(v, float) for v in VIEWS[view])
    to_camera /= np.linalg.norm(to_camera)
    right = np.cross(-to_camera, up)
    corners = np.array([[x, y, z] for x in b[:, 0] for y in b[:, 1] for z in b[:, 2]]) - centre
    half_w = np.abs(corners @ right).max()
    half_h = np.abs(corners @ up).max()
    half = max(half_h, half_w / max(aspect, 1e-6), 1e-6) * margin
    radius = max(float(np.linalg.norm(b[1] - b[0]) / 2.0), 1e-6)
    if parallel:
        distance = radius * distance_factor
    else:
        distance = half / np.tan(np.radians(view_angle) / 2.0) + radius
    position = centre + to_camera * distance
    return Camera(view, tuple(position), tuple(centre), tuple(up), parallel, float(half), float(view_angle))
