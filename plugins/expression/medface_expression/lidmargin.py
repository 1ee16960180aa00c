"""The palpebral fissure measured in the photo itself: the sclera's band beside the iris.

MediaPipe's face mesh under-reads lid closure (on the phantom a lid 75 % closed measures
about 40 %, a closed eye still 3 mm open: docs/validation/expression.md), and one lid's
estimate can jump by a millimetre. So the fissure is also measured in the pixels, where the
eye's opening is plain to see: on each eye, in :data:`COLUMNS_MM` columns beside the iris (on
both sides of it: the sclera), the band of **low saturation** (``(max - min) / max`` of the RGB
channels: the white of the eye, whatever its brightness, against the skin's warm colour) is
found along the face frame's ``v`` between the mesh's lid lines (widened by :data:`WINDOW_MM`).

* The skin's saturation and brightness in a column are the medians of its samples more than
  :data:`SKIN_MM` outside the mesh's lid lines. A sample darker than :data:`GATE` times the
  brightness expected of the sclera (the skin's in the rest photo; the rest photo's sclera-to-
  skin ratio in the others) cannot be sclera (lashes, the closed lid's slit): it takes the
  skin's saturation.
* The band is where the smoothed saturation (:data:`SMOOTH_MM`) lies below halfway between its
  minimum (between the mesh's lines) and the skin's; a column counts when that contrast is at
  least :data:`MIN_CONTRAST`.
* **Rest photo**: a band counts only when it is brighter than the skin (:data:`MIN_BRIGHTNESS`);
  the eye is measured when at least :data:`MIN_COLUMNS` of its columns count;
  each lid margin at the pupil is the mesh's there moved by the median offset of the band's
  edges from the mesh's lines in those columns (the mesh gives the lid's shape, the photo its
  level). That gives MRD1, MRD2 and the fissure height.
* **Other photos**: a column of the rest photo's with no band is a **closed** column (open
  fraction 0); otherwise its open fraction is its band's height over its rest height. The
  fissure height at the pupil is the rest fissure times the median open fraction; MRD1 and
  MRD2 are the margins carried as at rest (a closed column's edges both at the mesh's
  mid-line), so in a closing eye they need not add up to the fissure.

Where either eye cannot be measured at rest, or a photo's eye reads closed while the mesh
reads it open (:data:`CONFLICT_OPEN`), **both eyes** use the mesh's values in every photo of
the session (:func:`.grading.consistent_fissures`), with a warning, so one item never compares
a photo-measured eye with a mesh-measured one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import landmarks as L
from .sampling import sample_columns

#: the columns searched, mm beyond the iris's edge (iris radius: half the assumed iris diameter),
#: on both sides of the pupil (assumption; the medial corner's pink caruncle lies further in)
COLUMNS_MM = (1.5, 2.5, 3.5)
#: the window along v beyond each of the mesh's lid lines, and where the skin is sampled (mm)
WINDOW_MM, SKIN_MM = 3.0, 1.5
#: sampling step and Gaussian smoothing of the saturation along v (mm)
STEP_MM, SMOOTH_MM = 0.1, 0.2
#: the least saturation contrast (skin minus band minimum) that counts as sclera (assumption)
MIN_CONTRAST = 0.08
#: a sample darker than this fraction of the sclera's expected brightness is not sclera (assumption)
GATE = 0.5
#: at rest, a band counts as sclera only when at least this much brighter than the skin beside it
#: (its core over the skin's median brightness; assumption: the white of the eye is not darker than
#: the lid skin in a photo lit from the front; on the phantom 0.87-3.96, on astronaut.png 1.09-1.57,
#: and 0.63-1.09 on the spectacled, shadowed eyes of grace_hopper.jpg, where the bands are not sclera)
MIN_BRIGHTNESS = 1.0
#: the columns (of 2 x len(COLUMNS_MM)) that must show the sclera at rest for an eye to be measured
MIN_COLUMNS = 2
#: a photo's eye read closed (open fraction <= CONFLICT_OPEN[0]) where the mesh reads it at least
#: CONFLICT_OPEN[1] of its rest fissure open: the photo is not trusted (assumption)
CONFLICT_OPEN = (0.1, 0.8)


@dataclass
class Column:
    """One column's band in one photo (face-frame mm; ``upper``/``lower`` None: no band)."""

    u: float
    mesh_upper: float
    mesh_lower: float
    upper: float | None = None
    lower: float | None = None
    brightness_ratio: float = 1.0  # the band's brightness over the skin's

    @property
    def found(self) -> bool:
        return self.upper is not None

    @property
    def height(self) -> float:
        return float(self.lower - self.upper) if self.found else 0.0


