"""`expression grade`: measure facial movement and grade palsy from one session's photos."""

from __future__ import annotations

from pathlib import Path

from medface.data import FaceImage, Result

from .grading import grade_photos
from .results import collect_photos, grading_result


def grade(photos: Path | None = None, *, rest: FaceImage | None = None, brow_raise: FaceImage | None = None,
          eye_closure_gentle: FaceImage | None = None, eye_closure_full: FaceImage | None = None,
          smile: FaceImage | None = None, pucker: FaceImage | None = None,
          lower_lip_depression: FaceImage | None = None, units: str = "mm", iris_diameter: float = 11.7,
          allow_mixed_sizes: bool = False, figures: bool = True, out: Path | None = None, context=None) -> Result:
    """Grade a session: photos named by expression in ``photos`` and / or given one by one.

    Declares ``measurements.csv``, ``scores.csv`` and the pictures (each photo with its landmarks
    and distances, per-side bars, movement bars, rest beside smile); the runner writes them with
    ``result.json`` and the report. A rest photo refused by the quality gate refuses the result.
    """
    given = {"rest": rest, "brow_raise": brow_raise, "eye_closure_gentle": eye_closure_gentle,
             "eye_closure_full": eye_closure_full, "smile": smile, "pucker": pucker,
             "lower_lip_depression": lower_lip_depression}
    images, warnings = collect_photos(photos, given)
    if context is not None:
        context.stage(f"landmarks and measurements of {len(images)} photos")
    grading = grade_photos(images, units=units, iris_mm=iris_diameter, allow_mixed_sizes=allow_mixed_sizes)
    return grading_result(grading, images, warnings, figures=figures)
