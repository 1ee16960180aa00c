"""Subjects and heads: sample a subject's parameters, then warp the template into its head.

A :class:`Subject` is the full recipe of one synthetic person: sex, age, BMI, a target value
for every shape measurement, a z-score for the soft-tissue depth at every depth landmark and
the condition preset it carries (if any). :func:`make_head` turns it into a :class:`Head`:
cranium, mandible and skin meshes in LPS millimetres (Frankfurt horizontal, origin between
the porions) and all landmarks, exact for that subject.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import numpy as np

from ..data.mesh import SurfaceMesh, vertex_normals
from ..errors import ParameterError
from . import features as FT
from . import growth as GR
from . import shape as SH
from . import tables as TB
from .template import (DEPTH_PAIRS, FreePoint, Template, depth_direction, frankfurt_frame,
                       get_template, ray_hit)

SEXES = ("F", "M")
AGE_RANGE = (GR.MIN_AGE, TB.AGE_RANGE[1])  # children through the growth model (medface.phantom.growth)
BMI_RANGE = TB.BMI_RANGE
# spread of the asymmetry measures in the normal population (assumed; docs/phantom.md)
ASYMMETRY_SD = {"chin_deviation": 1.2, "ramus_height_difference": 1.5}
CORRECTION_RADIUS = 30.0  # mm, support of the tissue-depth correction of the skin
MIN_SIZE_SHARE = 0.25  # a feature never shrinks a size below this share of its mean (assumption)


@dataclass(frozen=True)
class Subject:
    sex: str = "F"
    age: float = 40.0
    bmi: float = 24.0
    targets: dict = field(default_factory=dict)  # shape measurement -> target (mm or deg)
    tissue_z: dict = field(default_factory=dict)  # depth landmark (left id for pairs) -> z-score
    condition: str | None = None
    severity: str | None = None
    subject_id: str = "subject"
    tissue_override: dict = field(default_factory=dict)  # bony id -> depth (mm), replaces the table
    features: dict = field(default_factory=dict)  # facial feature id -> strength in SD (medface.phantom.features)

    def __post_init__(self):
        validate(self.sex, self.age, self.bmi, self.condition, self.severity)
        known = {b for b, _ in DEPTH_PAIRS.values()}
        for key, value in self.tissue_override.items():
            if key not in known:
                raise ParameterError(f"no tissue-depth landmark {key!r}; known: {', '.join(sorted(known))}",
                                     parameter="tissue_override")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
                    or value <= 0:
                raise ParameterError(f"soft-tissue thickness at {key} must be a positive number of mm, got {value!r}",
                                     parameter="tissue_override")
        unknown = sorted(set(self.targets) - set(SH.NAMES))
        if unknown:
            raise ParameterError(f"unknown shape measurement(s) {', '.join(unknown)}; known: {', '.join(SH.NAMES)}",
                                 parameter="targets")
        for key, value in self.targets.items():
            if not np.isfinite(value) or (key not in SH.SIGNED and value <= 0):
                raise ParameterError(f"target {key} = {value} must be a positive finite number", parameter=key)
        for key, value in self.features.items():
            FT.feature(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
                    or not 0 <= value <= 6:
                raise ParameterError(f"feature {key} strength must be 0-6 SD, got {value!r}", parameter="features")

    def to_dict(self) -> dict:
        return {"subject_id": self.subject_id, "sex": self.sex, "age": self.age, "bmi": self.bmi,
                "condition": self.condition, "severity": self.severity,
                "features": {k: round(float(v), 4) for k, v in self.features.items()},
                "targets": {k: round(float(v), 4) for k, v in self.targets.items()},
                "tissue_z": {k: round(float(v), 4) for k, v in self.tissue_z.items()}}


def validate(sex, age, bmi, condition=None, severity=None) -> None:
    if sex not in SEXES:
        raise ParameterError(f"sex must be 'F' or 'M', got {sex!r}", parameter="sex")
    for name, value, (lo, hi), unit in (("age", age, AGE_RANGE, "years"), ("bmi", bmi, BMI_RANGE, "kg/m2")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ParameterError(f"{name} must be a number, got {value!r}", parameter=name)
        if not lo <= value <= hi:
            raise ParameterError(f"{name} {value:g} {unit} is outside the supported range {lo:g}-{hi:g} {unit}",
                                 parameter=name)
    if condition is not None:
        try:
            TB.condition(condition)
        except ParameterError:
            known = ", ".join(c.id for c in TB.CONDITIONS)
            raise ParameterError(f"unknown condition {condition!r}; known: {known}", parameter="condition") from None
        if severity not in TB.SEVERITIES:
            raise ParameterError(f"severity must be one of {', '.join(TB.SEVERITIES)}, got {severity!r}",
                                 parameter="severity")


def norm_of(name: str, sex: str, age: float = GR.ADULT_AGE) -> tuple[float, float]:
    """(mean, SD) of a shape target at ``age``: the table's norm; for the extended components and
    the asymmetries, 0 (a deviation) and its spread. A child's lengths are the adult's times the
    measurement's growth fraction (the SD too: a constant coefficient of variation, assumed)."""
    comp = next(c for c in SH.COMPONENTS if c.name == name)
    if comp.table_id is not None:
        mean, sd = TB.norm(comp.table_id, sex)
    elif comp.spread is not None:
        mean, sd = 0.0, comp.spread
    else:
        mean, sd = 0.0, ASYMMETRY_SD[name]
    if age < GR.ADULT_AGE:
        f = GR.fraction(name, age, sex)
        mean, sd = mean * f, sd * f
    return mean, sd


