"""The face-photo quality gate: is this photo fit to be analysed, and if not, why not.

Every check gives a verdict (pass, warn or fail) with its measured value and limit. A plugin
refuses a photo when any check fails: a number computed from a face that is missing,
ambiguous, tiny, turned away, blurred or badly exposed would look like an answer and mean
nothing. The generic checks live here (image size, face count and size, frontal pose, and
exposure and sharpness of a face region); which region of the face is judged is the caller's
choice (the phenotype plugin judges its aligned crop, the expression plugin the box of the
landmarks). Limits were set on the two real portraits in ../shared/data/faces, blurred,
darkened and brightened copies of them, and phantom renders (docs/phenotype.md lists them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .photo_quality import laplacian_variance

PASS, WARN, FAIL = "pass", "warn", "fail"

MIN_IMAGE_SIDE = 32            # px; below this no detector can find a face
SECOND_FACE_RATIO = 0.5        # a second face at least half as wide as the first: ambiguous photo
MIN_EYE_DISTANCE = 20.0        # px between eye centres; the 112 crop has 30, so below 20 the crop is mush
WARN_EYE_DISTANCE = 30.0       # below this the 112 crop is upsampled
MAX_YAW, WARN_YAW = 30.0, 15.0        # degrees, approximate (medface.face.detect.head_pose)
MAX_PITCH, WARN_PITCH = 30.0, 20.0
MIN_SHARPNESS, WARN_SHARPNESS = 0.012, 0.03   # Laplacian variance / luma variance (set on the 112 crop)
MIN_FACE_LUMA, WARN_FACE_LUMA = 25.0, 45.0    # mean luma of the face region (0-255)
MAX_FACE_LUMA, WARN_BRIGHT_LUMA = 235.0, 215.0
MAX_CLIPPED = 0.25             # share of face pixels at 0-5 or 250-255
MIN_FACE_CONTRAST = 6.0        # luma SD of the face region; below this there is no detail


@dataclass(frozen=True)
class Wording:
    """The words of the messages for one use of the gate: ``verb`` ("screen"), its past
    ("screened") and the noun of the task ("screening")."""

    verb: str = "screen"
    past: str = "screened"
    noun: str = "screening"


SCREENING = Wording()


@dataclass
class Check:
    name: str
    status: str
    message: str
    value: float | int | None = None
    limit: float | int | None = None


@dataclass
class QualityReport:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, message: str, value=None, limit=None) -> Check:
        check = Check(name, status, message, None if value is None else _round(value),
                      None if limit is None else _round(limit))
        self.checks.append(check)
        return check

    @property
    def refused(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[str]:
        return [c.message for c in self.checks if c.status == WARN]

    @property
    def verdict(self) -> str:
        if self.refused:
            return "refused: " + "; ".join(self.reasons)
        return "acceptable" + (" with warnings" if self.warnings else "")

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "refused": self.refused, "checks": [asdict(c) for c in self.checks]}


def _round(v):
    return round(float(v), 4) if isinstance(v, (float, np.floating)) else v


def check_image(report: QualityReport, pixels: np.ndarray) -> bool:
    """Image-level checks; False when the image cannot hold a face at all."""
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        report.add("image_size", FAIL, f"the image is {w}x{h} px: too small to hold a face "
                   f"(need at least {MIN_IMAGE_SIDE} px on each side)", min(h, w), MIN_IMAGE_SIDE)
        return False
    report.add("image_size", PASS, f"{w}x{h} px", min(h, w), MIN_IMAGE_SIDE)
    return True


def box_text(face) -> str:
    """``"box x 154-355, y 137-370 px"``: where a detected face is in the photo."""
    x0, y0, x1, y1 = face.box
    return f"box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px"


def _widths_text(others: list, largest) -> str:
    """``"the other is 38 % as wide"``, ``"the others are 40 % and 30 % as wide"``."""
    shares = [f"{100 * f.width / max(largest.width, 1e-9):.0f} %" for f in others]
    if len(shares) == 1:
        return f"the other is {shares[0]} as wide"
    return f"the others are {', '.join(shares[:-1])} and {shares[-1]} as wide"


def check_faces(report: QualityReport, faces: list, wording: Wording = SCREENING) -> bool:
    """Face count, size and pose of the largest face; False when there is nothing to analyse.
    ``faces`` (:class:`~medface.face.detect.DetectedFace`) come largest first; the messages name
    every face found, in the words of ``wording``."""
    if not faces:
        report.add("face_found", FAIL, "no face was found in the photo")
        return False
    face, others = faces[0], faces[1:]
    if others and others[0].width >= SECOND_FACE_RATIO * face.width:
        report.add("face_count", FAIL, f"{len(faces)} faces of similar size: the largest at {box_text(face)}, "
                   f"{_widths_text(others, face)} (a second face at least {100 * SECOND_FACE_RATIO:.0f} % as wide "
                   f"makes the photo ambiguous): crop the photo to the person to {wording.verb}", len(faces), 1)
        return False
    report.add("face_found", PASS, f"one face ({box_text(face)})" if not others else
               f"{len(faces)} faces: {wording.past} the largest ({box_text(face)}); {_widths_text(others, face)}",
               len(faces), 1)
    d = face.eye_distance
    if d < MIN_EYE_DISTANCE:
        report.add("face_size", FAIL, f"the face is too small: {d:.0f} px between the eyes, need at least "
                   f"{MIN_EYE_DISTANCE:.0f}", d, MIN_EYE_DISTANCE)
    elif d < WARN_EYE_DISTANCE:
        report.add("face_size", WARN, f"small face: {d:.0f} px between the eyes, the crop is upsampled", d,
                   WARN_EYE_DISTANCE)
    else:
        report.add("face_size", PASS, f"{d:.0f} px between the eyes", d, WARN_EYE_DISTANCE)
    if face.landmarks is None or face.pose is None:
        report.add("landmarks", FAIL, "a face was found but its landmarks could not be fitted: the head is turned "
                   "too far (profile), the face is partly hidden or too small")
        return False
    for name, limit, warn in (("yaw", MAX_YAW, WARN_YAW), ("pitch", MAX_PITCH, WARN_PITCH)):
        angle = face.pose[name]
        what = "turned sideways" if name == "yaw" else "tilted up or down"
        if abs(angle) > limit:
            report.add(f"head_{name}", FAIL, f"the head is {what} by about {abs(angle):.0f} degrees (limit "
                       f"{limit:.0f}): {wording.noun} needs a frontal photo", angle, limit)
        elif abs(angle) > warn:
            report.add(f"head_{name}", WARN, f"the head is {what} by about {abs(angle):.0f} degrees", angle, warn)
        else:
            report.add(f"head_{name}", PASS, f"{name} {angle:+.0f} degrees", angle, limit)
    return not report.refused


def check_region(report: QualityReport, luma: np.ndarray) -> None:
    """Exposure and sharpness of a face region given as luma (0-255): the phenotype plugin passes
    the central region of its aligned 112 x 112 crop, where the limits were set; a caller with
    another region should pass one of similar scale (about 100 px across)."""
    mean, sd = float(luma.mean()), float(luma.std())
    clipped = float(((luma <= 5) | (luma >= 250)).mean())
    if mean < MIN_FACE_LUMA or (sd < MIN_FACE_CONTRAST and mean < 128):
        report.add("exposure", FAIL, f"the face is underexposed (mean brightness {mean:.0f} of 255)", mean,
                   MIN_FACE_LUMA)
    elif mean > MAX_FACE_LUMA or (sd < MIN_FACE_CONTRAST and mean >= 128):
        report.add("exposure", FAIL, f"the face is overexposed (mean brightness {mean:.0f} of 255)", mean,
                   MAX_FACE_LUMA)
    elif clipped > MAX_CLIPPED:
        report.add("exposure", FAIL, f"{clipped:.0%} of the face is clipped to black or white", clipped, MAX_CLIPPED)
    elif mean < WARN_FACE_LUMA or mean > WARN_BRIGHT_LUMA:
        report.add("exposure", WARN, f"the face is {'dark' if mean < WARN_FACE_LUMA else 'bright'} (mean "
                   f"brightness {mean:.0f} of 255)", mean, WARN_FACE_LUMA if mean < 128 else WARN_BRIGHT_LUMA)
    else:
        report.add("exposure", PASS, f"mean brightness {mean:.0f} of 255", mean, MIN_FACE_LUMA)
    sharp = laplacian_variance(luma) / max(sd * sd, 1e-6)
    if sharp < MIN_SHARPNESS:
        report.add("sharpness", FAIL, f"the face is blurred (sharpness {sharp:.3f}, need {MIN_SHARPNESS})", sharp,
                   MIN_SHARPNESS)
    elif sharp < WARN_SHARPNESS:
        report.add("sharpness", WARN, f"the face is slightly blurred (sharpness {sharp:.3f})", sharp, WARN_SHARPNESS)
    else:
        report.add("sharpness", PASS, f"sharpness {sharp:.3f}", sharp, MIN_SHARPNESS)
