"""From a photo to an aligned face: detect, check quality, align. The one path every photo
takes (a clinic's photos, phantom renders for training, the screening command), so that a
model never sees an input prepared differently from the one it was trained on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .align import align
from .detect import DetectedFace, check_pixels, get_detector
from .quality import QualityReport, check_crop, check_faces, check_image

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
    matrix: np.ndarray | None = None  # image -> MODEL_SIZE crop pixels

    @property
    def face(self) -> DetectedFace | None:
        return self.faces[0] if self.faces else None

    @property
    def usable(self) -> bool:
        return self.crop is not None and not self.quality.refused


def prepare(pixels: np.ndarray, *, detector: str = "mediapipe", display: bool = False) -> PreparedFace:
    """Detect the face in an upright RGB photo, run the quality gate and align the crops."""
    report = QualityReport()
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 3 and not check_image(report, pixels):
        return PreparedFace(report, [])
    pixels = check_pixels(pixels)
    faces = get_detector(detector).detect(pixels)
    if not check_faces(report, faces):
        return PreparedFace(report, faces)
    crop, m = align(pixels, faces[0].points5, MODEL_SIZE)
    check_crop(report, crop)
    big = align(pixels, faces[0].points5, DISPLAY_SIZE)[0] if display else None
    return PreparedFace(report, faces, crop, big, m)
