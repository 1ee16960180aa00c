"""Shape variation: measurements on landmarks, and a smooth warp that sets them.

Each shape parameter is an anthropometric measurement (``medface.phantom.tables``) with a
warp *component*: a smooth displacement field, linear in its amount, that changes mainly that
measurement (a stretch of the face below nasion, a widening of the zygomatic region, ...).
For a subject, the amounts are solved so that every measurement hits its target: the
Jacobian of measurements with respect to amounts is computed once on the template (the
components interact a little), and two Newton steps on the landmarks suffice. Fields are
symmetric in x, so a subject without asymmetry stays exactly symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def smoothstep(x, e0, e1):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def smooth_ramp(x, width=8.0):
    """max(x, 0), rounded over ``width`` mm."""
    return np.where(x > width, x, np.where(x < -width, 0.0, (x + width) ** 2 / (4 * width)))


def bump(x, lo, hi, soft):
    return smoothstep(x, lo - soft, lo + soft) * (1 - smoothstep(x, hi - soft, hi + soft))


def gauss(p, centre, sigma):
    d2 = ((p - np.asarray(centre)) ** 2 / np.asarray(sigma, float) ** 2).sum(axis=1)
    return np.exp(-0.5 * d2)


def gauss_pair(p, centre, sigma):
    """Gaussian bumps at ``centre`` and its mirror image (left and right)."""
    c = np.asarray(centre, float)
    m = c * np.array([-1, 1, 1])
    return gauss(p, c, sigma), gauss(p, m, sigma)


# ---------------------------------------------------------------------------------------------
# measurements on a landmark dictionary
def _dist(a, b):
    return lambda L: float(np.linalg.norm(L[a] - L[b]))


def _mean_dist(a, b):
    ar, br = a.replace("_l", "_r"), b.replace("_l", "_r")
    return lambda L: 0.5 * (float(np.linalg.norm(L[a] - L[b])) + float(np.linalg.norm(L[ar] - L[br])))


def _ceph_dist(a, b):
    """Distance in the mid-sagittal projection (as on a lateral cephalogram), both sides averaged."""
    ar, br = a.replace("_l", "_r"), b.replace("_l", "_r")
    return lambda L: 0.5 * (float(np.linalg.norm((L[a] - L[b])[1:])) + float(np.linalg.norm((L[ar] - L[br])[1:])))


def _angle(a, vertex, b):
    """Angle at ``vertex`` in the mid-sagittal projection (as on a lateral cephalogram)."""

    def f(L):
        u = (L[a] - L[vertex])[1:]
        v = (L[b] - L[vertex])[1:]
        c = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
        return float(np.degrees(np.arccos(np.clip(c, -1, 1))))

    return f


def _vertical(a, b):
    """Vertical (z) distance, as lip and philtrum heights are measured on the upright face."""
    return lambda L: float(abs(L[a][2] - L[b][2]))


def _height_above_po(top):
    return lambda L: float(L[top][2] - 0.5 * (L["po_l"][2] + L["po_r"][2]))


@dataclass(frozen=True)
class Component:
    """A shape parameter: how it is measured and the displacement field that changes it."""

    name: str
    measure: Callable[[dict], float]
    field: Callable[[np.ndarray, dict], np.ndarray]  # (points, template landmarks) -> displacement per unit
    description: str
    table_id: str | None = None  # id in tables.ANTHROPOMETRY for the population norm
    spread: float | None = None  # SD of a component whose target is a deviation (see EXTENDED)
    spread_source: str = ""


def _vec(n, x=None, y=None, z=None):
    out = np.zeros((n, 3))
    if x is not None:
        out[:, 0] = x
    if y is not None:
        out[:, 1] = y
    if z is not None:
        out[:, 2] = z
    return out


def _f_cranial_length(p, L):
    length = L["op"][1] - L["g"][1]
    return _vec(len(p), y=p[:, 1] / length)


def _f_cranial_breadth(p, L):
    breadth = L["eu_l"][0] - L["eu_r"][0]
    return _vec(len(p), x=p[:, 0] / breadth * smoothstep(p[:, 2], -15, 25))


def _f_auricular_height(p, L):
    height = L["v"][2]
    return _vec(len(p), z=smooth_ramp(p[:, 2], 10) / height)


def _f_upper_face_height(p, L):
    n, ans = L["n"][2], L["ans"][2]
    t = np.clip((n - p[:, 2]) / (n - ans), 0, None)
    return _vec(len(p), z=-smoothstep(t, 0, 1) * 1.0)


def _f_lower_face_height(p, L):
    """Stretch of the anterior lower face (below ANS); the mandibular angles stay."""
    ans, me = L["ans"][2], L["me"][2]
    t = (ans - p[:, 2]) / (ans - me)
    w = smoothstep(t, -0.1, 1.0) * smoothstep(-p[:, 1], 20, 55)
    return _vec(len(p), z=-w)


def _f_bizygomatic(p, L):
    zy = L["zy_l"][0]
    w = bump(p[:, 2], -30, 20, 12) * (1 - smoothstep(p[:, 1], 5, 30))
    return _vec(len(p), x=0.5 * p[:, 0] / zy * w)


def _f_bigonial(p, L):
    go = L["go_l"][0]
    w = smoothstep(-p[:, 2], 35, 70) * (1 - smoothstep(p[:, 1], 0, 60))
    return _vec(len(p), x=0.5 * p[:, 0] / go * w)


def _f_interorbital(p, L):
    c = 0.5 * (L["en_l"] + L["d_l"])
    left, right = gauss_pair(p, (c[0] + 8, c[1] + 5, c[2]), (14, 22, 16))
    return _vec(len(p), x=0.5 * (left - right))


def _f_nasal_protrusion(p, L):
    """Moves the nasal tip away from subnasale, along the sn-prn line."""
    axis = (L["prn"] - L["sn"]) / np.linalg.norm(L["prn"] - L["sn"])
    return gauss(p, L["prn"], (11, 11, 11))[:, None] * axis[None, :]


def _f_nasal_width(p, L):
    left, right = gauss_pair(p, L["al_l"], (6, 9, 7))
    return _vec(len(p), x=0.5 * (left - right))


def _f_maxillary_protrusion(p, L):
    w = gauss(p, (0, L["a"][1], L["a"][2] - 6), (40, 30, 16))
    return _vec(len(p), y=-w)


def _f_mandibular_protrusion(p, L):
    # fades out slowly towards the back of the neck, so large moves do not crush the neck's skin
    w = smoothstep(-p[:, 2], 5, 65) * (1 - smoothstep(p[:, 1], -20, 90))
    return _vec(len(p), y=-w)


def _f_ramus_height(p, L):
    """Lengthens the ramus: the mandibular angles move down, the chin much less."""
    w = smoothstep(-p[:, 2], 25, 60) * smoothstep(p[:, 1], -60, -25) * (1 - smoothstep(p[:, 1], 5, 60))
    return _vec(len(p), z=-w)


def _f_body_length(p, L):
    w = smoothstep(-p[:, 1], 0, 75) * smoothstep(-p[:, 2], 30, 60)
    return _vec(len(p), y=-w)


def _f_philtrum(p, L):
    """Lengthens the philtrum: the upper lip margin, the mouth and the lower lip move down
    together (the vermilion keeps its height); the chin's skin stays."""
    sn, ls, li = L["sn"][2], L["ls"][2], L["li"][2]
    t = (sn - p[:, 2]) / (sn - ls)
    fade = smoothstep(p[:, 2], li - 16, li - 2)
    w = smoothstep(t, 0.0, 1.0) * fade * smoothstep(-p[:, 1], 80, 95) * (1 - smoothstep(np.abs(p[:, 0]), 22, 40))
    return _vec(len(p), z=-w)