def _apply_features(targets: dict, features: dict, sex: str, age: float = GR.ADULT_AGE) -> dict:
    """Targets moved by each feature's component shifts (in each component's SD). A size never
    drops below a quarter of its mean (a strong feature on a subject already small there would
    otherwise ask for a negative lip height)."""
    out = dict(targets)
    for fid, amount in features.items():
        for name, shift in FT.feature(fid).component_shifts(amount).items():
            mean, sd = norm_of(name, sex, age)
            out[name] = out[name] + shift * sd
            if name not in SH.SIGNED:
                out[name] = max(out[name], MIN_SIZE_SHARE * mean)
    return out


def _depth_keys() -> list[str]:
    return sorted({s if not s.endswith("_r") else s[:-2] + "_l" for s in DEPTH_PAIRS})


def mean_subject(sex: str = "F", age: float = 40.0, bmi: float | None = None, subject_id: str = "mean",
                 features: dict | None = None) -> Subject:
    """Every measurement at its population mean for the sex and age, tissue depths at the table
    values (and moved by ``features``: facial feature id -> strength in SD). BMI: 24 for an adult,
    the age's median for a child, unless given."""
    features = dict(features or {})
    age = GR.check_age(age)
    bmi = bmi if bmi is not None else (GR.child_bmi_median(age) if GR.is_child(age) else 24.0)
    targets = {n: norm_of(n, sex, age)[0] for n in SH.NAMES}
    targets = _apply_features(targets, features, sex, age) if features else targets
    return Subject(sex, float(age), float(bmi), targets, {k: 0.0 for k in _depth_keys()}, subject_id=subject_id,
                   features=features)


ORIGINAL = SH.ORIGINAL


def _correlation_matrix(sex: str) -> np.ndarray:
    """Correlations between the original shape measurements (tables.CORRELATIONS where both are
    parameters); the extended ones vary independently."""
    originals = [c for c in SH.COMPONENTS if c.name in ORIGINAL]
    index = {c.table_id: i for i, c in enumerate(originals) if c.table_id}
    R = np.eye(len(ORIGINAL))
    for corr in TB.CORRELATIONS:
        a, b = getattr(corr, "a", None), getattr(corr, "b", None)
        if a in index and b in index:
            R[index[a], index[b]] = R[index[b], index[a]] = corr.r
    # keep it positive definite
    w, V = np.linalg.eigh(R)
    if w.min() < 1e-3:
        R = V @ np.diag(np.maximum(w, 1e-3)) @ V.T
        d = np.sqrt(np.diag(R))
        R = R / d[:, None] / d[None, :]
    return R


def _tissue_correlation(keys: list[str]) -> np.ndarray:
    """Correlations between the subject's tissue-depth z-scores (tables.CORRELATIONS, 'tissue')."""
    table_key = {k: TB.tissue_entry(k).key for k in keys}
    R = np.eye(len(keys))
    for corr in TB.CORRELATIONS:
        if corr.table != "tissue":
            continue
        for i, a in enumerate(keys):
            for j, b in enumerate(keys):
                if {table_key[a], table_key[b]} == {corr.a, corr.b} and i != j:
                    R[i, j] = corr.r
    return R


