"""Sex and age range estimated from a registered skull: phantom-trained, with probabilities.

What it does
------------
The skull is first registered (:class:`~.register.SkullRegistration`), so its vertices are in
the template's dense correspondence and its craniometric landmarks are known. Skull traits are
then measured as **continuous proxies** (mm) on those registered vertices and landmarks, in a
frame built from the skull's own landmarks (Frankfurt horizontal through the porions and
orbitales), so that neither the pose nor the file's units (once the registration has put the
skull in mm) change them:

- the five sexually dimorphic traits Walker (2008) scores 1-5 by eye: **glabella**
  (glabellar projection from the nasion-frontal chord), **mastoid** (mastoid process length
  below the Frankfurt plane), **supraorbital margin** (projection of the upper orbital rim
  beyond orbitale), **nuchal crest** (posterior projection of the midline occipital profile
  below opisthocranion) and **mental eminence** (projection of pogonion from the
  infradentale-menton chord). The nuchal proxy is measured and reported but is no classifier
  input (the phantom has no nuchal crest, and the proxy proved unstable under registration);
- size measures that differ between the sexes (cranial length g-op, breadth eu-eu, auricular
  height, bizygomatic breadth, upper facial height n-pr, n-ans; with a mandible: bigonial
  breadth, face height n-me). Ramus height (co-go) and mandibular body length (go-pog) differ
  most between the sexes in the phantom but are left out: the registration places the
  template's condyles and gonia poorly (condylion about 10 mm low, gonion 2-5 mm off on a
  phantom skull registered in its own frame), so they would carry registration error, not sex.

Walker (2008) is cited for the **choice of traits only**. Its logistic discriminant functions
work on 1-5 scores given by an observer; a mesh has no such scores and this module has no
validated mapping from a surface to them, so its coefficients are not used. Instead a
multinomial logistic regression (L2-penalised, on standardised traits) is fitted to the traits
of a seeded cohort of synthetic medface phantom skulls: sex (F/M) and an age range
(:data:`AGE_BINS`: 18-34, 35-54, 55+).

What it knows (and does not)
----------------------------
In the phantom (``medface.phantom``) a skull is the template warped so that a set of
anthropometric measurements hit targets drawn from **sex-specific norms**
(``medface.phantom.tables.ANTHROPOMETRY``); the warps are smooth and global, so the Walker
traits are not modelled as local features: they change only as far as the size and shape
warps carry them. **Age does not enter the phantom skull at all** (it changes only the
tissue-depth tables), so no skull trait can carry age there. Each fitted model therefore runs
an honesty gate at fit time: a 5-fold cross-validation against the class prior; a target the
traits do not predict better than the prior (by two standard errors of the per-subject log-loss
difference) is marked *uninformative* and returns the training prior, so the age estimate
comes back as the whole adult range with the prior's probabilities instead of a made-up range.
``docs/forensic_demography.md`` and ``docs/validation/forensic_demography.md`` give the figures.

API
---
::

    registration = SkullRegistration(skull_mesh).run()
    est = estimate_demography(registration)         # DemographyEstimate
    est.sex, est.p_male, est.age_range, est.p_age_range, est.traits, est.basis
    est.covariates()                                # {"sex": "M" | "F" | None, "age": float | None}

    model = DemographyModel().fit(traits, sex, age)  # traits: list of dicts (measure_traits)
    model.predict_proba_sex(traits), model.predict_proba_age(traits)
    model.save("demography.json"); DemographyModel.load("demography.json")   # JSON, no pickle

:func:`default_demography_model` trains the phantom model on first use (seconds) and caches it
as JSON in ``$MEDFACE_CACHE_DIR/forensic`` (:mod:`medface.cache`), keyed by the template's
sha256, :data:`DEMOGRAPHY_VERSION` and the training parameters.

References: Walker PL (2008) Sexing skulls using discriminant function analysis of visually
assessed traits. Am J Phys Anthropol 136:39-50. Howells WW (1973) Cranial variation in man
(definitions of the mastoid height MDH and the chord-subtense measures this module adapts).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from medface.errors import InputError, ModelError, ParameterError

__all__ = ["DemographyEstimate", "DemographyModel", "TraitLogistic", "SkullObservation", "TRAITS",
           "AGE_BINS", "DEMOGRAPHY_VERSION", "measure_traits", "estimate_demography",
           "default_demography_model", "phantom_cohort_traits", "landmark_frame"]

#: raise when the traits' definitions, the model or the phantom cohort they learn from change
DEMOGRAPHY_VERSION = 1
FORMAT = "medface-forensic-demography"
DEFAULT_SUBJECTS, DEFAULT_SEED = 300, 0
NAMESPACE = "forensic"
#: age ranges (years): [lo, hi), the last open-ended; after the brief's 18-34 / 35-54 / 55+
AGE_BINS: tuple[tuple[float, float | None], ...] = ((18.0, 35.0), (35.0, 55.0), (55.0, None))
AGE_COVERAGE = 0.8  # the reported age range is the shortest run of bins holding this probability
L2 = 1.0  # penalty on the standardised coefficients (0.5 * L2 * |w|^2 added to the total log-loss)
CV_FOLDS = 5
GATE_SE = 2.0  # a target is informative when CV log-loss beats the prior's by this many SE
OUTLIER_Z = 4.0  # a trait further than this from the training cohort (in its SD) gets a warning
SEX_CONFIDENCE = 0.8  # covariates(): below this probability the sex is left unknown
# Registration error enters every trait of a user's skull but none of the phantom's, which are
# in exact correspondence: the classifiers learn from noisy copies of the training traits
# (errors-in-variables by augmentation). 1 mm: about the median vertex error of registering a
# phantom skull (0.9 mm, docs/forensic.md); an assumption for real skulls.
REGISTRATION_NOISE_MM = 1.0
NOISY_COPIES = 5

BASIS = ("phantom-trained: L2 logistic regression on continuous skull-trait proxies measured on "
         "{n} synthetic medface phantom skulls (seed {seed}, 1 mm simulated registration noise); trait choice after Walker 2008 "
         "(Am J Phys Anthropol 136:39-50), not its 1-5 scores or coefficients; never validated on "
         "real skulls: an investigative hint, not a finding")

# --------------------------------------------------------------------------------------------
# the observation: registered vertices and landmarks
# --------------------------------------------------------------------------------------------

FRAME_IDS = ("po_l", "po_r", "or_l", "or_r")


@dataclass(frozen=True)
class SkullObservation:
    """What the traits are measured on: the registered template cranium (and mandible) vertices
    in mm, in template correspondence, and craniometric landmarks (id -> (3,) mm); any pose.
    ``unavailable`` names landmarks that must not be used (not observed, or extrapolated)."""

    cranium: np.ndarray
    mandible: np.ndarray | None
    landmarks: dict
    unavailable: frozenset = frozenset()
    source: str = "registration"

    @classmethod
    def from_registration(cls, registration) -> "SkullObservation":
        """From a :class:`~.register.Registration`; clear :class:`InputError` when it lacks what
        the traits need."""
        for name in ("cranium", "landmarks", "mandible_present"):
            if not hasattr(registration, name):
                raise InputError(f"expected a skull Registration (SkullRegistration(skull).run()), got "
                                 f"{type(registration).__name__} without '{name}'",
                                 hint="register the skull first, then estimate sex and age")
        lms = registration.landmarks
        points = {k: np.asarray(lms[k], float) for k in lms} if lms is not None else {}
        unc = getattr(registration, "uncertainty_mm", None) or {}
        unavailable = {k for k, u in unc.items() if not np.isfinite(u)}
        mandible = registration.mandible if registration.mandible_present else None
        obs = cls(np.asarray(registration.cranium, float),
                  None if mandible is None else np.asarray(mandible, float), points, frozenset(unavailable))
        return _checked(obs)

    @classmethod
    def from_head(cls, head, with_mandible: bool = True) -> "SkullObservation":
        """From a phantom :class:`medface.phantom.head.Head` (already in template correspondence)."""
        mandible = head.meshes["mandible"][0] if with_mandible else None
        return _checked(cls(np.asarray(head.meshes["cranium"][0], float),
                            None if mandible is None else np.asarray(mandible, float),
                            {k: np.asarray(v, float) for k, v in head.landmarks.items()}, frozenset(), "phantom head"))

    def moved(self, matrix: np.ndarray) -> "SkullObservation":
        """The same skull under a 4x4 similarity (for tests of pose and unit invariance)."""
        m = np.asarray(matrix, float)

        def move(p):
            return np.asarray(p) @ m[:3, :3].T + m[:3, 3]

        return SkullObservation(move(self.cranium), None if self.mandible is None else move(self.mandible),
                                {k: move(v) for k, v in self.landmarks.items()}, self.unavailable, self.source)


def _checked(obs: SkullObservation) -> SkullObservation:
    idx = template_indices()
    if obs.cranium.ndim != 2 or obs.cranium.shape != (idx.n_cranium, 3):
        raise InputError(f"the registered cranium has {obs.cranium.shape[0] if obs.cranium.ndim == 2 else '?'} "
                         f"vertices, the template {idx.n_cranium}: it is not in the template's correspondence",
                         hint="pass the Registration of SkullRegistration(skull).run() unchanged")
    if obs.mandible is not None and obs.mandible.shape != (idx.n_mandible, 3):
        raise InputError(f"the registered mandible has {len(obs.mandible)} vertices, the template "
                         f"{idx.n_mandible}: it is not in the template's correspondence")
    if not np.isfinite(obs.cranium).all() or (obs.mandible is not None and not np.isfinite(obs.mandible).all()):
        raise InputError("the registered skull has NaN or infinite coordinates", hint="check the registration")
    missing = [k for k in FRAME_IDS + ("n", "g", "op") if k not in obs.landmarks or k in obs.unavailable]
    if missing:
        raise InputError(f"the registration has no usable landmark(s) {', '.join(missing)}, which the skull's "
                         "frame and traits need", hint="register the skull with SkullRegistration(skull).run(), "
                         "which transfers them, or give them with --landmarks")
    return obs


def landmark_frame(landmarks: dict) -> np.ndarray:
    """4x4 rigid transform into the skull's own Frankfurt frame (LPS axes, mm kept): origin
    between the porions, x towards the left porion, z normal to the Frankfurt plane (porions
    and mean orbitale), y posterior. Depends on the landmarks only, so any pose maps to it."""
    po_l, po_r = np.asarray(landmarks["po_l"], float), np.asarray(landmarks["po_r"], float)
    orb = 0.5 * (np.asarray(landmarks["or_l"], float) + np.asarray(landmarks["or_r"], float))
    origin = 0.5 * (po_l + po_r)
    x = po_l - po_r
    if np.linalg.norm(x) < 1e-6:
        raise InputError("the two porions coincide: the landmarks do not define a Frankfurt frame")
    x /= np.linalg.norm(x)
    forward = orb - origin
    y = -(forward - (forward @ x) * x)
    if np.linalg.norm(y) < 1e-6:
        raise InputError("the orbitales lie on the porion axis: the landmarks do not define a Frankfurt frame")
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, y, z])
    m[:3, 3] = -m[:3, :3] @ origin
    return m


# --------------------------------------------------------------------------------------------
# template vertex sets the region traits are measured on (chosen once on the template)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateIndices:
    n_cranium: int
    n_mandible: int
    frontal_profile: np.ndarray  # midline, anterior outer surface from below nasion to 60 mm above
    occipital_profile: np.ndarray  # midline, posterior outer surface below opisthocranion
    supraorbital_l: int  # the upper orbital rim above orbitale (lowest point of the orbit roof's edge)
    supraorbital_r: int
    landmark_vertex: dict  # landmark id -> ("cranium" | "mandible", vertex index) where it is a template vertex


def _outer_profile(v: np.ndarray, normals: np.ndarray, candidates: np.ndarray, sign: float) -> np.ndarray:
    """Per 1 mm height bin, the candidate vertex furthest anterior (sign -1) or posterior (+1),
    among those whose normal faces that way (the outer table, not the endocranial surface)."""
    candidates = candidates[sign * normals[candidates, 1] > 0.3]
    bins = np.floor(v[candidates, 2]).astype(int)
    out = []
    for b in np.unique(bins):
        sel = candidates[bins == b]
        out.append(sel[np.argmax(sign * v[sel, 1])])
    return np.array(out, int)


def _supraorbital_index(v: np.ndarray, orbitale: np.ndarray) -> int:
    """The template vertex on the upper orbital rim straight above orbitale: among vertices in a
    2 mm column over orbitale, 15-50 mm above it and anterior to it, the lowest."""
    col = (np.abs(v[:, 0] - orbitale[0]) < 2.0) & (v[:, 2] > orbitale[2] + 15) & (v[:, 2] < orbitale[2] + 50) \
        & (v[:, 1] < orbitale[1])
    cand = np.nonzero(col)[0]
    if not len(cand):
        raise ModelError("the template has no supraorbital rim above orbitale")
    return int(cand[np.argmin(v[cand, 2])])


@lru_cache(maxsize=1)
def template_indices() -> TemplateIndices:
    """The vertex sets, chosen on the versioned template head (:mod:`.template`)."""
    from medface.data.mesh import vertex_normals

    from .template import template_head

    t = template_head()
    m = landmark_frame(t.landmarks)
    v = t.cranium.vertices @ m[:3, :3].T + m[:3, 3]
    normals = vertex_normals(v, t.cranium.faces)
    lm = {k: m[:3, :3] @ np.asarray(p) + m[:3, 3] for k, p in t.landmarks.items()}
    mid = np.abs(v[:, 0]) < 1.5
    n, op = lm["n"], lm["op"]
    front = np.nonzero(mid & (v[:, 1] < n[1] + 25) & (v[:, 2] > n[2] - 5) & (v[:, 2] < n[2] + 60))[0]
    back = np.nonzero(mid & (v[:, 1] > op[1] - 45) & (v[:, 2] > op[2] - 50) & (v[:, 2] < op[2] + 2))[0]
    return TemplateIndices(len(t.cranium.vertices), len(t.mandible.vertices),
                           _outer_profile(v, normals, front, -1.0), _outer_profile(v, normals, back, +1.0),
                           _supraorbital_index(v, lm["or_l"]), _supraorbital_index(v, lm["or_r"]),
                           _landmark_vertices(t))


def _landmark_vertices(t) -> dict:
    """Template landmarks that sit on a template vertex (within 0.01 mm): id -> (part, index).
    Their positions are read off the registered vertices, which follow each part's own fit
    (a landmark transferred by position can take the cranium's transform near the joint)."""
    from scipy.spatial import cKDTree

    trees = {"cranium": cKDTree(t.cranium.vertices), "mandible": cKDTree(t.mandible.vertices)}
    out = {}
    for k, p in t.landmarks.items():
        hits = {part: tree.query(p) for part, tree in trees.items()}
        part, (dist, index) = min(hits.items(), key=lambda item: item[1][0])
        if dist < 0.01:
            out[k] = (part, int(index))
    return out


def _vertex_landmarks(obs: "SkullObservation", idx: TemplateIndices) -> dict:
    """The observation's landmarks, those on a template vertex read from the registered vertices."""
    points = dict(obs.landmarks)
    for k, (part, i) in idx.landmark_vertex.items():
        if k not in points:
            continue
        if part == "cranium":
            points[k] = obs.cranium[i]
        elif obs.mandible is not None:
            points[k] = obs.mandible[i]
    return points


# --------------------------------------------------------------------------------------------
# traits (mm, in the skull's landmark frame)
# --------------------------------------------------------------------------------------------

def _sagittal_subtense(point: np.ndarray, a: np.ndarray, b: np.ndarray, outward: np.ndarray) -> float:
    """Signed distance (mm) of ``point`` from the chord a-b in the sagittal (y, z) plane,
    positive towards ``outward`` (a (y, z) direction)."""
    p, a, b = point[1:], a[1:], b[1:]
    d = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-d[1], d[0]])
    if normal @ outward < 0:
        normal = -normal
    return float((p - a) @ normal)