def _f_upper_vermilion(p, L):
    return _vec(len(p), z=gauss(p, L["ls"], (16, 8, 5.0)))


def _f_mouth_width(p, L):
    left, right = gauss_pair(p, L["ch_l"], (7, 9, 6))
    return _vec(len(p), x=0.5 * (left - right))


def _f_palpebral(p, L):
    left, right = gauss_pair(p, L["ex_l"], (6, 9, 6))
    return _vec(len(p), x=left - right)


def _f_asymmetry(p, L):
    w = smoothstep(-p[:, 2], 20, 60) * (1 - smoothstep(p[:, 1], -10, 70))
    return _vec(len(p), x=w)


def _f_ramus_left(p, L):
    w = smoothstep(-p[:, 2], 25, 60) * smoothstep(p[:, 1], -60, -25) * smoothstep(p[:, 0], -15, 25) * \
        (1 - smoothstep(p[:, 1], 5, 60))
    return _vec(len(p), z=-w)


def _slant(L):
    """Palpebral slant (deg): how far the exocanthion sits above the endocanthion, both eyes averaged."""
    out = []
    for side in ("l", "r"):
        d = L[f"ex_{side}"] - L[f"en_{side}"]
        out.append(np.degrees(np.arctan2(d[2], abs(d[0]))))
    return float(np.mean(out))