def _side_stream(rng: np.random.Generator) -> np.random.Generator:
    """A generator seeded from ``rng``'s current state, without advancing ``rng``."""
    state = repr(rng.bit_generator.state).encode()
    return np.random.default_rng([int.from_bytes(hashlib.sha256(state).digest()[:8], "little"), 0xE7])


DEFAULT_AGES = (20.0, 75.0)  # years, the age range drawn when none is given


def sample_subject(rng: np.random.Generator, *, sex: str | None = None, age: float | None = None,
                   bmi: float | None = None, condition: str | None = None, severity: str = "moderate",
                   subject_id: str = "subject", features: dict | None = None,
                   ages: tuple[float, float] = DEFAULT_AGES) -> Subject:
    """Draw one subject from the population (and shift it by a condition preset and by facial
    features, id -> strength in SD, if given). Without ``age`` the age is uniform over ``ages``;
    a child (under 18) has a child's proportions and size (:mod:`medface.phantom.growth`)."""
    sex = sex if sex is not None else ("F" if rng.random() < 0.5 else "M")
    age = float(age) if age is not None else float(rng.uniform(*checked_ages(ages)))
    validate(sex, age, 25.0, condition, severity if condition else None)
    if bmi is None and GR.is_child(age):  # a child's BMI around the median for its age (assumed spread)
        bmi = float(np.clip(rng.lognormal(np.log(GR.child_bmi_median(age)), GR.CHILD_BMI_SPREAD), 11.0, 35.0))
    bmi = float(bmi) if bmi is not None else float(np.clip(rng.lognormal(np.log(25.0), 0.16), 17.0, 42.0))
    validate(sex, age, bmi, condition, severity if condition else None)
    z = rng.multivariate_normal(np.zeros(len(ORIGINAL)), _correlation_matrix(sex))
    targets = {}
    for i, name in enumerate(ORIGINAL):
        mean, sd = norm_of(name, sex, age)
        targets[name] = mean + np.clip(z[i], -2.5, 2.5) * sd
    if condition:
        preset = TB.condition(condition)
        for measure, shift in preset.shifts(severity).items():
            comp = next((c for c in SH.COMPONENTS if c.table_id == measure), None)
            if comp is None:
                continue  # a measurement the phantom does not model (documented)
            mean, sd = norm_of(comp.name, sex, age)
            if getattr(preset, "side", None) == "unilateral" and comp.name == "ramus_height":
                targets["ramus_height_difference"] = -shift * sd  # left side only: right minus left
                targets["ramus_height"] = targets["ramus_height"] + shift * sd / 2
                continue
            targets[comp.name] = targets[comp.name] + shift * sd
    keys = _depth_keys()
    tz = rng.multivariate_normal(np.zeros(len(keys)), _tissue_correlation(keys))
    tissue = {k: float(np.clip(z, -2.5, 2.5)) for k, z in zip(keys, tz)}
    # from a side stream that leaves ``rng`` where it was: a seed keeps giving the same original
    # measurements and tissue depths, to this subject and to every subject drawn after it
    for name, zi in zip(SH.EXTENDED, _side_stream(rng).standard_normal(len(SH.EXTENDED))):
        mean, sd = norm_of(name, sex, age)
        targets[name] = mean + float(np.clip(zi, -2.5, 2.5)) * sd
    features = dict(features or {})
    targets = _apply_features(targets, features, sex, age) if features else targets
    return Subject(sex, age, bmi, targets, tissue, condition, severity if condition else None, subject_id,
                   features=features)


def checked_ages(ages) -> tuple[float, float]:
    """(low, high) years, refused unless low <= high within :data:`AGE_RANGE`."""
    lo, hi = (float(a) for a in ages)
    if not (AGE_RANGE[0] <= lo <= hi <= AGE_RANGE[1]):
        raise ParameterError(f"age range {lo:g}-{hi:g} years must be low-high within "
                             f"{AGE_RANGE[0]:g}-{AGE_RANGE[1]:g}", parameter="ages")
    return lo, hi