def _profile_point_at(profile: np.ndarray, z: float) -> np.ndarray:
    """The profile vertex nearest the height ``z``."""
    return profile[np.argmin(np.abs(profile[:, 2] - z))]


def glabella_projection(c: np.ndarray, lm: dict, idx: TemplateIndices) -> float:
    """Glabellar projection: subtense of glabella anterior to the chord from nasion to the
    frontal profile point 40 mm above nasion (a frontal-subtense proxy for Walker's glabella)."""
    profile = c[idx.frontal_profile]
    top = _profile_point_at(profile, lm["n"][2] + 40.0)
    return _sagittal_subtense(lm["g"], lm["n"], top, np.array([-1.0, 0.0]))


def supraorbital_projection(c: np.ndarray, lm: dict, idx: TemplateIndices) -> float:
    """Supraorbital margin: how far the upper orbital rim projects anterior of orbitale (mm,
    both sides averaged): a brow-ridge overhang proxy; Walker's sharp-vs-rounded margin itself
    is not measured."""
    return float(np.mean([lm["or_l"][1] - c[idx.supraorbital_l][1], lm["or_r"][1] - c[idx.supraorbital_r][1]]))


def mastoid_length(c: np.ndarray, lm: dict, idx: TemplateIndices) -> float:
    """Mastoid process length: depth of mastoidale below the Frankfurt plane (mm, both sides
    averaged; after Howells' mastoid height MDH, measured from the FH plane)."""
    return float(-np.mean([lm["ms_l"][2], lm["ms_r"][2]]))


