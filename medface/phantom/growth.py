"""Craniofacial growth: how a child's head differs from an adult's, ages 1-18.

The phantom's population tables describe adults. A child's head is not a small adult head: the
neurocranium is close to adult size early (the brain's growth, Scammon's "neural" curve), while
the face, nose and mandible grow late and long (the "general" curve), so a young child has a
large cranium over a short, small face. The model gives every length measurement of
:mod:`medface.phantom.shape` a growth fraction ``f(age, sex)`` (the child's mean over the adult
mean, 1 from :data:`ADULT_AGE` on); angles keep their adult norms. A child's head is built by
warping the template to the child's *proportions* (each length over the head scale) and then
scaling the whole head by the head scale, the neurocranial fraction: the warp then changes
proportions only, never the overall size.

Sources (docs/phantom.md, "Growth"):

- Face, mandible, cranial base, ages 6-16: the University School Growth Study's mean
  cephalometric distances by age and sex (Riolo et al. 1974), ``growth_riolo.csv``.
- Neurocranium, ages 1-18: head circumference over the adult value, a curve assumed from the WHO
  Child Growth Standards' medians (1-5 years) and Nellhaus's composite chart (6-18 years),
  recalled, not read from the tables (an assumption; sexes pooled as ratios).
- Face, ages 1-6: no table read. Assumed: a power law in age below 6 whose exponent
  (:data:`EARLY_FACE_EXPONENT`) puts total face height at age 1 near 60 % of the adult value.
- Measurements no study here covers (facial breadths, the nose, the mouth, the eyes) follow the
  curve of the nearest measured dimension (assumed; :data:`CURVE_OF`).
- Soft-tissue depths and BMI of children: assumptions (:func:`tissue_factor`, :data:`CHILD_BMI_MEDIAN`).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ParameterError

ADULT_AGE = 18.0
MIN_AGE = 1.0
RIOLO_FILE = Path(__file__).with_name("growth_riolo.csv")
RIOLO_SOURCE = ("Riolo ML, Moyers RE, McNamara JA, Hunter WS. An Atlas of Craniofacial Growth: Cephalometric "
                "Standards from the University School Growth Study. Monograph 2, Craniofacial Growth Series. "
                "Ann Arbor: University of Michigan; 1974. Means by age (6-16) and sex, read from the "
                "machine-readable table of kmiddleton/Riolo_CF_Growth_Data.")
ASSUMED = "assumption"

#: head circumference over the adult value by age (years): the neurocranial growth curve
#: (assumed: WHO 2006 medians at 1-5 y and Nellhaus 1968 at 6-18 y as recalled, over an adult
#: 56.5 cm (M) / 55 cm (F); not read from the tables)
NEURAL = {1: 0.82, 2: 0.86, 3: 0.88, 4: 0.895, 5: 0.905, 6: 0.915, 8: 0.93, 10: 0.945, 12: 0.96,
          14: 0.975, 16: 0.99, 18: 1.0}
NEURAL_SOURCE = ("assumption: head circumference over the adult value, from the WHO Child Growth Standards "
                 "(2006) medians at 1-5 years and Nellhaus G, Pediatrics 1968;41:106-114 at 6-18 years, as "
                 "recalled (not read from the tables); sexes pooled")
#: below 6 years a face dimension is its 6-year fraction times (age / 6) ** exponent (assumed)
EARLY_FACE_EXPONENT = 0.15
EARLY_FACE_SOURCE = ("assumption: no facial growth table for ages 1-6 was read; a power law in age whose "
                     "exponent 0.15 puts total face height (n-me) at age 1 near 60 % of the adult value")

#: which growth curve each length measurement follows: "neural" or a Riolo measure. Those not
#: measured by Riolo et al. follow the nearest measured dimension (assumed, marked in PROXY).
CURVE_OF = {
    "cranial_length": "neural", "cranial_breadth": "neural", "auricular_height": "neural",
    "frontal_breadth": "neural",
    "upper_face_height": "ANS-N", "lower_face_height": "ME-ANS", "ramus_height": "CO-GO",
    "mandibular_body_length": "GO-PG",
    "bizygomatic_breadth": "PNS-ANS", "bigonial_breadth": "PNS-ANS", "malar_projection": "PNS-ANS",
    "interorbital_breadth": "neural", "intercanthal_width": "neural", "palpebral_fissure_length": "neural",
    "eye_protrusion": "neural",
    "nasal_height": "ANS-N", "nasal_protrusion": "ME-N", "nasal_width": "ME-N", "nasal_root_depth": "ME-N",
    "philtrum_length": "ME-ANS", "upper_vermilion_height": "ME-ANS", "lower_vermilion_height": "ME-ANS",
    "mouth_width": "ME-ANS", "mouth_corner_drop": "ME-ANS",
    "chin_deviation": "ME-N", "ramus_height_difference": "CO-GO",
}
#: measurements whose curve is the measured one (Riolo's own distance, or head circumference for
#: the vault); the others borrow a curve (an assumption each)
MEASURED = frozenset({"upper_face_height", "lower_face_height", "ramus_height", "mandibular_body_length",
                      "cranial_length", "cranial_breadth", "auricular_height"})
#: children's BMI median by age (years), sexes pooled (assumed from the WHO BMI-for-age medians
#: as recalled, not read)
CHILD_BMI_MEDIAN = {1: 17.0, 2: 16.2, 5: 15.3, 8: 15.7, 10: 16.5, 12: 17.6, 14: 19.0, 16: 20.3, 18: 21.5}
ADULT_REFERENCE_BMI = 25.0
#: log-normal spread of a child's BMI around the age's median (assumed: about the 8 % coefficient
#: of variation of the WHO BMI-for-age references in childhood, as recalled)
CHILD_BMI_SPREAD = 0.08


def check_age(age: float) -> float:
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not np.isfinite(age):
        raise ParameterError(f"age must be a number of years, got {age!r}", parameter="age")
    if age < MIN_AGE:
        raise ParameterError(f"age {age:g} years is below the growth model's {MIN_AGE:g} year", parameter="age")
    return float(age)


def is_child(age: float) -> bool:
    return age < ADULT_AGE


@lru_cache(maxsize=1)
def riolo_means() -> dict[tuple[str, str], dict[int, float]]:
    """(measure, sex) -> {age: mean mm} from ``growth_riolo.csv``."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    with open(RIOLO_FILE, encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        for row in rows:
            out.setdefault((row["measure"], row["sex"]), {})[int(row["age"])] = float(row["mean_mm"])
    return out