def _eye_protrusion(L):
    """Eye protrusion (mm): the closed lid's front (ps) ahead of the lateral orbital rim (fmo), as
    exophthalmometry measures the cornea from the lateral rim; both eyes averaged."""
    return float(np.mean([L[f"fmo_{s}"][1] - L[f"ps_{s}"][1] for s in ("l", "r")]))


def _nasal_root_depth(L):
    """Nasal root depth (mm): soft-tissue nasion ahead of the inner canthi."""
    return float(0.5 * (L["en_l"][1] + L["en_r"][1]) - L["n_s"][1])


def _nasal_tip_angle(L):
    """Nasal tip angle (deg): inclination of pronasale above the Frankfurt horizontal, seen from
    the alar base (the midpoint of the alare; subnasale is not used: the skin pinned over A point
    moves it)."""
    d = L["prn"] - 0.5 * (L["al_l"] + L["al_r"])
    return float(np.degrees(np.arctan2(d[2], -d[1])))


def _mouth_corner_drop(L):
    """Mouth corner drop (mm): how far the cheilia lie below stomion (negative: above it)."""
    return float(L["sto"][2] - 0.5 * (L["ch_l"][2] + L["ch_r"][2]))


def _forehead_inclination(L):
    """Forehead inclination (deg): the soft glabella-trichion line against the vertical, top back."""
    d = L["tr"] - L["g_s"]
    return float(np.degrees(np.arctan2(d[1], d[2])))


def _malar_projection(L):
    """Malar projection (mm): soft-tissue orbitale ahead of porion, both sides averaged."""
    return float(np.mean([L[f"po_{s}"][1] - L[f"or_s_{s}"][1] for s in ("l", "r")]))


def _f_slant(p, L):
    left, right = gauss_pair(p, L["ex_l"], (6, 8, 5))
    return _vec(len(p), z=left + right)


def _f_intercanthal(p, L):
    left, right = gauss_pair(p, L["en_l"], (4.5, 8, 5))
    return _vec(len(p), x=0.5 * (left - right))


def _f_eye_protrusion(p, L):
    """Moves the closed lids and the front of the eyeballs forward (the orbital rims stay)."""
    left, right = gauss_pair(p, L["ps_l"], (8, 10, 7))
    return _vec(len(p), y=-(left + right))


def _f_nasal_root(p, L):
    return _vec(len(p), y=-gauss(p, L["n"], (10, 10, 8)))


def _f_nasal_height(p, L):
    """Lowers the nose below its root: tip, columella and alae move down together; the upper lip
    below subnasale stays (its skin carries the tissue depth over A point)."""
    centre = (0.0, L["sn"][1] - 4.0, L["sn"][2] + 4.0)
    lip = smoothstep(p[:, 2], L["a_s"][2], L["sn"][2] - 0.5)
    return _vec(len(p), z=-gauss(p, centre, (22, 18, 14)) * lip)


def _f_nasal_tip(p, L):
    return _vec(len(p), z=gauss(p, L["prn"], (8, 8, 8)))


def _f_lower_vermilion(p, L):
    return _vec(len(p), z=-gauss(p, L["li"], (16, 8, 5.0)))


def _f_mouth_corners(p, L):
    left, right = gauss_pair(p, L["ch_l"], (6, 8, 5))
    return _vec(len(p), z=-(left + right))


def _f_forehead(p, L):
    """Tips the upper forehead back (bone and skin), the brow much less."""
    return _vec(len(p), y=gauss(p, L["tr"], (40, 25, 18)))


def _f_frontal_breadth(p, L):
    """Widens the frontal region: a lateral stretch that fades away from frontotemporale's level."""
    ft = L["ft_l"]
    w = np.exp(-0.5 * (((p[:, 1] - ft[1]) / 28.0) ** 2 + ((p[:, 2] - ft[2]) / 20.0) ** 2))
    return _vec(len(p), x=0.5 * p[:, 0] / ft[0] * w)


def _f_malar(p, L):
    """Brings the cheekbones forward, just below and lateral of orbitale."""
    left, right = gauss_pair(p, L["or_s_l"] + np.array([6.0, 0.0, -6.0]), (15, 14, 14))
    return _vec(len(p), y=-(left + right))


_SPREAD = "assumption: SD chosen for the phantom, no population table read"
_ICD_SD = "SD 2.5 mm of the pooled intercanthal width (tables: intercanthal_width)"