# ---------------------------------------------------------------------------------------------
@dataclass
class Head:
    subject: Subject
    meshes: dict  # name -> (vertices, faces)
    landmarks: dict  # id -> (3,) position
    warp: "FramedWarp"  # template head frame -> this head (forward / inverse)
    correction: "SkinCorrection"

    def mesh(self, name: str):
        from ..data import SurfaceMesh

        v, f = self.meshes[name]
        return SurfaceMesh(v, f, name=name)

    @property
    def cranium(self):
        return self.mesh("cranium")

    @property
    def mandible(self):
        return self.mesh("mandible")

    @property
    def skin(self):
        return self.mesh("skin")

    def landmark_set(self, kind: str | None = None):
        """Landmarks as a :class:`medface.data.Landmarks` (``kind``: craniometric, soft_tissue or None)."""
        from ..data.vocabulary import get
        from ..data import Landmarks

        ids = [k for k in self.landmarks if kind is None or get(k).kind == kind]
        return Landmarks(ids, np.array([self.landmarks[k] for k in ids]).reshape(-1, 3), name=self.subject.subject_id)

    def measurements(self) -> dict[str, float]:
        return SH.measure_all(self.landmarks)

    def tissue_depths(self) -> dict[str, float]:
        """Measured distance from each bony depth landmark to its soft-tissue landmark."""
        return {s: float(np.linalg.norm(self.landmarks[s] - self.landmarks[b])) for s, (b, _) in DEPTH_PAIRS.items()}

    def expected_tissue_depths(self) -> dict[str, float]:
        return {s: target_depth(self.subject, b) for s, (b, _) in DEPTH_PAIRS.items()}

    def head_circumference(self) -> float:
        """Occipitofrontal circumference (mm): the skin's cross-section through g_s and op_s."""
        import trimesh

        g, op = self.landmarks["g_s"], self.landmarks["op_s"]
        axis = (op - g) / np.linalg.norm(op - g)
        normal = np.cross(axis, [1.0, 0.0, 0.0])
        normal /= np.linalg.norm(normal)
        v, f = self.meshes["skin"]
        section = trimesh.Trimesh(v, f, process=False).section(plane_origin=g, plane_normal=normal)
        if section is None:
            raise RuntimeError("the head circumference plane misses the skin")
        return float(max(e.length(section.vertices) for e in section.entities))

    def skin_forward(self, template_points: np.ndarray) -> np.ndarray:
        """Map template points to this head's skin space (warp, depth correction, frame)."""
        inner = self.warp.warp.forward(template_points, soft=True) + self.correction.displacement(template_points)
        return self.warp._rigid(inner)

    def skin_inverse(self, points: np.ndarray, iterations: int = 40) -> np.ndarray:
        y = self.warp._unrigid(points)
        return SH.invert(lambda x: self.warp.warp.forward(x, soft=True) + self.correction.displacement(x), y,
                         iterations=iterations)[0]


def target_depth(subject: Subject, bony_id: str) -> float:
    """The subject's soft-tissue depth over a bony landmark: table mean + z * SD (or the override)."""
    if bony_id in subject.tissue_override:
        return float(subject.tissue_override[bony_id])
    if GR.is_child(subject.age):  # the adult table at 18, on the child's relative BMI, scaled (assumed)
        mean, sd = TB.tissue_depth(bony_id, subject.sex, GR.ADULT_AGE,
                                   GR.adult_equivalent_bmi(subject.bmi, subject.age))
        factor = GR.tissue_factor(subject.age, subject.sex)
        mean, sd = mean * factor, sd * factor
    else:
        mean, sd = TB.tissue_depth(bony_id, subject.sex, subject.age, subject.bmi)
    key = bony_id[:-2] + "_l" if bony_id.endswith("_r") else bony_id
    soft = next(s for s, (b, _) in DEPTH_PAIRS.items() if b == key)
    return float(max(mean + subject.tissue_z.get(soft, 0.0) * sd, 1.0))


