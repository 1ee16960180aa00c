"""Faces in photos, shared by the plugins: detection with dense landmarks, and the quality gate.

- :mod:`medface.face.detect`: a detector interface with MediaPipe Face Mesh (478 points with
  iris refinement, head pose) as the default model; ``get_detector()`` gives this thread's one.
- :mod:`medface.face.quality`: the generic checks of a face photo (image size, one face, face
  size, frontal pose, exposure and sharpness of a face region), each a pass / warn / fail
  :class:`Check` in a :class:`QualityReport`.
- :mod:`medface.face.photo_quality`: whole-frame exposure and sharpness of a photo.

Importing this package is cheap: MediaPipe loads when the first detector is made.
"""

from __future__ import annotations

from .detect import (FIVE_POINTS, DetectedFace, FaceDetector, MediaPipeDetector, check_pixels, detector_names,
                     get_detector, head_pose, register_detector)
from .photo_quality import PhotoQuality, assess, laplacian_variance
from .quality import FAIL, PASS, WARN, Check, QualityReport, Wording, box_text, check_faces, check_image, check_region

__all__ = ["FIVE_POINTS", "DetectedFace", "FaceDetector", "MediaPipeDetector", "check_pixels", "detector_names",
           "get_detector", "head_pose", "register_detector", "PhotoQuality", "assess", "laplacian_variance",
           "PASS", "WARN", "FAIL", "Check", "QualityReport", "Wording", "box_text", "check_faces", "check_image",
           "check_region"]
