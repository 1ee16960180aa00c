"""Grading one session of expression photos: detect, check, measure, score.

:func:`grade_photos` takes ``expression -> FaceImage`` and returns a :class:`Grading` with the
quality verdict of every photo, the measurements per side (mm, or iris diameters), the
movement from rest and the eFACE-style scores. It writes nothing; the ``expression grade``
command declares its files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.data import FaceImage
from medface.face.quality import QualityReport, Wording, check_faces, check_image, check_region

from .lidmargin import conflicting, read_session
from .measure import MEASURES, FaceFrame, commissure_shift, eye_distance_mm, measure_face
from .photoset import EXPRESSIONS, check_session
from .scoring import Scores, movements, score, side_conflict

MEASURING = Wording(verb="measure", past="measured", noun="measurement")
#: the face region judged for exposure and sharpness is resampled to this width, the scale at which
#: the core's limits were set (the phenotype plugin's 112 px crop)
REGION_PX = 112
#: reference iris diameter in adults (mm); see docs/expression.md
IRIS_MM = 11.7


@dataclass
class Grading:
    """Everything measured in one session (values in mm unless ``units`` is "iris")."""

    units: str
    eye_distance_mm: float
    quality: dict[str, QualityReport]
    landmarks: dict[str, np.ndarray] = field(repr=False)
    frames: dict[str, FaceFrame] = field(repr=False)
    measurements: dict[str, dict[str, dict[str, float]]]
    movement: dict[str, dict[str, float]]
    shifts: dict[str, dict[str, float]]
    scores: Scores
    skipped: dict[str, str] = field(default_factory=dict)

    iris_mm: float = IRIS_MM
    warnings: list[str] = field(default_factory=list)

    @property
    def mm_per_unit(self) -> float:
        """mm in one reported unit: 1, or the iris diameter when ``units`` is "iris"."""
        return self.iris_mm if self.units == "iris" else 1.0

    @property
    def affected_side(self) -> str:
        return self.scores.affected_side

    def rows(self) -> list[dict]:
        """One row per photo, side and measure: the measurements table (CSV)."""
        out = []
        for expr, sides in self.measurements.items():
            for name in MEASURES:
                r, lft = sides["right"][name], sides["left"][name]
                row = {"expression": expr, "measure": name, "right": round(r, 3), "left": round(lft, 3),
                       "asymmetry_left_minus_right": round(lft - r, 3),
                       "from_rest_right": round(r - self.measurements["rest"]["right"][name], 3),
                       "from_rest_left": round(lft - self.measurements["rest"]["left"][name], 3)}
                out.append(row)
        return out


def face_luma(pixels: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Luma of the box of the face landmarks, resampled to :data:`REGION_PX` wide."""
    from PIL import Image

    x0, y0 = np.floor(mesh.min(axis=0)).astype(int)
    x1, y1 = np.ceil(mesh.max(axis=0)).astype(int)
    h, w = pixels.shape[:2]
    crop = pixels[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    luma = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    height = max(2, round(luma.shape[0] * REGION_PX / max(luma.shape[1], 1)))
    small = Image.fromarray(np.clip(luma, 0, 255).astype(np.uint8)).resize((REGION_PX, height),
                                                                          Image.Resampling.BILINEAR)
    return np.asarray(small, np.float32)


def check_photo(image: FaceImage, detector) -> tuple[QualityReport, np.ndarray | None]:
    """The quality gate of one photo (one face, big enough, frontal, exposed, sharp) and its
    478 landmarks in pixels (None when refused)."""
    report = QualityReport()
    if not check_image(report, image.pixels):
        return report, None
    faces = detector.detect(image.pixels)
    if not check_faces(report, faces, MEASURING):
        return report, None
    mesh = faces[0].landmarks
    check_region(report, face_luma(image.pixels, mesh))
    if mesh.shape[0] < 478:
        report.add("iris", "fail", "the face landmarks have no iris points: a 478-point mesh is needed")
    return report, (None if report.refused else mesh)


def grade_photos(images: dict[str, FaceImage], *, units: str = "mm", iris_mm: float = IRIS_MM,
                 allow_mixed_sizes: bool = False, detector=None) -> Grading:
    """Grade a session: ``images`` maps expression names (:data:`EXPRESSIONS`) to photos.

    A photo refused by the quality gate is left out (listed in ``skipped``); when that is the
    rest photo, nothing can be measured and ``measurements`` is empty (the command then refuses)."""
    from medface.face import get_detector

    check_session(images, allow_mixed_sizes)
    detector = detector or get_detector()
    quality, meshes, skipped = {}, {}, {}
    for expr in [e for e in EXPRESSIONS if e in images]:
        quality[expr], mesh = check_photo(images[expr], detector)
        if mesh is None:
            skipped[expr] = "; ".join(quality[expr].reasons)
        else:
            meshes[expr] = mesh
    if "rest" not in meshes:
        return Grading(units, float("nan"), quality, {}, {}, {}, {}, {}, Scores(), skipped, iris_mm)
    eye_mm = eye_distance_mm(meshes["rest"], iris_mm)
    measured, frames = {}, {}
    for expr, mesh in meshes.items():
        measured[expr], frames[expr] = measure_face(mesh, eye_mm, images[expr].pixels)
    warnings = consistent_lower_lip(measured)
    pixels = {e: images[e].pixels for e in meshes}
    warnings += consistent_fissures(measured, read_session(pixels, frames, meshes, iris_mm))
    shifts = {e: {s: commissure_shift((meshes["rest"], frames["rest"]), (meshes[e], frames[e]), s)
                  for s in ("right", "left")} for e in meshes if e != "rest"}
    scores = score(measured, shifts)
    moved = movements(measured, shifts)
    warnings += [w for w in (side_conflict(moved),) if w]
    if units == "iris":  # scores were taken in mm; the reported values are in iris diameters
        measured, moved, shifts = _in_iris(measured, moved, shifts, iris_mm)
    return Grading(units, eye_mm, quality, meshes, frames, measured, moved, shifts, scores, skipped, iris_mm,
                   warnings)


#: the photos whose lower-lip borders make the lower-lip movement
LOWER_LIP_PAIR = ("rest", "lower_lip_depression")


def consistent_lower_lip(measured: dict) -> list[str]:
    """Where the lower-lip border was not found in the photo (weak or ambiguous contrast) in the rest or
    the lower-lip photo of a side, that side's ``lower_lip_height`` is the mesh's in every photo
    (changed in place), so a movement never mixes the photo's border with the mesh's; the warnings."""
    warnings = []
    for side in ("right", "left"):
        weak = [e for e in LOWER_LIP_PAIR if e in measured and measured[e][side]["lower_lip_border_drop"] <= 0]
        if not weak:
            continue
        for sides in measured.values():
            sides[side]["lower_lip_height"] = sides[side]["lower_lip_height_mesh"]
        warnings.append(f"the lower lip's border on the subject's {side} could not be found in the "
                        f"{' and '.join(weak)} photo (too little lip-to-skin contrast, or a second red band such as a "
                        "shadow under the lip): the face mesh's lip point is used, which under-reads a one-sided "
                        "lower-lip palsy")
    return warnings


def consistent_fissures(measured: dict, readings: dict) -> list[str]:
    """The photo-measured fissures (``readings``: :func:`.lidmargin.read_session`) written into
    ``measured`` (in place), for **both eyes in every photo or for none**: where an eye shows no
    sclera at rest, or a photo reads an eye closed that the mesh reads open, every photo keeps the
    mesh's lid values (so an item never compares a photo-measured eye with a mesh-measured one);
    the warnings."""
    rest = readings.get("rest", {})
    problems = [f"the subject's {s} eye shows no sclera beside the iris in the rest photo"
                for s in ("right", "left") if s in rest and rest[s].fissure is None]
    mesh_rest = {s: max(measured["rest"][s]["fissure_height_mesh"], 1e-6) for s in ("right", "left")}
    for e, sides in readings.items():
        for s, r in sides.items():
            measured[e][s]["sclera_columns"] = float(r.found)
            if e != "rest" and conflicting(r, measured[e][s]["fissure_height_mesh"] / mesh_rest[s]):
                problems.append(f"the subject's {s} eye reads closed in the {e} photo but open in the face mesh")
    if problems or set(readings) != set(measured):
        problems = problems or ["the eyes could not be measured in every photo"]
        return [f"the palpebral fissures are the face mesh's lid lines in every photo, for both eyes ("
                f"{'; '.join(problems)}): the mesh under-reads partial lid closure"]
    for e, sides in readings.items():
        for s, r in sides.items():
            measured[e][s].update(mrd1=r.mrd1, mrd2=r.mrd2, fissure_height=r.fissure)
    return []


def _in_iris(measured: dict, moved: dict, shifts: dict, iris_mm: float) -> tuple[dict, dict, dict]:
    """Measurements, movements and shifts in iris diameters (angles and closure fractions as they
    are, areas in diameters squared)."""
    def scaled(key: str, v: float) -> float:
        if key in ("smile_angle", "eye_closure_gentle", "eye_closure_full", "lower_lip_border_drop", "sclera_columns"):
            return v
        return v / iris_mm ** 2 if key == "dental_show" else v / iris_mm

    measured = {e: {s: {k: scaled(k, v) for k, v in m.items()} for s, m in sides.items()}
                for e, sides in measured.items()}
    moved = {e: {s: scaled(e, v) for s, v in m.items()} for e, m in moved.items()}
    shifts = {e: {s: v / iris_mm for s, v in m.items()} for e, m in shifts.items()}
    return measured, moved, shifts