@dataclass
class SkinCorrection:
    """Compactly supported (Wendland C2) radial basis displacement in template coordinates."""

    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    radius: float = CORRECTION_RADIUS

    @staticmethod
    def kernel(r, radius):
        t = np.clip(r / radius, 0, 1)
        return (1 - t) ** 4 * (4 * t + 1)

    @classmethod
    def fit(cls, centres: np.ndarray, displacements: np.ndarray, radius: float = CORRECTION_RADIUS):
        K = cls.kernel(np.linalg.norm(centres[:, None] - centres[None], axis=2), radius)
        coef = np.linalg.solve(K + 1e-9 * np.eye(len(K)), displacements)
        return cls(centres, coef, radius)

    def plus(self, other: "SkinCorrection") -> "SkinCorrection":
        assert np.allclose(self.centres, other.centres) and self.radius == other.radius
        return SkinCorrection(self.centres, self.coefficients + other.coefficients, self.radius)

    def displacement(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, float)
        out = np.zeros_like(points)
        for c, a in zip(self.centres, self.coefficients):
            d = np.linalg.norm(points - c, axis=1)
            near = d < self.radius
            out[near] += self.kernel(d[near], self.radius)[:, None] * a
        return out


# ---------------------------------------------------------------------------------------------
class _Basis:
    """Per-template precomputation: warp fields at every vertex, the Jacobian, neighbourhoods."""

    def __init__(self, template: Template):
        self.template = template
        self.landmarks = template.landmark_positions()
        self.fields = {name: np.stack([c.field(v, self.landmarks) for c in SH.COMPONENTS]).astype(np.float32)
                       for name, (v, f) in template.meshes.items()}
        self.landmark_ids = list(self.landmarks)
        self.landmark_points = np.array([self.landmarks[k] for k in self.landmark_ids])
        soft = np.array([SH.is_soft_landmark(k) for k in self.landmark_ids])
        fields = np.stack([c.field(self.landmark_points, self.landmarks) for c in SH.COMPONENTS])
        fields[np.ix_(SH.SOFT_MASK, ~soft)] = 0.0  # bony landmarks never follow soft components
        self.landmark_fields = fields  # (components, landmarks, 3): positions are linear in amounts
        self.J = self.jacobian(np.zeros(len(SH.NAMES)))
        # the skin correction is always evaluated at the template skin vertices: precompute its kernel
        from scipy import sparse

        sv, sfaces = template.meshes["skin"]
        centres = np.array([self.landmarks[soft] for soft in DEPTH_PAIRS])
        rows, cols, vals = [], [], []
        for j, c in enumerate(centres):
            d = np.linalg.norm(sv - c, axis=1)
            near = np.nonzero(d < CORRECTION_RADIUS)[0]
            rows.append(near)
            cols.append(np.full(len(near), j))
            vals.append(SkinCorrection.kernel(d[near], CORRECTION_RADIUS))
        self.skin_kernel = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                             shape=(len(sv), len(centres)))
        centroids = sv[sfaces].mean(axis=1)
        self.ray_faces = {soft: np.nonzero(np.linalg.norm(centroids - self.landmarks[soft], axis=1) < 25.0)[0]
                          for soft in DEPTH_PAIRS}
        self.face_normals = {name: SurfaceMesh(v, f).face_normals() for name, (v, f) in template.meshes.items()}
        self.neighbourhoods, self.neighbour_faces = {}, {}
        for soft, (bone, kind) in DEPTH_PAIRS.items():
            sp = template.landmarks[bone]
            v, f = template.meshes[sp.mesh]
            ids = np.nonzero(np.linalg.norm(v - self.landmarks[bone], axis=1) < 9.0)[0]
            faces = f[np.isin(f, ids).any(axis=1)]
            self.neighbourhoods[bone] = ids
            self.neighbour_faces[bone] = faces

    def landmark_array(self, amounts: np.ndarray) -> np.ndarray:
        """(landmarks, 3) positions after the warp, in ``landmark_ids`` order."""
        return self.landmark_points + np.tensordot(amounts, self.landmark_fields, axes=1)

    def landmarks_at(self, amounts: np.ndarray) -> dict:
        return dict(zip(self.landmark_ids, self.landmark_array(amounts)))

    def measure(self, amounts: np.ndarray) -> np.ndarray:
        return SH.measure_vector(self.landmarks_at(amounts))

    def jacobian(self, amounts: np.ndarray, columns=None) -> np.ndarray:
        return SH.numeric_jacobian(self.measure, amounts, columns=columns)

    def warp_vertices(self, name: str, amounts: np.ndarray) -> np.ndarray:
        """Warp a template mesh; the skin takes the soft-tissue components too, bone does not."""
        v = self.template.meshes[name][0]
        a = amounts if name == "skin" else np.where(SH.SOFT_MASK, 0.0, amounts)
        return v + np.tensordot(a.astype(np.float32), self.fields[name], axes=1).astype(np.float64)