def _interpolate(table: dict, age: float) -> float:
    ages = sorted(table)
    return float(np.interp(age, ages, [table[a] for a in ages]))


@lru_cache(maxsize=64)
def _riolo_fractions(measure: str, sex: str) -> dict[int, float]:
    """The mean at each age over the mean at 16, made non-decreasing (a later mean below an
    earlier one is sampling noise in a cohort of 9-47 children)."""
    means = riolo_means()[(measure, sex)]
    last = means[max(means)]
    out, best = {}, 0.0
    for a in sorted(means):
        best = min(max(best, means[a] / last), 1.0)
        out[a] = best
    return out


def curve_fraction(curve: str, age: float, sex: str) -> float:
    """Growth fraction of one curve ("neural" or a Riolo measure) at ``age`` for ``sex``."""
    age = check_age(age)
    if age >= ADULT_AGE:
        return 1.0
    if curve == "neural":
        return _interpolate(NEURAL, age)
    fractions = _riolo_fractions(curve, "M" if sex == "M" else "F")
    first, last = min(fractions), max(fractions)
    if age >= last:
        return 1.0
    if age >= first:
        return _interpolate(fractions, age)
    return fractions[first] * (age / first) ** EARLY_FACE_EXPONENT


def fraction(component: str, age: float, sex: str) -> float:
    """A shape measurement's mean at ``age`` over its adult mean (1 for angles and adults)."""
    if age >= ADULT_AGE:
        return 1.0
    curve = CURVE_OF.get(component)
    return 1.0 if curve is None else curve_fraction(curve, age, sex)


def head_scale(age: float, sex: str) -> float:
    """Overall linear size of the head at ``age`` over the adult's: the neurocranial fraction."""
    return curve_fraction("neural", age, sex)


def tissue_factor(age: float, sex: str) -> float:
    """A child's soft-tissue depths over the adult table's (assumed: in proportion to total face
    height, Riolo's n-me; children's depth tables were not read)."""
    return curve_fraction("ME-N", age, sex)


def child_bmi_median(age: float) -> float:
    return _interpolate(CHILD_BMI_MEDIAN, check_age(age))


def adult_equivalent_bmi(bmi: float, age: float) -> float:
    """A child's BMI expressed on the adult tables' scale: the same ratio to the age's median as
    the adult reference BMI (assumed; the tables' BMI slopes are adult slopes)."""
    return ADULT_REFERENCE_BMI * bmi / child_bmi_median(age) if is_child(age) else bmi


def curve_source(component: str) -> str:
    curve = CURVE_OF.get(component)
    if curve is None:
        return "angle: held at the adult norm (assumption)"
    own = "" if component in MEASURED else f"{ASSUMED}: follows the curve of {curve} (nearest measured dimension); "
    if curve == "neural":
        return own + NEURAL_SOURCE
    return own + f"{RIOLO_SOURCE} {curve} at 6-16 years; below 6: {EARLY_FACE_SOURCE}"


