"""Emotrics-style measurements of one face from its MediaPipe landmarks, per side, in mm.

Every photo gets its own face frame: origin at the mid-point of the two eye centres (each the
mid-point of its canthi), ``u`` along the line through the eye centres towards the subject's
left, ``v`` perpendicular to it, downwards. Head roll therefore does not change a
measurement. The scale comes from the rest photo: its iris diameter (the refined iris points,
mean of both eyes and both axes) is taken as ``iris_mm`` (11.7 mm in adults), which gives the
distance between the eye centres in mm; every other photo is scaled by its own eye distance
(canthi do not move with the lids, while the iris is covered by closing lids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L

#: per-side measurements, in mm (angles in degrees, areas in mm^2), with how each is taken
MEASURES = {
    "brow_height": "highest point of the upper brow edge above the eye line",
    "mrd1": "margin reflex distance 1: pupil (iris centre) to the upper lid margin, along v",
    "mrd2": "margin reflex distance 2: pupil to the lower lid margin, along v",
    "fissure_height": "palpebral fissure height at the pupil, along v: measured in the photo (lidmargin.py; the "
                      "mesh's lid lines where the sclera is not found)",
    "fissure_height_mesh": "the mesh's fissure height: upper to lower lid line at the pupil (landmarks only, for "
                           "comparison)",
    "sclera_columns": "columns beside the iris (of 6) where the sclera's band was found in the photo (0: the mesh's "
                      "lid lines used)",
    "commissure_excursion": "commissure to the lower-lip midpoint (index 17), straight distance",
    "commissure_height": "commissure below the eye line, along v",
    "commissure_width": "commissure to the facial midline (the perpendicular through the mid-canthal point)",
    "smile_angle": "angle of the line lower-lip midpoint -> commissure above the horizontal (degrees)",
    "upper_lip_height": "upper-lip vermilion border (halfway to the philtrum) below the eye line",
    "lower_lip_height": "lower-lip vermilion border below the eye line, halfway between commissure and midline, "
                        "found in the photo (lipborder.py; the mesh's contour where the lip's contrast is too weak)",
    "lower_lip_height_mesh": "the mesh's lower-lip border point (181 / 405) below the eye line (landmarks only, "
                             "for comparison)",
    "lower_lip_border_drop": "pseudo-hue R/(R+G) drop across the lower-lip border found in the photo (0: none "
                             "found, the mesh's contour used)",
    "dental_show": "area of the mouth opening between the inner lip margins on that side (mm^2): where teeth "
                   "can show; the landmarks do not see the teeth themselves",
}
UNITS = {"smile_angle": "deg", "dental_show": "mm2", "lower_lip_border_drop": "pseudo-hue", "sclera_columns": "count"}


@dataclass
class FaceFrame:
    """The face frame of one photo: origin and axes in pixels, and pixels per mm."""

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    px_per_mm: float

    def to_face(self, points: np.ndarray) -> np.ndarray:
        """Image pixels (..., 2) -> face-frame mm (..., 2): (u, v)."""
        d = np.asarray(points, float) - self.origin
        return np.stack([d @ self.u, d @ self.v], axis=-1) / self.px_per_mm

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, float) * self.px_per_mm
        return self.origin + uv[..., :1] * self.u + uv[..., 1:2] * self.v


def eye_centres(mesh: np.ndarray) -> dict[str, np.ndarray]:
    return {s: mesh[list(L.CANTHI[s])].mean(axis=0) for s in L.SIDES}


def iris_diameter_px(mesh: np.ndarray) -> float:
    """Iris diameter in pixels: the mean of the two edge-to-edge distances of both irises."""
    if len(mesh) < 478:
        from medface.errors import InputError

        raise InputError("the face landmarks have no iris points (a mesh of 478 points with iris refinement is "
                         "needed)")
    d = [np.linalg.norm(mesh[e[0]] - mesh[e[2]]) for e in L.IRIS_EDGE.values()]
    d += [np.linalg.norm(mesh[e[1]] - mesh[e[3]]) for e in L.IRIS_EDGE.values()]
    return float(np.mean(d))


def eye_distance_mm(rest_mesh: np.ndarray, iris_mm: float = 11.7) -> float:
    """The distance between the eye centres in mm, from the rest photo's iris diameter."""
    c = eye_centres(rest_mesh)
    return float(np.linalg.norm(c["left"] - c["right"]) / iris_diameter_px(rest_mesh) * iris_mm)