_BASIS: _Basis | None = None
_BASIS_LOCK = threading.Lock()


def _basis() -> _Basis:
    global _BASIS
    with _BASIS_LOCK:
        if _BASIS is None:
            _BASIS = _Basis(get_template())
        return _BASIS


def make_head(subject: Subject) -> Head:
    """The subject's head: warped template meshes, skin pinned to the subject's tissue depths.

    The warp amounts are found by Gauss-Newton steps on the landmarks alone (cheap: landmark
    positions are linear in the amounts, the measurements are not); the meshes are warped once
    at the end. Pinning the skin to the tissue depths afterwards moves nearby soft-tissue
    landmarks a little, so soft measurements near the depth points (philtrum, lips) can differ
    from their targets by a few millimetres (docs/phantom.md).
    """
    basis = _basis()
    # a child's head: the warp, then the growth field (growth.growth_field); the warp's amounts are
    # found through the field, so the targets are met on the grown head
    field = GR.growth_field(subject.age, subject.sex)
    measure = None if field is None else _grown_measure(basis, field)  # None: the template warp's own
    base = SH.measure_all(basis.landmarks) if field is None else dict(zip(SH.NAMES, measure(np.zeros(len(SH.NAMES)))))
    goal = np.array([subject.targets.get(n, base[n]) for n in SH.NAMES])
    weights = measurement_weights(subject)
    amounts = np.zeros(len(SH.NAMES))
    # bone first (bony components against bony measurements), then the soft tissue on top of it;
    # the extended components after the others, as deviations from what the rest implies
    rel = SH.EXTENDED_MASK
    for block in (~SH.SOFT_MASK & ~rel, SH.SOFT_MASK & ~rel):
        amounts = _solve_block(basis, goal, weights, amounts, block, measure)
    deviation = np.array([subject.targets.get(n, 0.0) for n in SH.NAMES])
    amounts, folded = _add_deviations(basis, goal, weights, amounts, deviation, measure)
    # fold guard: extreme or conflicting targets may ask for a warp that turns triangles over;
    # shrink the warp towards the template until none does (the targets are then missed a little)
    for _ in range(12):
        if not folded:
            break
        amounts = amounts * 0.92
        folded = _folds(basis, amounts)
    return _build_head(subject, amounts, field)


def _grown_measure(basis: "_Basis", field: GR.GrowthField):
    """The shape measurements of the warped landmarks after the Frankfurt move and the growth field."""
    ids = basis.landmark_ids

    def measure(amounts: np.ndarray) -> np.ndarray:
        moved = basis.landmark_array(amounts)
        frame = frankfurt_frame(dict(zip(ids, moved)))
        grown = field.apply(moved @ frame[:3, :3].T + frame[:3, 3])
        return SH.measure_vector(dict(zip(ids, grown)))

    return measure


def _add_deviations(basis, goal, weights, first, deviation, measure=None) -> tuple[np.ndarray, bool]:
    """Amounts that also meet the extended components' deviations from what ``first`` implies,
    and whether they fold a mesh. Deviations that would fold one are tempered (70 %, 40 %); where
    they all fold it and the original targets alone do not, the original amounts are kept; where
    those fold it too, the fold guard treats the head as it always did."""
    rel = SH.EXTENDED_MASK
    implied = (measure or basis.measure)(first)
    goal = goal.copy()
    if not np.any(deviation[rel]):
        return first, _folds(basis, first)
    for scale in (1.0, 0.7, 0.4):
        goal[rel] = implied[rel] + scale * deviation[rel]
        amounts = first
        for block in (~SH.SOFT_MASK, SH.SOFT_MASK):
            amounts = _solve_block(basis, goal, weights, amounts, block, measure)
        if not _folds(basis, amounts):
            return amounts, False
        if scale == 1.0:
            first_folds = _folds(basis, first)  # checked once: it decides whether tempering can help
            if first_folds:
                break
    return first, first_folds