def nuchal_projection(c: np.ndarray, lm: dict, idx: TemplateIndices) -> float:
    """Nuchal crest: the largest posterior subtense of the midline occipital profile from the
    chord opisthocranion to the profile point 30 mm below it."""
    profile = c[idx.occipital_profile]
    low = _profile_point_at(profile, lm["op"][2] - 30.0)
    inside = profile[(profile[:, 2] <= lm["op"][2]) & (profile[:, 2] >= low[2])]
    return max(_sagittal_subtense(p, lm["op"], low, np.array([1.0, 0.0])) for p in inside)


def mental_projection(c: np.ndarray, lm: dict, idx: TemplateIndices) -> float:
    """Mental eminence: subtense of pogonion anterior to the infradentale-menton chord."""
    return _sagittal_subtense(lm["pog"], lm["id"], lm["me"], np.array([-1.0, 0.0]))


def _distance(a: str, b: str):
    def f(c, lm, idx):
        return float(np.linalg.norm(lm[a] - lm[b]))
    return f


def auricular_height(c: np.ndarray, lm: dict, idx: TemplateIndices) -> float:
    """Height of vertex above the Frankfurt plane (mm)."""
    return float(lm["v"][2])


@dataclass(frozen=True)
class Trait:
    name: str
    measure: object  # (cranium, landmarks, indices) -> mm, all in the landmark frame
    landmarks: tuple  # landmark ids it needs (besides the frame)
    mandible: bool  # needs the mandible
    walker: str | None  # Walker 2008 trait it stands in for, None for a size measure
    description: str
    in_model: bool = True  # False: measured and reported, but not a classifier input