def markdown_table(ages=(1, 3, 6, 10, 14)) -> str:
    """The growth fractions by age (both sexes) of every length measurement, for docs/phantom.md."""
    head = "| measurement | curve | " + " | ".join(f"{a} y F / M" for a in ages) + " |"
    lines = [head, "|" + "---|" * (len(ages) + 2)]
    for component, curve in CURVE_OF.items():
        cells = [f"{fraction(component, a, 'F'):.2f} / {fraction(component, a, 'M'):.2f}" for a in ages]
        mark = "" if component in MEASURED else " (borrowed)"
        lines.append(f"| {component} | {curve}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The growth field: a child's head is the adult-proportioned warp, then this field in the
# Frankfurt frame (origin between the porions, LPS): the neurocranium scaled by the neural
# fraction, the face (maxilla, mandible, the neck below them) by the facial fraction, blended
# smoothly in between. Region bounds (mm, Frankfurt frame) are choices for the phantom's template
# (an assumption): full face weight below FACE_BELOW_Z and in front of FACE_FRONT_OF_Y, none
# above FACE_ABOVE_Z (the orbital roofs and the vault) or behind BEHIND_Y (the occiput).
FACE_BELOW_Z, FACE_ABOVE_Z = -10.0, 25.0
FACE_FRONT_OF_Y, BEHIND_Y = 10.0, 50.0
FACE_CURVE = "ME-N"  # total face height n-me sets the face's overall fraction
#: the point the face grows away from: on the Frankfurt plane below nasion (mm). Chosen, by
#: trying the origin and points along the midline, so that the field alone leaves SNA and SNB
#: within 2 degrees of the adult's at age 1 (angles keep adult norms, an assumption); a centre on
#: the Frankfurt plane keeps that plane.
FACE_CENTRE = np.array([0.0, -92.0, 0.0])


def _smooth_down(x, full, none):
    """1 at or beyond ``full``, 0 at or beyond ``none``, a C1 smoothstep between; and its derivative."""
    t = np.clip((np.asarray(x, float) - full) / (none - full), 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t), -6.0 * t * (1.0 - t) / (none - full)


class GrowthField:
    """p -> s(p) (p - c) + neural c - offset, with s = neural + (face - neural) w(p): the
    neurocranium scaled about the origin, the face about :data:`FACE_CENTRE`, blended by the face
    weight w; the offset keeps the porions' midpoint at the origin. Its Jacobian is
    s I + (p - c) grad(s)^T, whose determinant s^2 (s + (p - c) . grad s) stays positive for
    the region bounds above (a face fraction below the neural one shrinks the face)."""

    def __init__(self, neural: float, face: float):
        self.neural, self.face = float(neural), float(face)
        zero = np.zeros((1, 3))
        self.offset = self.neural * FACE_CENTRE - self.scale_at(zero)[0] * FACE_CENTRE

    def _weight(self, p: np.ndarray):
        """Face weight w and its gradient at each point."""
        a, da = _smooth_down(p[:, 2], FACE_BELOW_Z, FACE_ABOVE_Z)
        b, db = _smooth_down(p[:, 1], FACE_FRONT_OF_Y, BEHIND_Y)
        grad = np.zeros_like(p)
        grad[:, 1], grad[:, 2] = a * db, da * b
        return a * b, grad

    def face_weight(self, points: np.ndarray) -> np.ndarray:
        return self._weight(np.asarray(points, float))[0]

    def scale_at(self, points: np.ndarray) -> np.ndarray:
        return self.neural + (self.face - self.neural) * self.face_weight(points)

    def apply(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, float)
        return self.scale_at(p)[:, None] * (p - FACE_CENTRE) + self.neural * FACE_CENTRE - self.offset

    def jacobian(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, float)
        w, grad = self._weight(p)
        s = self.neural + (self.face - self.neural) * w
        return s[:, None, None] * np.eye(3) + (p - FACE_CENTRE)[:, :, None] * ((self.face - self.neural) * grad)[:, None, :]

    def invert(self, points: np.ndarray, iterations: int = 30, tol: float = 1e-9) -> np.ndarray:
        """The points q with apply(q) = points (Newton's method from the neural scaling)."""
        p = np.asarray(points, float)
        q = (p + self.offset) / self.neural
        for _ in range(iterations):
            r = self.apply(q) - p
            if np.max(np.abs(r), initial=0.0) < tol:
                break
            q = q - np.linalg.solve(self.jacobian(q), r[:, :, None])[:, :, 0]
        return q


def growth_field(age: float, sex: str) -> GrowthField | None:
    """The field that turns an adult-proportioned head into a child's of ``age``; None for an adult."""
    if not is_child(check_age(age)):
        return None
    return GrowthField(head_scale(age, sex), curve_fraction(FACE_CURVE, age, sex))