COMPONENTS: list[Component] = [
    Component("cranial_length", _dist("g", "op"), _f_cranial_length, "maximum cranial length g-op",
              "cranial_length"),
    Component("cranial_breadth", _dist("eu_l", "eu_r"), _f_cranial_breadth, "maximum cranial breadth eu-eu",
              "cranial_breadth"),
    Component("auricular_height", _height_above_po("v"), _f_auricular_height, "auricular height po-v",
              "auricular_height"),
    Component("upper_face_height", _dist("n", "ans"), _f_upper_face_height, "upper anterior face height N-ANS",
              "upper_anterior_face_height"),
    Component("lower_face_height", _dist("ans", "me"), _f_lower_face_height, "lower anterior face height ANS-Me",
              "lower_anterior_face_height"),
    Component("bizygomatic_breadth", _dist("zy_l", "zy_r"), _f_bizygomatic, "bizygomatic breadth zy-zy",
              "bizygomatic_breadth"),
    Component("bigonial_breadth", _dist("go_l", "go_r"), _f_bigonial, "bigonial breadth go-go",
              "bigonial_breadth"),
    Component("interorbital_breadth", _dist("d_l", "d_r"), _f_interorbital, "interorbital breadth d-d",
              "interorbital_breadth"),
    Component("nasal_protrusion", _dist("sn", "prn"), _f_nasal_protrusion, "nasal tip protrusion sn-prn",
              "nasal_protrusion"),
    Component("nasal_width", _dist("al_l", "al_r"), _f_nasal_width, "nasal width al-al", "nasal_width"),
    Component("sna", _angle("s", "n", "a"), _f_maxillary_protrusion, "SNA angle (maxillary protrusion)", "sna"),
    Component("snb", _angle("s", "n", "b"), _f_mandibular_protrusion, "SNB angle (mandibular protrusion)", "snb"),
    Component("ramus_height", _ceph_dist("co_l", "go_l"), _f_ramus_height,
              "ramus height co-go (cephalometric projection)", "ramus_height"),
    Component("mandibular_body_length", _ceph_dist("go_l", "pog"), _f_body_length,
              "mandibular body length go-pog (cephalometric projection)", "mandibular_body_length"),
    Component("philtrum_length", _vertical("sn", "ls"), _f_philtrum, "philtrum length sn-ls (vertical)",
              "philtrum_length"),
    Component("upper_vermilion_height", _vertical("ls", "sto"), _f_upper_vermilion,
              "upper vermilion height ls-sto (vertical)", "upper_vermilion_height"),
    Component("mouth_width", _dist("ch_l", "ch_r"), _f_mouth_width, "mouth width ch-ch", "mouth_width"),
    Component("palpebral_fissure_length", _mean_dist("ex_l", "en_l"), _f_palpebral,
              "palpebral fissure length ex-en", "palpebral_fissure_length"),
    Component("chin_deviation", lambda L: float(L["me"][0]), _f_asymmetry,
              "asymmetry: lateral deviation of menton from the mid-sagittal plane (+ = patient's left)"),
    Component("ramus_height_difference",
              lambda L: float(np.linalg.norm((L["co_r"] - L["go_r"])[1:]) - np.linalg.norm((L["co_l"] - L["go_l"])[1:])),
              _f_ramus_left, "asymmetry: right minus left ramus height (co-go)"),
    Component("palpebral_slant", _slant, _f_slant, "palpebral slant en-ex above horizontal (deg)",
              spread=2.5, spread_source=_SPREAD),
    Component("intercanthal_width", _dist("en_l", "en_r"), _f_intercanthal, "intercanthal width en-en",
              spread=2.5, spread_source=_ICD_SD),
    Component("eye_protrusion", _eye_protrusion, _f_eye_protrusion, "eye protrusion fmo-ps (sagittal)",
              spread=2.0, spread_source=_SPREAD),
    Component("nasal_root_depth", _nasal_root_depth, _f_nasal_root, "nasal root depth en-n' (sagittal)",
              spread=2.0, spread_source=_SPREAD),
    Component("nasal_height", _dist("n_s", "sn"), _f_nasal_height, "nasal height n'-sn",
              spread=3.0, spread_source="SD of tables: nasal_height (assumed there)"),
    Component("nasal_tip_angle", _nasal_tip_angle, _f_nasal_tip, "nasal tip angle al-prn above horizontal (deg)",
              spread=5.0, spread_source=_SPREAD),
    Component("lower_vermilion_height", _vertical("sto", "li"), _f_lower_vermilion,
              "lower vermilion height sto-li (vertical)",
              spread=1.6, spread_source="SD of tables: lower_vermilion_height (assumed there)"),
    Component("mouth_corner_drop", _mouth_corner_drop, _f_mouth_corners, "mouth corners below stomion (mm)",
              spread=1.5, spread_source=_SPREAD),
    Component("forehead_inclination", _forehead_inclination, _f_forehead,
              "forehead inclination g'-tr against the vertical (deg)", spread=5.0, spread_source=_SPREAD),
    Component("frontal_breadth", _dist("ft_l", "ft_r"), _f_frontal_breadth, "minimum frontal breadth ft-ft",
              spread=4.5, spread_source=_SPREAD),
    Component("malar_projection", _malar_projection, _f_malar, "malar projection po-or' (sagittal)",
              spread=2.5, spread_source=_SPREAD),
]
NAMES = [c.name for c in COMPONENTS]
ASYMMETRY = ("chin_deviation", "ramus_height_difference")
# components that shape the soft tissue only: they move the skin, never bone
SOFT = frozenset({"nasal_protrusion", "nasal_width", "philtrum_length", "upper_vermilion_height", "mouth_width",
                  "palpebral_fissure_length", "palpebral_slant", "intercanthal_width", "nasal_height",
                  "nasal_tip_angle", "lower_vermilion_height", "mouth_corner_drop"})