@dataclass
class EyeReading:
    """One eye in one photo: the columns and, when measured, the lid margins at the pupil."""

    columns: list[Column] = field(default_factory=list)
    mrd1: float | None = None
    mrd2: float | None = None
    fissure: float | None = None
    open_fraction: float | None = None  # 1 at rest

    @property
    def found(self) -> int:
        return sum(c.found for c in self.columns)


def saturation_and_value(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``((max - min) / max, max)`` of the RGB channels of sampled colours (n, 3)."""
    hi, lo = rgb.max(axis=-1), rgb.min(axis=-1)
    return (hi - lo) / np.maximum(hi, 1.0), hi


def _crossing(vs: np.ndarray, s: np.ndarray, i: int, level: float, step: int) -> float:
    """Where ``s`` first rises through ``level`` going from index ``i`` by ``step`` (interpolated)."""
    j = i
    while 0 < j < len(s) - 1 and s[j] < level:
        j += step
    k = j - step
    if s[j] < level or s[j] == s[k]:
        return float(vs[j])
    return float(vs[k] + (level - s[k]) / (s[j] - s[k]) * (vs[j] - vs[k]))


def sclera_band(vs: np.ndarray, sat: np.ndarray, value: np.ndarray, lids: tuple[float, float],
                ratio: float = 1.0) -> tuple[float, float, float] | None:
    """``(upper, lower, brightness ratio)`` of the low-saturation band between the mesh's lid lines
    ``lids`` (upper, lower v), or None when its contrast is below :data:`MIN_CONTRAST`; ``ratio``:
    the sclera's expected brightness over the skin's (see the module's text)."""
    from scipy.ndimage import gaussian_filter1d

    up, lo = lids
    skin = (vs < up - SKIN_MM) | (vs > lo + SKIN_MM)
    inside = (vs > up - 1.0) & (vs < lo + 1.0)
    if skin.sum() < 3 or not inside.any():
        return None
    v_skin, s_skin = float(np.median(value[skin])), float(np.median(sat[skin]))
    s = np.where(value >= GATE * ratio * v_skin, sat, np.maximum(sat, s_skin))
    s = gaussian_filter1d(s, SMOOTH_MM / float(vs[1] - vs[0]), mode="nearest")
    i = int(np.flatnonzero(inside)[np.argmin(s[inside])])
    contrast = s_skin - float(s[i])
    if contrast < MIN_CONTRAST:
        return None
    level = float(s[i]) + 0.5 * contrast
    core = value[max(0, i - 3):i + 4]
    return (_crossing(vs, s, i, level, -1), _crossing(vs, s, i, level, 1),
            float(core.mean() / max(v_skin, 1.0)))


def eye_columns(pixels: np.ndarray, frame, f: np.ndarray, side: str, iris_mm: float,
                ratios: list[float] | None = None) -> list[Column]:
    """The columns of one eye (``f``: landmarks in face mm), lateral-most first on the image's left."""
    from .measure import v_at_u

    pupil = float(f[L.IRIS_CENTRE[side], 0])
    upper, lower = f[list(L.UPPER_LID[side])], f[list(L.LOWER_LID[side])]
    offsets = [-(iris_mm / 2 + d) for d in COLUMNS_MM[::-1]] + [iris_mm / 2 + d for d in COLUMNS_MM]
    out = [Column(pupil + du, v_at_u(upper, pupil + du), v_at_u(lower, pupil + du)) for du in offsets]
    spans = [np.arange(c.mesh_upper - WINDOW_MM, c.mesh_lower + WINDOW_MM + STEP_MM / 2, STEP_MM) for c in out]
    searched = [k for k, vs in enumerate(spans) if len(vs) > 4]
    colours = sample_columns(pixels, frame, [(out[k].u, spans[k]) for k in searched])
    for k, rgb in zip(searched, colours):
        col = out[k]
        sat, value = saturation_and_value(rgb)
        band = sclera_band(spans[k], sat, value, (col.mesh_upper, col.mesh_lower), 1.0 if ratios is None else ratios[k])
        if band is not None:
            col.upper, col.lower, col.brightness_ratio = band
    return out


def _carried(columns: list[Column], f: np.ndarray, side: str) -> tuple[float, float]:
    """``(mrd1, mrd2)``: the mesh's margins at the pupil moved by the median offsets of the
    columns' edges from the mesh's lines (a closed column's edges at the mesh's mid-line)."""
    from .measure import v_at_u

    pupil = f[L.IRIS_CENTRE[side]]
    up = v_at_u(f[list(L.UPPER_LID[side])], pupil[0])
    lo = v_at_u(f[list(L.LOWER_LID[side])], pupil[0])
    mid = [(c.mesh_upper + c.mesh_lower) / 2 for c in columns]
    d_up = np.median([(c.upper if c.found else m) - c.mesh_upper for c, m in zip(columns, mid)])
    d_lo = np.median([(c.lower if c.found else m) - c.mesh_lower for c, m in zip(columns, mid)])
    return float(pupil[1] - (up + d_up)), float(lo + d_lo - pupil[1])


def read_rest_eye(pixels: np.ndarray, frame, f: np.ndarray, side: str, iris_mm: float) -> EyeReading:
    """One eye in the rest photo: measured when :data:`MIN_COLUMNS` columns show the sclera."""
    columns = eye_columns(pixels, frame, f, side, iris_mm)
    for c in columns:
        if c.found and c.brightness_ratio < MIN_BRIGHTNESS:
            c.upper = c.lower = None
    reading = EyeReading(columns)
    if reading.found >= MIN_COLUMNS:
        found = [c for c in columns if c.found]
        reading.mrd1, reading.mrd2 = _carried(found, f, side)
        reading.fissure, reading.open_fraction = reading.mrd1 + reading.mrd2, 1.0
    return reading


def read_eye(pixels: np.ndarray, frame, f: np.ndarray, side: str, iris_mm: float, rest: EyeReading) -> EyeReading:
    """One eye in another photo of the session, in the columns the rest photo measured."""
    ratios = [c.brightness_ratio for c in rest.columns]
    columns = eye_columns(pixels, frame, f, side, iris_mm, ratios)
    used = [(c, r) for c, r in zip(columns, rest.columns) if r.found]
    reading = EyeReading(columns)
    fractions = [c.height / max(r.height, 1e-6) for c, r in used]
    reading.open_fraction = float(np.clip(np.median(fractions), 0.0, None))
    reading.fissure = rest.fissure * reading.open_fraction
    reading.mrd1, reading.mrd2 = _carried([c for c, _ in used], f, side)
    return reading


def conflicting(reading: EyeReading, mesh_open: float) -> bool:
    """The photo reads the eye closed while the mesh reads it open (see :data:`CONFLICT_OPEN`)."""
    return reading.open_fraction is not None and reading.open_fraction <= CONFLICT_OPEN[0] \
        and mesh_open >= CONFLICT_OPEN[1]


def read_session(pixels: dict, frames: dict, meshes: dict, iris_mm: float) -> dict:
    """``expression -> side -> EyeReading`` of a session (``pixels``, ``frames`` and the pixel
    ``meshes`` by expression; the rest photo's readings are the references). Empty when the rest
    photo shows no measurable sclera on either eye."""
    f = {e: frames[e].to_face(meshes[e]) for e in meshes}
    rest = {s: read_rest_eye(pixels["rest"], frames["rest"], f["rest"], s, iris_mm) for s in L.SIDES}
    out = {"rest": rest}
    if any(r.fissure is None for r in rest.values()):
        return out
    for e in meshes:
        if e != "rest":
            out[e] = {s: read_eye(pixels[e], frames[e], f[e], s, iris_mm, rest[s]) for s in L.SIDES}
    return out
