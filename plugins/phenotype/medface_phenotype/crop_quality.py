"""The screening quality gate's crop checks: exposure and sharpness of the face on the aligned crop.

The generic checks (image size, face count, size and pose; exposure and sharpness of a face
region) are the core's (:mod:`medface.face.quality`); this module only says which region of the
phenotype plugin's aligned 112 x 112 crop they judge.
"""

from __future__ import annotations

import numpy as np

from medface.face.quality import QualityReport, check_region


def face_region(crop: np.ndarray) -> np.ndarray:
    """Luma of the central face region of an aligned crop: from brow height (0.79 of the
    eyes-to-mouth distance above the eyes) to just below the mouth (0.19 of it), and 1.11 eye
    distances either side of the midline, placed by the alignment template."""
    from .align import template

    size = crop.shape[0]
    t = template(size)
    eye_y, mouth_y = t[:2, 1].mean(), t[3:, 1].mean()
    d, half = mouth_y - eye_y, 1.11 * (t[1, 0] - t[0, 0])
    centre = t[:2, 0].mean()
    luma = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    rows = slice(max(0, int(eye_y - 0.79 * d)), min(size, int(mouth_y + 0.19 * d)))
    cols = slice(max(0, int(centre - half)), min(size, int(centre + half)))
    return luma[rows, cols]


def check_crop(report: QualityReport, crop112: np.ndarray) -> None:
    """Sharpness and exposure of the face itself, on the aligned 112 x 112 crop."""
    check_region(report, face_region(crop112))