# components added with the facial-feature vocabulary: a subject's target for them is a deviation
# from the value the rest of its head implies (mean 0, SD ``spread``), and their normal variation
# is drawn after the original ones, so that a seed gives the same original measurements as before
EXTENDED = tuple(c.name for c in COMPONENTS if c.spread is not None)
EXTENDED_MASK = np.array([n in EXTENDED for n in NAMES])
ORIGINAL = [n for n in NAMES if n not in EXTENDED]
SIGNED = frozenset(EXTENDED) | frozenset(ASYMMETRY)  # targets that may be zero or negative
SOFT_MASK = np.array([n in SOFT for n in NAMES])


def is_soft_landmark(landmark_id: str) -> bool:
    from ..data.vocabulary import get

    return get(landmark_id).kind == "soft_tissue"


def measure_all(landmarks: dict) -> dict[str, float]:
    """Every shape measurement the landmarks allow (one that needs a missing landmark is left out)."""
    out = {}
    for c in COMPONENTS:
        try:
            out[c.name] = c.measure(landmarks)
        except KeyError:
            continue
    return out


class Warp:
    """x -> x + sum_k amount_k * field_k(x), with fields anchored on the template landmarks."""

    def __init__(self, template_landmarks: dict, amounts: dict[str, float] | None = None):
        self.template_landmarks = template_landmarks
        self.amounts = {n: 0.0 for n in NAMES}
        self.amounts.update(amounts or {})

    def displacement(self, points: np.ndarray, soft: bool = False) -> np.ndarray:
        """Displacement of bone (``soft=False``) or of skin (``soft=True``, with the soft-only components)."""
        points = np.asarray(points, float)
        out = np.zeros_like(points)
        for c in COMPONENTS:
            a = self.amounts.get(c.name, 0.0)
            if a and (soft or c.name not in SOFT):
                out += a * c.field(points, self.template_landmarks)
        return out

    def forward(self, points: np.ndarray, soft: bool = False) -> np.ndarray:
        return np.asarray(points, float) + self.displacement(points, soft)

    def inverse(self, points: np.ndarray, iterations: int = 40, soft: bool = False, tol: float = 1e-4) -> np.ndarray:
        """Newton's method with a finite-difference Jacobian per point (the warp is invertible but
        its displacement gradient can exceed 1, where a fixed-point iteration would diverge)."""
        return invert(lambda x: self.forward(x, soft), points, tol=tol, iterations=iterations)[0]

    def move_landmarks(self, landmarks: dict) -> dict:
        """Warp landmark positions: soft-tissue ones with the skin, the others with the bone."""
        keys = list(landmarks)
        pts = np.array([landmarks[k] for k in keys])
        soft = np.array([is_soft_landmark(k) for k in keys])
        out = np.where(soft[:, None], self.forward(pts, soft=True), self.forward(pts, soft=False))
        return dict(zip(keys, out))


