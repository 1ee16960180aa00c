"""From a photo to an aligned face: detect, check quality, align. The one path every photo
takes (a clinic's photos, phantom renders for training, the screening command), so that a
model never sees an input prepared differently from the one it was trained on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medface.face.detect import DetectedFace, check_pixels, get_detector
from medface.face.quality import WARN, QualityReport, check_faces, check_image

from .align import align
from .crop_quality import check_crop

#: the side of the crops the CNN sees (GestaltMatcher's 112) and of the report's picture
MODEL_SIZE, DISPLAY_SIZE = 112, 224


@dataclass
class PreparedFace:
    """The outcome of preparing one photo. ``crop`` (MODEL_SIZE) and ``display`` (DISPLAY_SIZE)
    are None when no face could be aligned; ``quality.refused`` says whether to screen it."""

    quality: QualityReport
    faces: list[DetectedFace]
    crop: np.ndarray | None = None
    display: np.ndarray | None = None
    matrix: np.ndarray | None = None  # image (turned upright) -> MODEL_SIZE crop pixels
    turns: int = 0  # quarter turns (np.rot90) that made the photo upright; boxes and landmarks are in it

    @property
    def face(self) -> DetectedFace | None:
        return self.faces[0] if self.faces else None

    @property
    def usable(self) -> bool:
        return self.crop is not None and not self.quality.refused


def prepare(pixels: np.ndarray, *, detector: str = "mediapipe", display: bool = False) -> PreparedFace:
    """Detect the face in an RGB photo (turned upright first when it lies on its side or upside
    down), run the quality gate and align the crops."""
    report = QualityReport()
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 3 and not check_image(report, pixels):
        return PreparedFace(report, [])
    turns, pixels, faces = upright_faces(report, get_detector(detector), check_pixels(pixels))
    if not check_faces(report, faces):
        return PreparedFace(report, faces, turns=turns)
    crop, m = align(pixels, faces[0].points5, MODEL_SIZE)
    check_crop(report, crop)
    big = align(pixels, faces[0].points5, DISPLAY_SIZE)[0] if display else None
    return PreparedFace(report, faces, crop, big, m, turns)


#: what a quarter turn of np.rot90 undoes, as the photo was seen
_TURNED = {1: "turned 90 degrees clockwise", 2: "upside down", 3: "turned 90 degrees anticlockwise"}
#: a turned photo is kept only when its face is clearly frontal and level there (degrees): the
#: ear of a profile turned on its side can pass for a face, but not for a frontal, level one
TURNED_MAX_YAW, TURNED_MAX_PITCH, TURNED_MAX_ROLL = 15.0, 20.0, 20.0


def _clearly_frontal(face: DetectedFace) -> bool:
    pose = face.pose
    return pose is not None and (abs(pose["yaw"]) <= TURNED_MAX_YAW and abs(pose["pitch"]) <= TURNED_MAX_PITCH
                                 and abs(pose["roll"]) <= TURNED_MAX_ROLL)


def upright_faces(report: QualityReport, detector, pixels: np.ndarray) -> tuple[int, np.ndarray, list]:
    """(quarter turns, the photo turned upright, its faces): the detector's ``upright_turns``
    (when it has one) proposes a turn, which is kept, with a warning in the report, only when
    the turned photo shows a clearly frontal, level face; otherwise the photo is used as it is."""
    turns_of = getattr(detector, "upright_turns", None)
    turns = int(turns_of(pixels)) % 4 if turns_of is not None else 0
    if turns:
        turned = np.ascontiguousarray(np.rot90(pixels, turns))
        faces = detector.detect(turned)
        if faces and _clearly_frontal(faces[0]):
            report.add("orientation", WARN, f"the photo is {_TURNED[turns]}: it was turned upright before screening "
                       "(its orientation tag is missing or wrong)", 90 * turns, 0)
            return turns, turned, faces
    return 0, pixels, detector.detect(pixels)