def _folds(basis: "_Basis", amounts: np.ndarray, limit: float = 0.1) -> bool:
    """Would the warp turn any triangle of any mesh (cosine to its template normal below ``limit``)?"""
    for name, (v0, f) in basis.template.meshes.items():
        v1 = basis.warp_vertices(name, amounts)
        n0 = basis.face_normals[name]
        n1 = np.cross(v1[f[:, 1]] - v1[f[:, 0]], v1[f[:, 2]] - v1[f[:, 0]])
        cos = np.einsum("ij,ij->i", n0, n1) / np.maximum(np.linalg.norm(n1, axis=1), 1e-12)
        if cos.min() < limit:
            return True
    return False


def _solve_block(basis, goal, weights, amounts, block, measure=None) -> np.ndarray:
    """Gauss-Newton with backtracking on the components and measurements in ``block`` (the
    measurements of ``measure``, the template warp's own by default)."""
    idx = np.nonzero(block)[0]
    w = weights[idx]
    if measure is None:
        measure, J, jacobian = basis.measure, basis.J, basis.jacobian
    else:
        def jacobian(a, columns):
            return SH.numeric_jacobian(measure, a, columns=columns)
        J = jacobian(amounts, idx)

    def residual_at(a):
        return (goal - measure(a))[idx]

    residual = residual_at(amounts)
    for step in range(8):
        if np.abs(residual).max() < 0.02:
            break
        if step:  # the measurements are not linear in the amounts: refresh the Jacobian
            J = jacobian(amounts, idx)  # only the block's own columns are used
        sub = J[np.ix_(idx, idx)]
        delta = np.zeros_like(amounts)
        delta[idx] = SH.damped_inverse(sub, weights=w) @ residual
        for _ in range(4):  # backtrack when a full step overshoots
            trial = amounts + delta
            trial_residual = residual_at(trial)
            if np.sum(w * trial_residual ** 2) < np.sum(w * residual ** 2):
                break
            delta = delta / 2
        amounts, residual = trial, trial_residual
    return amounts


SOFT_NEAR_PINS = ("philtrum_length", "upper_vermilion_height", "nasal_protrusion")


def measurement_weights(subject: Subject) -> np.ndarray:
    """Priorities when targets conflict: a condition's own measurements first."""
    w = np.ones(len(SH.NAMES))
    if subject.condition:
        preset = TB.condition(subject.condition)
        moved = set(preset.shifts(subject.severity or "moderate"))
        for i, comp in enumerate(SH.COMPONENTS):
            if comp.table_id in moved:
                w[i] = 10.0 if comp.table_id == preset.measure else 4.0
        if getattr(preset, "side", "both") == "unilateral":
            w[SH.NAMES.index("ramus_height_difference")] = 10.0
    for fid in subject.features:
        feature = FT.feature(fid)
        for k, (name, _) in enumerate(feature.shifts):
            i = SH.NAMES.index(name)
            w[i] = max(w[i], 10.0 if k == 0 else 4.0)
    return w


def _pin_skin(subject: Subject, positions: dict, neighbour_normals, local_scale=None):
    """The skin correction that sets the tissue depth along each depth direction.

    Only the component along the direction of measurement is corrected, so the warp's sliding
    of the skin (a longer philtrum, say) is kept. Returns the correction and, per depth
    landmark, (bony point, direction, depth).
    """
    basis = _basis()
    centres, deltas, rays = [], [], {}
    for soft, (bone, kind) in DEPTH_PAIRS.items():
        pts, normals = neighbour_normals(bone)
        direction = depth_direction(kind, bone, pts, normals, positions[bone])
        depth = target_depth(subject, bone)
        if local_scale is not None:  # pinned before the growth field scales the head there
            depth = depth / local_scale(positions[bone])
        current = (positions[soft] - positions[bone]) @ direction
        centres.append(basis.landmarks[soft])
        deltas.append((depth - current) * direction)
        rays[soft] = (positions[bone], direction, depth)
    return SkinCorrection.fit(np.array(centres), np.array(deltas)), rays


