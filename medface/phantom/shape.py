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
]
NAMES = [c.name for c in COMPONENTS]
ASYMMETRY = ("chin_deviation", "ramus_height_difference")
# components that shape the soft tissue only: they move the skin, never bone
SOFT = frozenset({"nasal_protrusion", "nasal_width", "philtrum_length", "upper_vermilion_height", "mouth_width",
                  "palpebral_fissure_length"})
SOFT_MASK = np.array([n in SOFT for n in NAMES])


def is_soft_landmark(landmark_id: str) -> bool:
    from ..anatomy.landmarks import get

    return get(landmark_id).kind == "soft_tissue"


def measure_all(landmarks: dict) -> dict[str, float]:
    return {c.name: c.measure(landmarks) for c in COMPONENTS}


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

    def inverse(self, points: np.ndarray, iterations: int = 12, soft: bool = False, tol: float = 1e-4) -> np.ndarray:
        """Newton's method with a finite-difference Jacobian per point (the warp is invertible but
        its displacement gradient can exceed 1, where a fixed-point iteration would diverge)."""
        return invert(lambda x: self.forward(x, soft), points, iterations, tol)

    def move_landmarks(self, landmarks: dict) -> dict:
        """Warp landmark positions: soft-tissue ones with the skin, the others with the bone."""
        keys = list(landmarks)
        pts = np.array([landmarks[k] for k in keys])
        soft = np.array([is_soft_landmark(k) for k in keys])
        out = np.where(soft[:, None], self.forward(pts, soft=True), self.forward(pts, soft=False))
        return dict(zip(keys, out))


def invert(forward, points: np.ndarray, iterations: int = 12, tol: float = 1e-4, h: float = 0.05) -> np.ndarray:
    """Solve forward(x) = y for every row of ``points`` by damped Newton steps."""
    y = np.asarray(points, float)
    x = y - (forward(y) - y)  # first guess: subtract the displacement at y
    active = np.ones(len(y), bool)
    for _ in range(iterations):
        if not active.any():
            break
        xa = x[active]
        r = forward(xa) - y[active]
        done = np.linalg.norm(r, axis=1) < tol
        cols = [(forward(xa + h * e) - forward(xa - h * e)) / (2 * h) for e in np.eye(3)]
        J = np.stack(cols, axis=2)
        step = np.linalg.solve(J, r[:, :, None])[:, :, 0]
        length = np.linalg.norm(step, axis=1, keepdims=True)
        step = step * np.minimum(1.0, 10.0 / np.maximum(length, 1e-12))  # at most 10 mm per step
        xa = np.where(done[:, None], xa, xa - step)
        x[active] = xa
        idx = np.nonzero(active)[0]
        active[idx[done]] = False
    return x


def jacobian(template_landmarks: dict, base: dict | None = None) -> np.ndarray:
    """d(measurement_i)/d(amount_j) on the template (unit amounts, central differences)."""
    base_amounts = base or {}
    J = np.zeros((len(NAMES), len(NAMES)))
    for j, name in enumerate(NAMES):
        m = []
        for h in (+0.5, -0.5):
            amounts = dict(base_amounts)
            amounts[name] = amounts.get(name, 0.0) + h
            m.append(measure_all(Warp(template_landmarks, amounts).move_landmarks(template_landmarks)))
        for i, other in enumerate(NAMES):
            J[i, j] = m[0][other] - m[1][other]
    return J


def damped_inverse(J: np.ndarray, damping: float = 0.01, weights: np.ndarray | None = None) -> np.ndarray:
    """(J^T W J + damping I)^-1 J^T W: weighted least squares that keeps amounts small when
    components overlap or targets conflict (the heavier a measurement's weight, the closer it gets)."""
    W = np.diag(weights if weights is not None else np.ones(J.shape[0]))
    return np.linalg.solve(J.T @ W @ J + damping * np.eye(J.shape[1]), J.T @ W)


def solve_amounts(template_landmarks: dict, targets: dict[str, float], J: np.ndarray,
                  steps: int = 3) -> dict[str, float]:
    """Amounts that bring every measurement to its target (unset targets keep template values)."""
    base = measure_all(template_landmarks)
    goal = np.array([targets.get(n, base[n]) for n in NAMES])
    amounts = np.zeros(len(NAMES))
    Jinv = damped_inverse(J)
    for _ in range(steps):
        current = measure_all(Warp(template_landmarks, dict(zip(NAMES, amounts))).move_landmarks(template_landmarks))
        residual = goal - np.array([current[n] for n in NAMES])
        amounts = amounts + Jinv @ residual
    return dict(zip(NAMES, amounts))
