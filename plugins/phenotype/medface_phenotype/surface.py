"""`phenotype screen-mesh`: screen a 3D face surface by rendering it as a frontal photo.

Why render instead of a 3D model: the screening network, its gallery and its calibration were
made from photos, and the demo model learned *rendered* phantom faces. A surface rendered by
the same off-screen renderer as those phantoms (:class:`medface.phantom.photo.PhotoRenderer`:
Phong shading, key and fill lights, FXAA, a studio backdrop) in a uniform skin colour is an
input of the kind the network has seen, so one model and one gallery serve photos and
surfaces. Texture is ignored on purpose: a scan's texture is lit differently from the renders.

The method, in three steps:

1. **Units** (:func:`to_millimetres`): a face or head surface spans about 80-1000 mm along its
   bounding-box diagonal; a size far outside that for the stated units is refused with the
   units it looks like (scans are often saved in metres or centimetres).
2. **Find the face in any orientation** (:func:`frontal_view`): nothing says which way a scan
   faces, so the surface is rendered from the 6 axis directions and the 3 principal axes (both
   signs), each with 4 view-up vectors 90 degrees apart, and MediaPipe looks for a face mesh in
   every render. A view seen from *inside* an open surface can look like a face too (the
   hollow-face illusion), so a detection counts only when the depth buffer shows the face
   bulging toward the camera (nose tip nearer than the eyes, nasal ridge nearer than the face's
   outline). The most frontal detection (smallest |yaw| + |pitch|, largest eye distance on
   ties) is then refined: the camera is turned back by the measured yaw and pitch and rolled by
   the measured roll, and the surface rendered again, until yaw, pitch and roll are all within
   :data:`FRONTAL_DEG` degrees (at most :data:`REFINE_STEPS` times). MediaPipe reads the pose to
   a few degrees, so the final view is frontal to about that.
3. **Screen** (:func:`screen_surface`): the frontal render goes through the photo pipeline
   (:class:`medface_phenotype.screening.Screener`): quality gate, alignment, network, gallery.

Geometry (:func:`view_camera`, :func:`turn`) is kept apart from rendering (:class:`SurfaceRenderer`)
and detection, so that it can be tested without OpenGL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from medface.data import Result, SurfaceMesh
from medface.errors import InputError, ParameterError
from medface.viz import Camera, perspective_camera

#: factors from each accepted unit to millimetres
UNITS = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_UNIT_NAMES = {"mm": "millimetres", "cm": "centimetres", "m": "metres"}
#: bounding-box diagonal (mm) of a plausible face or head surface: a face-only scan of a small
#: child (~100 mm) to a head-and-shoulders scan
PLAUSIBLE_DIAGONAL_MM = (80.0, 1000.0)
#: camera distance (mm), as in the phantom photos (a portrait lens)
DISTANCE_MM = 1000.0
#: fraction of the image the surface spans (its larger projected side); a head then shows its
#: face over about 60 % of the image height, like the phantom photos
FILL = 0.85
#: uniform skin colour (sRGB), the middle of the phantom photos' Fitzpatrick-like scale (III)
SKIN_RGB = (200, 152, 114)
SURFACE_SKIN_TONE = 3  # the index of SKIN_RGB on that scale
BACKGROUND_RGB = (206, 208, 210)  # the phantom photos' "light_grey" backdrop
#: soft key, fill and back lights (azimuth/elevation in degrees relative to the camera)
LIGHTING = {"key_azimuth": 30.0, "key_elevation": 25.0, "key_intensity": 0.7, "fill_azimuth": -45.0,
            "fill_elevation": 5.0, "fill_intensity": 0.4, "ambient": 0.2, "specular": 0.08, "warmth": 0.0}
BACK_LIGHT = {"azimuth": 180.0, "elevation": 50.0, "intensity": 0.25}
#: a face is frontal and upright enough when |yaw|, |pitch| and |roll| are below this (degrees)
FRONTAL_DEG = 5.0
REFINE_STEPS = 3
#: a detection counts when the nose tip is this much nearer the camera than the eyes (mm)...
NOSE_PROTRUSION_MM = 3.0
#: ... and the nasal ridge nearer than the face's outline (mm); real faces measure 10-50 mm here,
#: even turned 30 degrees, views from inside a surface 0 or less
RIDGE_PROTRUSION_MM = 5.0
# MediaPipe Face Mesh indices: nose tip and nasal ridge; the face oval (FACEMESH_FACE_OVAL)
_MESH_RIDGE = (1, 4, 5, 195, 197, 6)
_MESH_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
              176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


# ---------------------------------------------------------------------------------------------
# units
def to_millimetres(mesh: SurfaceMesh, units: str = "mm") -> SurfaceMesh:
    """The mesh in millimetres, or an :class:`InputError` when its size is implausible for a
    face or head surface in ``units`` (naming the units it looks like)."""
    if units not in UNITS:
        raise ParameterError(f"units must be one of {', '.join(UNITS)}, got {units!r}", parameter="units")
    if mesh.n_faces == 0:
        raise InputError("the surface has no triangles", path=mesh.source)
    diagonal = float(np.linalg.norm(mesh.extent)) * UNITS[units]
    lo, hi = PLAUSIBLE_DIAGONAL_MM
    if not lo <= diagonal <= hi:
        raw = diagonal / UNITS[units]
        fits = [u for u, f in UNITS.items() if lo <= raw * f <= hi and u != units]
        hint = (f"it looks like {_UNIT_NAMES[fits[0]]}: rerun with --units {fits[0]}, or units='{fits[0]}' in "
                "Python" if fits else "check that this is a face or head surface and the units it was saved in")
        size = f"{raw:.4g} mm" if units == "mm" else f"{raw:.4g} {units} ({diagonal:.4g} mm)"
        raise InputError(f"the surface's bounding-box diagonal is {size}, implausible for a face or head surface "
                         f"(about {lo:.0f}-{hi:.0f} mm)", path=mesh.source, hint=hint)
    return mesh if UNITS[units] == 1.0 else mesh.scaled(UNITS[units])


def load_face_mesh(path, units: str = "mm") -> SurfaceMesh:
    """Read a face or head surface (STL, PLY, OBJ, VTK, VTP) and return it in millimetres."""
    from medface.io import read_mesh

    return to_millimetres(read_mesh(path), units)


# ---------------------------------------------------------------------------------------------
# camera geometry (no OpenGL)
def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n < 1e-9:
        raise ParameterError(f"a view direction needs a non-zero vector, got {v.tolist()}")
    return v / n


def frame(direction, up) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal (direction, up, right): ``direction`` points from the surface to the camera,
    ``up`` is made perpendicular to it, ``right`` is the image's right."""
    d = _unit(direction)
    u = np.asarray(up, float) - np.dot(up, d) * d
    u = _unit(u)
    return d, u, np.cross(-d, u)