def face_frame(mesh: np.ndarray, eye_mm: float) -> FaceFrame:
    c = eye_centres(mesh)
    across = c["left"] - c["right"]
    dist = float(np.linalg.norm(across))
    u = across / max(dist, 1e-9)
    return FaceFrame((c["left"] + c["right"]) / 2.0, u, np.array([-u[1], u[0]]), dist / eye_mm)


def v_at_u(contour: np.ndarray, u: float) -> float:
    """v of a contour (points in face mm) at horizontal position ``u`` (linear, clamped at the ends)."""
    order = np.argsort(contour[:, 0])
    return float(np.interp(u, contour[order, 0], contour[order, 1]))


def _area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _mouth_opening(f: np.ndarray, side: str) -> float:
    """Area (mm^2) of the mouth opening on one side of the midline (u < 0: right)."""
    upper, lower = f[list(L.INNER_UPPER_LIP)], f[list(L.INNER_LOWER_LIP)]
    poly = np.concatenate([upper, lower[::-1][1:-1]])
    sign = -1.0 if side == "right" else 1.0
    clipped = _clip_half_plane(poly, sign)
    return _area(clipped)


def _clip_half_plane(poly: np.ndarray, sign: float) -> np.ndarray:
    """The polygon clipped to ``sign * u >= 0`` (Sutherland-Hodgman with one edge)."""
    out = []
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        ina, inb = sign * a[0] >= 0, sign * b[0] >= 0
        if ina:
            out.append(a)
        if ina != inb:
            t = a[0] / (a[0] - b[0])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 2))


def _side(f: np.ndarray, side: str) -> dict[str, float]:
    pupil = f[L.IRIS_CENTRE[side]]
    upper = v_at_u(f[list(L.UPPER_LID[side])], pupil[0])
    lower = v_at_u(f[list(L.LOWER_LID[side])], pupil[0])
    c, mid = f[L.COMMISSURE[side]], f[L.LOWER_LIP_MIDPOINT]
    return {
        "brow_height": float(-f[list(L.BROW_UPPER[side]), 1].min()),
        "mrd1": float(pupil[1] - upper), "mrd2": float(lower - pupil[1]), "fissure_height": float(lower - upper),
        "fissure_height_mesh": float(lower - upper), "sclera_columns": 0.0,
        "commissure_excursion": float(np.linalg.norm(c - mid)), "commissure_height": float(c[1]),
        "commissure_width": float(abs(c[0])),
        "smile_angle": float(np.degrees(np.arctan2(mid[1] - c[1], abs(c[0] - mid[0])))),
        "upper_lip_height": float(f[L.UPPER_LIP[side], 1]), "lower_lip_height": float(f[L.LOWER_LIP[side], 1]),
        "lower_lip_height_mesh": float(f[L.LOWER_LIP[side], 1]), "lower_lip_border_drop": 0.0,
        "dental_show": _mouth_opening(f, side),
    }


def measure_face(mesh: np.ndarray, eye_mm: float,
                 pixels: np.ndarray | None = None) -> tuple[dict[str, dict[str, float]], FaceFrame]:
    """``({"right": {measure: value}, "left": {...}}, frame)`` of one face's (478, 2) pixel landmarks.

    With the photo's ``pixels`` (H, W, 3), ``lower_lip_height`` is the border found in the image
    (:func:`.lipborder.lower_lip_border`); without them, or where it is not found, the mesh's."""
    from .lipborder import lower_lip_border

    frame = face_frame(mesh, eye_mm)
    f = frame.to_face(mesh)
    out = {side: _side(f, side) for side in L.SIDES}
    if pixels is not None:
        for side in L.SIDES:
            border = lower_lip_border(pixels, frame, f, side)
            if border.refined:
                out[side]["lower_lip_height"], out[side]["lower_lip_border_drop"] = border.v, border.drop
    return out, frame


def commissure_shift(rest: tuple, other: tuple, side: str) -> float:
    """How far (mm) a commissure moved between two photos, each in its own face frame."""
    (mesh_a, frame_a), (mesh_b, frame_b) = rest, other
    i = L.COMMISSURE[side]
    return float(np.linalg.norm(frame_b.to_face(mesh_b[i]) - frame_a.to_face(mesh_a[i])))