TRAITS: tuple[Trait, ...] = (
    Trait("glabella_projection", glabella_projection, ("g", "n"), False, "glabella",
          "glabella's subtense from the nasion - frontal(n+40 mm) chord"),
    Trait("supraorbital_projection", supraorbital_projection, ("or_l", "or_r"), False, "supraorbital margin",
          "upper orbital rim anterior of orbitale"),
    Trait("mastoid_length", mastoid_length, ("ms_l", "ms_r"), False, "mastoid process",
          "mastoidale below the Frankfurt plane"),
    Trait("nuchal_projection", nuchal_projection, ("op",), False, "nuchal crest",
          "occipital profile's subtense below opisthocranion", in_model=False),
    Trait("mental_projection", mental_projection, ("pog", "id", "me"), True, "mental eminence",
          "pogonion's subtense from the infradentale-menton chord"),
    Trait("cranial_length", _distance("g", "op"), ("g", "op"), False, None, "g-op"),
    Trait("cranial_breadth", _distance("eu_l", "eu_r"), ("eu_l", "eu_r"), False, None, "eu-eu"),
    Trait("auricular_height", auricular_height, ("v",), False, None, "vertex above the Frankfurt plane"),
    Trait("bizygomatic_breadth", _distance("zy_l", "zy_r"), ("zy_l", "zy_r"), False, None, "zy-zy"),
    Trait("upper_facial_height", _distance("n", "pr"), ("n", "pr"), False, None, "n-pr"),
    Trait("nasal_height", _distance("n", "ans"), ("n", "ans"), False, None, "n-ans"),
    Trait("bigonial_breadth", _distance("go_l", "go_r"), ("go_l", "go_r"), True, None, "go-go"),
    Trait("face_height", _distance("n", "me"), ("n", "me"), True, None, "n-me"),
)
#: the classifiers' inputs; the nuchal proxy is measured and reported only: the phantom has no
#: nuchal crest (d = -0.25 between the sexes) and the proxy jumped by 7 mm between two
#: registrations of one skull in different poses
TRAIT_NAMES = tuple(t.name for t in TRAITS if t.in_model)
CRANIAL_TRAITS = tuple(t.name for t in TRAITS if t.in_model and not t.mandible)