def view_camera(vertices: np.ndarray, direction, up, size: int) -> Camera:
    """A perspective camera :data:`DISTANCE_MM` away along ``direction`` from the surface's
    centre, looking back at it, with the view angle that makes the surface's projected extent
    span :data:`FILL` of the (square) image."""
    d, u, r = frame(direction, up)
    v = np.asarray(vertices, float)
    pu, pr, pd = v @ u, v @ r, v @ d
    mid = lambda a: 0.5 * (a.min() + a.max())
    centre = mid(pu) * u + mid(pr) * r + mid(pd) * d
    span = max(np.ptp(pu), np.ptp(pr)) / FILL
    angle = 2.0 * np.degrees(np.arctan(0.5 * span / DISTANCE_MM))
    return perspective_camera(centre, d, u, distance=DISTANCE_MM, view_angle=angle)


def turn(direction, up, pose: dict) -> tuple[np.ndarray, np.ndarray]:
    """The view (direction, up) that undoes a measured head pose.

    :func:`medface.face.detect.head_pose` is fitted to the phantom camera
    (:func:`medface.phantom.photo.camera_setup`): a camera yawed toward the image's right and
    then pitched up measures that yaw and pitch, so the camera is pitched back, then yawed back.
    A camera rolled by an angle (its view-up turned toward the image's right) measures minus that
    roll, so the view-up is turned toward the image's right by the measured roll. (Checked on
    renders: tests/phenotype/test_surface.py.)"""
    d, u, r = frame(direction, up)
    y, p, q = (np.radians(float(pose[k])) for k in ("yaw", "pitch", "roll"))
    # the camera was yawed, then pitched: undo the pitch first
    d, u = np.cos(p) * d - np.sin(p) * u, np.cos(p) * u + np.sin(p) * d
    d, r = np.cos(y) * d - np.sin(y) * r, np.cos(y) * r + np.sin(y) * d
    u = np.cos(q) * u + np.sin(q) * r
    return frame(d, u)[:2]