def invert(forward, y: np.ndarray, x0: np.ndarray | None = None, *, tol: float = 1e-4, iterations: int = 40,
            eps: float = 0.02, try_identity: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(x) = y`` point by point, from ``x0`` (or from ``y`` where that is closer).

    Newton steps with a finite-difference Jacobian, kept while it makes good progress (a chord
    method: one evaluation of ``forward`` per step) and recomputed when it does not, with
    backtracking. Returns (x, residual in mm). A fixed-point inverse of a warp diverges where
    the displacement's gradient exceeds 1, which happens on perfectly invertible warps; this
    does not mind.
    """
    y = np.asarray(y, float)
    x = y - (forward(y) - y) if x0 is None else np.asarray(x0, float).copy()
    n = len(y)
    if n == 0:
        return x, np.zeros(0)
    lost = ~np.all(np.isfinite(x), axis=1)  # a diverged first guess
    x[lost] = y[lost]
    r = forward(x) - y
    if try_identity:
        r_y = forward(y) - y
        use = np.linalg.norm(r_y, axis=1) < np.linalg.norm(r, axis=1)
        x[use], r[use] = y[use], r_y[use]
    err = np.linalg.norm(r, axis=1)
    eye = np.eye(3)
    J = np.zeros((n, 3, 3))
    has_j = np.zeros(n, bool)  # J holds a Jacobian for this point
    fresh = np.zeros(n, bool)  # ... taken at its current x
    stuck = np.zeros(n, bool)
    for _ in range(iterations):
        idx = np.nonzero((err > tol) & ~stuck)[0]
        if len(idx) == 0:
            break
        need = idx[~has_j[idx]]
        if len(need):
            f = r[need] + y[need]
            for axis in range(3):
                J[need, :, axis] = (forward(x[need] + eps * eye[axis]) - f) / eps
            has_j[need] = fresh[need] = True
        step = np.linalg.solve(J[idx] + 1e-9 * eye, r[idx][:, :, None])[:, :, 0]
        pending = np.arange(len(idx))
        t = 1.0
        for _ in range(5):  # backtracking: halve the step where it does not reduce the residual
            sub = idx[pending]
            cand = x[sub] - t * step[pending]
            r_c = forward(cand) - y[sub]
            e_c = np.linalg.norm(r_c, axis=1)
            ok = e_c < err[sub]
            acc = sub[ok]
            has_j[acc[e_c[ok] > 0.3 * err[acc]]] = False  # slow progress: a new Jacobian next time
            x[acc], r[acc], err[acc] = cand[ok], r_c[ok], e_c[ok]
            fresh[acc] = False
            pending = pending[~ok]
            if len(pending) == 0:
                break
            t *= 0.5
        failed = idx[pending]
        stuck[failed[fresh[failed]]] = True  # even a fresh Jacobian does not help: a fold of the map
        has_j[failed] = fresh[failed] = False
    return x, err


def measure_vector(landmarks: dict) -> np.ndarray:
    """Every shape measurement, in the order of :data:`NAMES` (the landmarks must allow all)."""
    return np.array([c.measure(landmarks) for c in COMPONENTS])


def numeric_jacobian(measure, amounts: np.ndarray, h: float = 0.5, columns=None) -> np.ndarray:
    """d(measure)/d(amounts) by central differences; ``measure`` maps amounts to measurements.
    Only the ``columns`` given (component indices; all by default) are computed, the rest are 0."""
    amounts = np.asarray(amounts, float)
    J = np.zeros((len(NAMES), len(amounts)))
    for j in (range(len(amounts)) if columns is None else columns):
        e = np.zeros_like(amounts)
        e[j] = h
        J[:, j] = (measure(amounts + e) - measure(amounts - e)) / (2 * h)
    return J


def jacobian(template_landmarks: dict, base: dict | None = None) -> np.ndarray:
    """d(measurement_i)/d(amount_j) at ``base`` amounts, warping the landmarks field by field."""
    base = base or {}

    def measure(a):
        return measure_vector(Warp(template_landmarks, dict(zip(NAMES, a))).move_landmarks(template_landmarks))

    return numeric_jacobian(measure, np.array([base.get(n, 0.0) for n in NAMES]))


def damped_inverse(J: np.ndarray, damping: float = 0.01, weights: np.ndarray | None = None) -> np.ndarray:
    """(J^T W J + damping I)^-1 J^T W: weighted least squares that keeps amounts small when
    components overlap or targets conflict (the heavier a measurement's weight, the closer it gets)."""
    W = np.diag(weights if weights is not None else np.ones(J.shape[0]))
    return np.linalg.solve(J.T @ W @ J + damping * np.eye(J.shape[1]), J.T @ W)