def _unavailable_reason(trait: Trait, obs: SkullObservation) -> str | None:
    if trait.mandible and obs.mandible is None:
        return "no mandible in the registration"
    lost = [k for k in trait.landmarks if k not in obs.landmarks or k in obs.unavailable]
    if lost:
        return f"landmark(s) {', '.join(lost)} not observed"
    return None


def measure_traits(obs: SkullObservation) -> tuple[dict, dict]:
    """(trait -> mm, trait -> why it is unavailable): every trait of :data:`TRAITS` measured in
    the skull's landmark frame; an unavailable one is absent from the first dict."""
    idx = template_indices()
    points = _vertex_landmarks(obs, idx)
    m = landmark_frame(points)
    c = obs.cranium @ m[:3, :3].T + m[:3, 3]
    lm = {k: m[:3, :3] @ np.asarray(p) + m[:3, 3] for k, p in points.items()}
    values, missing = {}, {}
    for trait in TRAITS:
        reason = _unavailable_reason(trait, obs)
        if reason:
            missing[trait.name] = reason
        else:
            values[trait.name] = float(trait.measure(c, lm, idx))
    return values, missing


# --------------------------------------------------------------------------------------------
# the classifier: multinomial logistic regression with an honesty gate
# --------------------------------------------------------------------------------------------