def candidate_views(vertices: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(direction, up) pairs to look for a face from: the 6 axis directions and the 3 principal
    axes with both signs, each with 4 view-ups 90 degrees apart (in-plane turns beyond 45 degrees
    defeat the detector)."""
    v = np.asarray(vertices, float)
    centred = v - v.mean(axis=0)
    _, _, axes = np.linalg.svd(centred[:: max(1, len(v) // 20000)], full_matrices=False)
    directions = list(np.eye(3)) + [-a for a in np.eye(3)]
    for a in axes:
        for s in (1.0, -1.0):
            if all(np.dot(s * a, b) < np.cos(np.radians(20.0)) for b in directions):
                directions.append(s * a)
    views = []
    for d in directions:
        helper = np.eye(3)[int(np.argmin(np.abs(d)))]
        u0 = _unit(np.cross(d, helper))
        r0 = np.cross(-d, u0)
        for u in (u0, r0, -u0, -r0):
            views.append((np.asarray(d, float), u))
    return views


# ---------------------------------------------------------------------------------------------
# rendering
class SurfaceRenderer:
    """One off-screen plotter: the phantom photos' renderer with a uniform skin colour, a third
    (back) light and a camera set from a view direction. Not thread-safe: use :func:`renderer`."""

    def __init__(self, size: int = 512):
        from medface.phantom.photo import Appearance, PhotoRenderer

        self._photo = PhotoRenderer(size=(size, size))
        self._photo.add_light(**BACK_LIGHT)
        bg = tuple(c / 255.0 for c in BACKGROUND_RGB)
        self.appearance = Appearance(3, "intermediate", tuple(c / 255.0 for c in SKIN_RGB), None, None, 0.0,
                                     dict(LIGHTING), bg, tuple(min(1.0, c * 1.08 + 0.03) for c in bg),
                                     (np.zeros((0, 3)), np.zeros(0), np.zeros(0)))
        self._mesh = None

    def close(self):
        self._photo.close()

    def _use(self, mesh: SurfaceMesh) -> None:
        """Upload the mesh unless it is the one drawn last (a mesh changed in place is not noticed)."""
        if mesh is self._mesh:
            return
        from medface.data.mesh import vertex_normals

        v, f = mesh.vertices, mesh.faces
        normals = vertex_normals(v, f)  # VTK lights both sides, so the winding's sign does not matter
        colours = np.broadcast_to(np.asarray(SKIN_RGB, float) / 255.0, v.shape)
        self._photo.set_mesh(v, f, normals, colours)
        self._mesh = mesh

    def render(self, mesh: SurfaceMesh, direction, up, size: int = 512) -> tuple[np.ndarray, np.ndarray, Camera]:
        """RGB image (size, size, 3) uint8, depth (mm from the camera, inf on the backdrop) and
        the camera."""
        self._use(mesh)
        cam = view_camera(mesh.vertices, direction, up, size)
        p = self._photo
        p.set_scene(self.appearance, cam, (size, size))
        image, z = p.read((size, size))
        return image, p.depth_from_zbuffer(z), cam


_LOCAL = threading.local()


def renderer(size: int = 512) -> SurfaceRenderer:
    """This thread's renderer (VTK render windows must stay on the thread that made them)."""
    r = getattr(_LOCAL, "renderer", None)
    if r is None:
        r = _LOCAL.renderer = SurfaceRenderer(size)
    return r


def render_view(mesh: SurfaceMesh, direction, up, size: int = 512) -> np.ndarray:
    """The surface (mm) rendered in skin colour from ``direction`` (surface -> camera) with
    ``up`` pointing up in the image: an (size, size, 3) uint8 RGB array."""
    return renderer(size).render(mesh, direction, up, size)[0]


# ---------------------------------------------------------------------------------------------
# finding the frontal view
@dataclass
class FrontalView:
    """The most frontal render found: image, view (direction from the surface to the camera,
    view-up), the face MediaPipe found there and its pose (degrees), and how many renders it took."""

    image: np.ndarray = field(repr=False)
    direction: np.ndarray
    up: np.ndarray
    pose: dict
    face: object = field(repr=False)
    renders: int

    def to_dict(self) -> dict:
        return {"view_direction": [round(float(c), 4) for c in self.direction],
                "view_up": [round(float(c), 4) for c in self.up],
                "pose_deg": {k: round(float(v), 1) for k, v in self.pose.items()},
                "eye_distance_px": round(float(self.face.eye_distance), 1), "renders": self.renders}


def _depth_at(depth: np.ndarray, xy, radius: int = 2) -> float:
    """Median depth (mm) of the surface in a small window around pixel ``xy`` (inf: backdrop)."""
    x, y = int(np.rint(xy[0])), int(np.rint(xy[1]))
    patch = depth[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1]
    patch = patch[np.isfinite(patch)]
    return float(np.median(patch)) if patch.size else np.inf


def _bulges(face, depth: np.ndarray) -> bool:
    """Whether the face stands out toward the camera in the depth buffer: the nose tip nearer than
    the eyes and the nasal ridge nearer than the face's outline. A face seen from inside an open
    surface (the hollow-face illusion) fails both; checking the outline too catches detections
    whose landmarks are misplaced on such a view."""
    eyes = 0.5 * (_depth_at(depth, face.points5[0]) + _depth_at(depth, face.points5[1]))
    if not _depth_at(depth, face.points5[2]) < eyes - NOSE_PROTRUSION_MM:
        return False
    if face.landmarks is None or len(face.landmarks) < 468:  # another detector: no MediaPipe mesh
        return True
    ridge = np.median([_depth_at(depth, p) for p in face.landmarks[list(_MESH_RIDGE)]])
    outline = np.array([_depth_at(depth, p) for p in face.landmarks[list(_MESH_OVAL)]])
    outline = outline[np.isfinite(outline)]  # points on the silhouette may fall on the backdrop
    return outline.size > 0 and ridge < np.median(outline) - RIDGE_PROTRUSION_MM


def _face_in(image: np.ndarray, depth: np.ndarray):
    """The largest face with a fitted mesh that bulges toward the camera, or None."""
    from medface.face.detect import get_detector

    for face in get_detector().detect(image):
        if face.pose is not None and _bulges(face, depth):
            return face
    return None


def _frontality(face) -> tuple[float, float]:
    return abs(face.pose["yaw"]) + abs(face.pose["pitch"]), -face.eye_distance


def frontal_view(mesh: SurfaceMesh, size: int = 512) -> FrontalView:
    """Render the surface (mm, any orientation) from the direction that shows its face frontally
    (see the module's docstring for the method)."""
    r = renderer(size)
    renders = 0
    best = None
    for direction, up in candidate_views(mesh.vertices):
        image, depth, _ = r.render(mesh, direction, up, size)
        renders += 1
        face = _face_in(image, depth)
        if face is not None and (best is None or _frontality(face) < _frontality(best[3])):
            best = (image, direction, up, face)
    if best is None:
        raise InputError("no face was found on the surface from any direction", path=mesh.source,
                         hint="screen-mesh needs a face or head surface with the face's front visible (eyes, nose "
                              "and mouth not cut off or covered)")
    path = [best]
    for _ in range(REFINE_STEPS):
        image, direction, up, face = path[-1]
        if max(abs(face.pose[k]) for k in ("yaw", "pitch", "roll")) < FRONTAL_DEG:
            break
        direction, up = turn(direction, up, face.pose)
        image, depth, _ = r.render(mesh, direction, up, size)
        renders += 1
        face = _face_in(image, depth)
        if face is None:
            break
        path.append((image, direction, up, face))
    # the pose is read to a few degrees: keep the step that looked most frontal and upright
    image, direction, up, face = min(path, key=lambda s: sum(abs(s[3].pose[k]) for k in ("yaw", "pitch", "roll")))
    return FrontalView(image, direction, up, dict(face.pose), face, renders)


# ---------------------------------------------------------------------------------------------
# screening a surface, and the command
def screen_surface(mesh: SurfaceMesh, *, units: str = "mm", screener=None, stage=None):
    """Screen a face surface (any orientation, in ``units``) through its frontal render: a
    :class:`~medface_phenotype.screening.ScreeningResult` whose ``surface`` is the :class:`FrontalView`.
    ``stage(text)``, when given, is told when each of the two stages begins."""
    from .screening import Screener

    screener = screener or Screener()
    mm = to_millimetres(mesh, units)
    if stage is not None:
        stage("finding the face: rendering the surface from every direction")
    view = frontal_view(mm)
    if stage is not None:
        stage("screening the frontal render")
    found = screener.screen_one(view.image)
    found.surface = view
    return found


SURFACE_LIMIT = ("The surface is rendered in a uniform skin colour and screened by the photo model (trained on "
                 "phantom renders): its texture is ignored, and only the shape of the face counts.")


def screen_mesh(mesh: SurfaceMesh, model=None, top: int = 10, device: str = "auto", units: str = "mm",
                context=None) -> Result:
    """CLI entry of `phenotype screen-mesh`: find the frontal view of a face surface and screen
    its render like a photo."""
    from .screen import declare_pictures, pictures_wanted, screening_report
    from .screening import Screener

    screener = Screener(model, device=device, top=top, attention=pictures_wanted(context))
    found = screen_surface(mesh, units=units, screener=screener, stage=getattr(context, "stage", None))
    result = screening_report(found, screener, "phenotype.screen-mesh")
    result.metrics["surface"] = {**found.surface.to_dict(), "units": units}
    result.limits.append(SURFACE_LIMIT)
    declare_pictures(result, found)
    result.declare("surface_view", "surface_view.png", found.surface.image, kind="image", figure="surface view",
                   face=True)
    return result