def _build_head(subject: Subject, amounts: np.ndarray, field: GR.GrowthField | None = None) -> Head:
    basis = _basis()
    t = basis.template
    warp = SH.Warp(basis.landmarks, dict(zip(SH.NAMES, amounts)))
    meshes = {name: (basis.warp_vertices(name, amounts), f) for name, (v, f) in t.meshes.items()}
    positions = _positions(t, meshes, warp)

    def neighbour_normals(bone):
        sp = t.landmarks[bone]
        v, f = meshes[sp.mesh]
        ids = basis.neighbourhoods[bone]
        return v[ids], vertex_normals(v, basis.neighbour_faces[bone], at=ids)

    local_scale = None if field is None else _local_scale(field, frankfurt_frame(positions))
    correction, rays = _pin_skin(subject, positions, neighbour_normals, local_scale)
    warped_skin = meshes["skin"][0]
    sf = meshes["skin"][1]

    def hit(skin_v, key):  # the measuring ray against the skin triangles around that landmark
        origin, direction, _ = rays[key]
        faces = sf[basis.ray_faces[key]]
        return ray_hit(skin_v, faces, origin, direction)[1]

    for _ in range(2):  # the second pass removes what the linearised first one left
        skin_v = warped_skin + basis.skin_kernel @ correction.coefficients
        extra = np.array([(depth - (hit(skin_v, k) - o) @ d) * d for k, (o, d, depth) in rays.items()])
        correction = correction.plus(SkinCorrection.fit(correction.centres, extra))
    skin_v = warped_skin + basis.skin_kernel @ correction.coefficients
    meshes["skin"] = (skin_v, sf)
    positions = _positions(t, meshes, warp)
    # the depth landmarks: where the measuring ray from the bone meets the final skin
    for k in rays:
        positions[k] = hit(skin_v, k)
    # back to the Frankfurt frame: porions and left orbitale on z = 0, porions' midpoint at 0;
    # then, for a child, the growth field (which keeps that frame)
    frame = frankfurt_frame(positions)
    meshes = {k: (v @ frame[:3, :3].T + frame[:3, 3], f) for k, (v, f) in meshes.items()}
    positions = {k: frame[:3, :3] @ p + frame[:3, 3] for k, p in positions.items()}
    if field is not None:
        meshes = {k: (field.apply(v), f) for k, (v, f) in meshes.items()}
        positions = dict(zip(positions, field.apply(np.array(list(positions.values())))))
    return Head(subject, meshes, positions, FramedWarp(warp, frame, field), correction)


def _local_scale(field: GR.GrowthField, frame: np.ndarray):
    """The growth field's linear scale at a point of the warped (unframed) head."""
    def scale(point):
        return float(field.scale_at((frame[:3, :3] @ point + frame[:3, 3])[None])[0])
    return scale


class FramedWarp:
    """A shape warp followed by the rigid move back to the Frankfurt frame (and, for a child, the
    growth field in that frame)."""

    def __init__(self, warp: SH.Warp, frame: np.ndarray, field: GR.GrowthField | None = None):
        self.warp, self.frame, self.field = warp, frame, field
        self.amounts = warp.amounts
        # contiguous copies: numpy multiplies (N, 3) by a transposed 3x3 view several times slower
        self._rot_t = np.ascontiguousarray(frame[:3, :3].T)
        self._rot = np.ascontiguousarray(frame[:3, :3])

    def _rigid(self, pts):
        out = pts @ self._rot_t + self.frame[:3, 3]
        return out if self.field is None else self.field.apply(out)

    def _unrigid(self, pts):
        pts = np.asarray(pts, float)
        if self.field is not None:
            pts = self.field.invert(pts)
        return (pts - self.frame[:3, 3]) @ self._rot

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Template (head frame) -> this head, for bone and the tissues inside it."""
        return self._rigid(self.warp.forward(points, soft=False))

    def inverse(self, points: np.ndarray, iterations: int = 40) -> np.ndarray:
        return self.warp.inverse(self._unrigid(points), iterations, soft=False)

    def displacement(self, points: np.ndarray) -> np.ndarray:
        return self.forward(points) - np.asarray(points, float)


def _positions(t: Template, meshes: dict, warp: SH.Warp) -> dict[str, np.ndarray]:
    out = {}
    for key, sp in t.landmarks.items():
        if isinstance(sp, FreePoint):
            out[key] = warp.forward(sp.position()[None], soft=False)[0]
        else:
            out[key] = sp.position(*meshes[sp.mesh])
    return out