def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_softmax(X: np.ndarray, y: np.ndarray, k: int, l2: float) -> np.ndarray:
    """Coefficients (p + 1, k) of an L2-penalised multinomial logistic regression (intercept
    unpenalised), by L-BFGS on the exact gradient; deterministic."""
    from scipy.optimize import minimize

    n, p = X.shape
    A = np.hstack([np.ones((n, 1)), X])
    Y = np.eye(k)[y]
    penal = np.ones((p + 1, k))
    penal[0] = 0.0

    def loss(w):
        W = w.reshape(p + 1, k)
        Z = A @ W
        zmax = Z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(Z - zmax).sum(axis=1))
        P = _softmax(Z)
        value = float(np.sum(lse - (Z * Y).sum(axis=1)) + 0.5 * l2 * np.sum(penal * W ** 2))
        grad = A.T @ (P - Y) + l2 * penal * W
        return value, grad.ravel()

    res = minimize(loss, np.zeros((p + 1) * k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x.reshape(p + 1, k)


def _folds(n: int, folds: int, seed: int) -> np.ndarray:
    """A fold number per sample, a seeded permutation cut into ``folds`` parts."""
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, int)
    out[order] = np.arange(n) % folds
    return out


class TraitLogistic:
    """Multinomial logistic regression on named traits (scikit-learn's shape: ``fit``,
    ``predict_proba``, ``predict``, ``get_params``), with an honesty gate: ``fit`` cross-validates
    against the class prior and, when the traits do not beat it, ``informative_`` is False and
    ``predict_proba`` returns the prior."""

    def __init__(self, traits: tuple | list, classes: tuple | list, l2: float = L2, folds: int = CV_FOLDS,
                 seed: int = 0, noise_sd: float = 0.0, copies: int = NOISY_COPIES):
        self.traits, self.classes = tuple(traits), tuple(classes)
        self.l2, self.folds, self.seed = float(l2), int(folds), int(seed)
        self.noise_sd, self.copies = float(noise_sd), int(copies)

    def get_params(self) -> dict:
        return {"traits": list(self.traits), "classes": list(self.classes), "l2": self.l2, "folds": self.folds,
                "seed": self.seed, "noise_sd": self.noise_sd, "copies": self.copies}

    def _noisy(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``copies`` copies of the traits with Gaussian measurement noise of ``noise_sd`` mm
        (seeded), and the penalty scaled so it weighs as on the original subjects."""
        if self.noise_sd <= 0:
            return X, y, self.l2
        rng = np.random.default_rng(self.seed)
        Xa = np.vstack([X + rng.normal(0.0, self.noise_sd, X.shape) for _ in range(self.copies)])
        return Xa, np.tile(y, self.copies), self.l2 * self.copies

    def _core_fit(self, X: np.ndarray, y: np.ndarray):
        mean, sd = X.mean(axis=0), X.std(axis=0)
        sd = np.where(sd > 1e-9, sd, 1.0)  # a constant trait: coefficient stays 0
        Xa, ya, l2 = self._noisy(X, y)
        W = _fit_softmax((Xa - mean) / sd, ya, len(self.classes), l2)
        prior = (np.bincount(y, minlength=len(self.classes)) + 1.0) / (len(y) + len(self.classes))
        return mean, sd, W, prior

    @staticmethod
    def _proba(X, mean, sd, W):
        Z = np.hstack([np.ones((len(X), 1)), (X - mean) / sd]) @ W
        return _softmax(Z)

    def fit(self, X: np.ndarray, y) -> "TraitLogistic":
        X = np.asarray(X, float)
        y = np.array([self.classes.index(v) for v in y]) if not np.issubdtype(np.asarray(y).dtype, np.integer) \
            else np.asarray(y, int)
        if X.ndim != 2 or X.shape[1] != len(self.traits) or len(X) != len(y):
            raise ParameterError(f"need an (n, {len(self.traits)}) trait array and n labels, got {X.shape} and "
                                 f"{len(y)}", parameter="traits")
        if len(X) < 2 * self.folds or len(np.unique(y)) < 2:
            raise ParameterError(f"need at least {2 * self.folds} subjects of at least two classes, got {len(X)}",
                                 parameter="traits")
        self.cv_ = self._cross_validate(X, y)
        self.informative_ = bool(self.cv_["gain_nats"] > GATE_SE * self.cv_["gain_se"] and self.cv_["gain_nats"] > 0)
        self.mean_, self.sd_, self.coef_, self.prior_ = self._core_fit(X, y)
        self.n_ = int(len(X))
        return self

    def _cross_validate(self, X: np.ndarray, y: np.ndarray) -> dict:
        fold = _folds(len(X), self.folds, self.seed)
        model_ll, prior_ll, hits = np.zeros(len(X)), np.zeros(len(X)), np.zeros(len(X), bool)
        for f in range(self.folds):
            te, tr = fold == f, fold != f
            mean, sd, W, prior = self._core_fit(X[tr], y[tr])
            P = self._proba(X[te], mean, sd, W)
            model_ll[te] = -np.log(np.clip(P[np.arange(te.sum()), y[te]], 1e-12, None))
            prior_ll[te] = -np.log(prior[y[te]])
            hits[te] = P.argmax(axis=1) == y[te]
        gain = prior_ll - model_ll
        return {"accuracy": float(hits.mean()), "log_loss": float(model_ll.mean()),
                "prior_log_loss": float(prior_ll.mean()), "gain_nats": float(gain.mean()),
                "gain_se": float(gain.std(ddof=1) / np.sqrt(len(gain)))}

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        if not self.informative_:
            return np.tile(self.prior_, (len(X), 1))
        return self._proba(X, self.mean_, self.sd_, self.coef_)

    def predict(self, X: np.ndarray) -> list:
        return [self.classes[i] for i in self.predict_proba(X).argmax(axis=1)]

    def to_dict(self) -> dict:
        return {**self.get_params(), "mean": self.mean_.tolist(), "sd": self.sd_.tolist(),
                "coef": self.coef_.tolist(), "prior": self.prior_.tolist(), "informative": self.informative_,
                "cv": self.cv_, "n": self.n_}

    @classmethod
    def from_dict(cls, d: dict) -> "TraitLogistic":
        m = cls(d["traits"], d["classes"], d["l2"], d["folds"], d["seed"], d["noise_sd"], d["copies"])
        m.mean_, m.sd_ = np.asarray(d["mean"], float), np.asarray(d["sd"], float)
        m.coef_, m.prior_ = np.asarray(d["coef"], float), np.asarray(d["prior"], float)
        m.informative_, m.cv_, m.n_ = bool(d["informative"]), dict(d["cv"]), int(d["n"])
        if m.coef_.shape != (len(m.traits) + 1, len(m.classes)):
            raise ModelError("a demography model's coefficients do not match its traits")
        return m


# --------------------------------------------------------------------------------------------
# the sex and age model
# --------------------------------------------------------------------------------------------

def age_bin(age: float) -> int:
    for i, (lo, hi) in enumerate(AGE_BINS):
        if age >= lo and (hi is None or age < hi):
            return i
    raise ParameterError(f"age {age!r} is below the adult ranges (from {AGE_BINS[0][0]:g} years)", parameter="age")


def age_label(lo: float, hi: float | None) -> str:
    return f"{lo:g}+" if hi is None else f"{lo:g}-{hi - 1:g}"


AGE_LABELS = tuple(age_label(lo, hi) for lo, hi in AGE_BINS)


def _table(traits: list[dict], names: tuple) -> np.ndarray:
    return np.array([[t[n] for n in names] for t in traits], float)


class DemographyModel:
    """Sex and age-range classifiers on skull traits: one pair on every trait (skull with
    mandible) and one on the cranial traits only; other subsets (a fragment) are fitted on
    demand from the stored training traits. ``fit`` / ``predict_proba_sex`` /
    ``predict_proba_age`` / ``save`` / ``load`` (JSON)."""

    def __init__(self, l2: float = L2, folds: int = CV_FOLDS, seed: int = 0,
                 noise_sd: float = REGISTRATION_NOISE_MM):
        self.l2, self.folds, self.seed, self.noise_sd = float(l2), int(folds), int(seed), float(noise_sd)
        self.info: dict = {}

    def get_params(self) -> dict:
        return {"l2": self.l2, "folds": self.folds, "seed": self.seed, "noise_sd": self.noise_sd}

    def fit(self, traits: list[dict], sex, age, info: dict | None = None) -> "DemographyModel":
        """``traits``: one dict per subject (:func:`measure_traits`, every trait present);
        ``sex``: "F"/"M" per subject; ``age``: years. ``info`` describes the training data."""
        missing = [n for n in TRAIT_NAMES if any(n not in t for t in traits)]
        if missing:
            raise ParameterError(f"training subjects lack trait(s) {', '.join(missing)}", parameter="traits")
        if any(s not in ("F", "M") for s in sex):
            raise ParameterError("sex must be 'F' or 'M' for every training subject", parameter="sex")
        self.train_traits_ = _table(traits, TRAIT_NAMES)
        self.train_sex_ = [str(s) for s in sex]
        self.train_age_bin_ = [age_bin(float(a)) for a in age]
        self.info = dict(info or {}, n=len(traits))
        self._models = {}
        for names in (TRAIT_NAMES, CRANIAL_TRAITS):
            self._models_for(names)
        return self

    def _models_for(self, names: tuple) -> tuple[TraitLogistic, TraitLogistic]:
        names = tuple(n for n in TRAIT_NAMES if n in names)
        if names not in self._models:
            if not names:
                raise InputError("no skull trait could be measured: sex and age cannot be estimated")
            cols = [TRAIT_NAMES.index(n) for n in names]
            X = self.train_traits_[:, cols]
            sex = TraitLogistic(names, ("F", "M"), self.l2, self.folds, self.seed, self.noise_sd).fit(
                X, self.train_sex_)
            age = TraitLogistic(names, AGE_LABELS, self.l2, self.folds, self.seed, self.noise_sd).fit(
                X, np.asarray(self.train_age_bin_, int))
            self._models[names] = (sex, age)
        return self._models[names]

    def _row(self, traits: dict) -> tuple[tuple, np.ndarray]:
        names = tuple(n for n in TRAIT_NAMES if n in traits)
        return names, np.array([[traits[n] for n in names]])

    def predict_proba_sex(self, traits: dict) -> float:
        """P(male) for one subject's measured traits (any subset of :data:`TRAITS`)."""
        names, x = self._row(traits)
        return float(self._models_for(names)[0].predict_proba(x)[0, 1])

    def predict_proba_age(self, traits: dict) -> np.ndarray:
        """Probabilities of :data:`AGE_BINS` for one subject's measured traits."""
        names, x = self._row(traits)
        return self._models_for(names)[1].predict_proba(x)[0]

    def sex_model(self, names=TRAIT_NAMES) -> TraitLogistic:
        return self._models_for(tuple(names))[0]

    def age_model(self, names=TRAIT_NAMES) -> TraitLogistic:
        return self._models_for(tuple(names))[1]

    def outliers(self, traits: dict) -> dict:
        """trait -> z against the training cohort, for traits beyond :data:`OUTLIER_Z`."""
        mean, sd = self.train_traits_.mean(axis=0), self.train_traits_.std(axis=0)
        out = {}
        for n, v in traits.items():
            if n not in TRAIT_NAMES:
                continue
            i = TRAIT_NAMES.index(n)
            z = (v - mean[i]) / sd[i] if sd[i] > 1e-9 else 0.0
            if abs(z) > OUTLIER_Z:
                out[n] = float(z)
        return out

    # JSON, no pickle -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": DEMOGRAPHY_VERSION, "params": self.get_params(), "info": self.info,
                "traits": list(TRAIT_NAMES), "age_bins": [list(b) for b in AGE_BINS],
                "train": {"traits": self.train_traits_.tolist(), "sex": self.train_sex_,
                          "age_bin": self.train_age_bin_},
                "models": [[list(k), s.to_dict(), a.to_dict()] for k, (s, a) in self._models.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> "DemographyModel":
        if d.get("format") != FORMAT or d.get("version") != DEMOGRAPHY_VERSION:
            raise ModelError(f"not a demography model of version {DEMOGRAPHY_VERSION} (format {d.get('format')!r}, "
                             f"version {d.get('version')!r})", hint="retrain it with DemographyModel().fit")
        if tuple(d["traits"]) != TRAIT_NAMES or [tuple(b) for b in d["age_bins"]] != [tuple(b) for b in AGE_BINS]:
            raise ModelError("a demography model with other traits or age ranges than this version's")
        m = cls(**d["params"])
        m.info = dict(d["info"])
        m.train_traits_ = np.asarray(d["train"]["traits"], float)
        m.train_sex_, m.train_age_bin_ = list(d["train"]["sex"]), [int(b) for b in d["train"]["age_bin"]]
        m._models = {tuple(k): (TraitLogistic.from_dict(s), TraitLogistic.from_dict(a)) for k, s, a in d["models"]}
        return m

    def save(self, path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "DemographyModel":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the demography model: {exc}", path=path) from None
        return cls.from_dict(data)


# --------------------------------------------------------------------------------------------
# the estimate
# --------------------------------------------------------------------------------------------

@dataclass
class DemographyEstimate:
    """Sex and age range from one skull. ``sex`` is the likelier sex, ``p_male`` its
    probability of being male; ``age_range`` (lo, hi) in years (hi None: open-ended) is the
    shortest run of :data:`AGE_BINS` holding at least :data:`AGE_COVERAGE` of the probability,
    ``p_age_range`` that probability, ``age_probabilities`` per bin label. ``sex_informative`` /
    ``age_informative`` say whether the traits beat the prior in cross-validation; an
    uninformative age returns the prior spread over the whole adult range."""

    sex: str
    p_male: float
    sex_informative: bool
    age_range: tuple
    age_label: str
    p_age_range: float
    age_probabilities: dict
    age_informative: bool
    traits: dict
    unavailable: dict
    traits_used: tuple
    basis: str
    warnings: list = field(default_factory=list)

    def covariates(self, min_confidence: float = SEX_CONFIDENCE) -> dict:
        """What the reconstruction may use when the user gives nothing: sex only when at least
        ``min_confidence`` likely, age (years, the range's middle) only when the range is
        informative and closed; None otherwise (the reconstruction's own default)."""
        sure = self.sex_informative and max(self.p_male, 1 - self.p_male) >= min_confidence
        lo, hi = self.age_range
        age = 0.5 * (lo + hi) if self.age_informative and hi is not None else None
        return {"sex": self.sex if sure else None, "age": age}

    def to_dict(self) -> dict:
        return {"sex": self.sex, "p_male": self.p_male, "sex_informative": self.sex_informative,
                "age_range": list(self.age_range), "age_label": self.age_label, "p_age_range": self.p_age_range,
                "age_probabilities": self.age_probabilities, "age_informative": self.age_informative,
                "traits_mm": self.traits, "unavailable": self.unavailable, "traits_used": list(self.traits_used),
                "basis": self.basis, "warnings": list(self.warnings)}


def shortest_age_span(p: np.ndarray, coverage: float = AGE_COVERAGE) -> tuple[int, int]:
    """(first, last) bin of the shortest contiguous run with probability >= ``coverage``
    (the likelier run when two are equally short)."""
    best = None
    for length in range(1, len(p) + 1):
        for start in range(len(p) - length + 1):
            mass = float(p[start:start + length].sum())
            if mass >= coverage - 1e-12 and (best is None or mass > best[0]):
                best = (mass, start, start + length - 1)
        if best:
            return best[1], best[2]
    return 0, len(p) - 1


def estimate_from_traits(model: DemographyModel, traits: dict, unavailable: dict) -> DemographyEstimate:
    """The estimate for measured traits (logic only: no registration, no files)."""
    names = tuple(n for n in TRAIT_NAMES if n in traits)
    sex_m, age_m = model._models_for(names)
    p_male = model.predict_proba_sex(traits)
    p_age = model.predict_proba_age(traits)
    first, last = shortest_age_span(p_age)
    lo, hi = AGE_BINS[first][0], AGE_BINS[last][1]
    warnings = []
    if "mental_projection" in unavailable:
        warnings.append(f"mental eminence not measured ({unavailable['mental_projection']}): sex from the "
                        "cranial traits only")
    for n, z in model.outliers(traits).items():
        warnings.append(f"trait {n} = {traits[n]:.1f} mm lies {z:+.1f} SD from the phantom training cohort: the "
                        "estimate extrapolates")
    if not age_m.informative_:
        warnings.append("age: the skull traits do not predict the age range better than chance in the training "
                        "cohort (the phantom skull does not age); the range is the whole adult span")
    if not sex_m.informative_:
        warnings.append("sex: the measured traits do not predict sex better than chance; p_male is the prior")
    return DemographyEstimate(
        sex="M" if p_male >= 0.5 else "F", p_male=p_male, sex_informative=sex_m.informative_,
        age_range=(lo, hi), age_label=age_label(lo, hi), p_age_range=float(p_age[first:last + 1].sum()),
        age_probabilities=dict(zip(AGE_LABELS, map(float, p_age))), age_informative=age_m.informative_,
        traits=traits, unavailable=unavailable, traits_used=names,
        basis=BASIS.format(n=model.info.get("n", "?"), seed=model.info.get("seed", "?")), warnings=warnings)


def estimate_demography(registration, model: DemographyModel | None = None) -> DemographyEstimate:
    """Sex and age range of a registered skull (a :class:`~.register.Registration` or a
    :class:`SkullObservation`), by ``model`` or the cached phantom-trained default."""
    obs = registration if isinstance(registration, SkullObservation) else \
        SkullObservation.from_registration(registration)
    traits, unavailable = measure_traits(obs)
    return estimate_from_traits(model or default_demography_model(), traits, unavailable)


# --------------------------------------------------------------------------------------------
# the phantom cohort and the cached default model
# --------------------------------------------------------------------------------------------

def phantom_cohort_traits(n: int, seed: int) -> tuple[list[dict], list[str], list[float]]:
    """Traits, sex and age of ``n`` seeded phantom subjects (about 0.2 s each), measured on
    their skulls, which are already in the template's correspondence."""
    from medface.phantom.head import make_head, sample_subject

    rng = np.random.default_rng(seed)
    traits, sex, age = [], [], []
    for i in range(n):
        subject = sample_subject(rng, subject_id=f"demography-{seed}-{i}")
        values, missing = measure_traits(SkullObservation.from_head(make_head(subject)))
        if missing:
            raise ModelError(f"phantom subject {i} lacks trait(s) {', '.join(missing)}")
        traits.append(values)
        sex.append(subject.sex)
        age.append(float(subject.age))
    return traits, sex, age


def _cache_key(n: int, seed: int) -> str:
    from medface import cache

    from .template import template_head

    return cache.key(template_head().sha256, f"demography-v{DEMOGRAPHY_VERSION}", TRAIT_NAMES, AGE_BINS,
                     sorted({"n": n, "seed": seed, "l2": L2, "folds": CV_FOLDS,
                                                "noise_sd": REGISTRATION_NOISE_MM, "copies": NOISY_COPIES}.items()))


def train_phantom_demography(n: int = DEFAULT_SUBJECTS, seed: int = DEFAULT_SEED) -> DemographyModel:
    """A demography model fitted to ``n`` seeded phantom skulls."""
    traits, sex, age = phantom_cohort_traits(n, seed)
    info = {"seed": seed, "source": "medface.phantom.head.sample_subject / make_head (synthetic)",
            "phantom_age_range": [min(age), max(age)]}
    return DemographyModel(seed=seed).fit(traits, sex, age, info=info)


def default_demography_model(n: int = DEFAULT_SUBJECTS, seed: int = DEFAULT_SEED) -> DemographyModel:
    """The phantom-trained model from the medface cache, or trained now (once) and cached."""
    from medface import cache

    path = cache.folder(NAMESPACE) / f"demography-n{n}-s{seed}-{_cache_key(n, seed)}.json"
    if path.is_file():
        return DemographyModel.load(path)
    with cache.file_lock(path.with_name(path.name + ".lock")):
        if path.is_file():
            return DemographyModel.load(path)
        model = train_phantom_demography(n, seed)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
            cache.prune(path)
        except OSError:  # a read-only or full cache: slower next time, never wrong
            pass
    return model
