"""Open eyes for the phantom's expression photos: a palpebral fissure cut into the closed lids
and an eye surface (sclera, iris, pupil) behind it.

The template skin has closed lids (``medface.phantom.skin``). An eye is opened without
remeshing: inside the fissure (the almond between the upper and lower lid margins below) the
skin is pushed back behind an *eye surface*, a smooth cap rendered with the skin whose front
lies :data:`EYE_GAP` mm behind the closed lid, so the eye shows through the opening and the
pushed skin's slope forms the lid margin. Everything is in the rest head's (material)
coordinates, per eye, from its landmarks:

* ``s`` runs from the medial (``en``) to the lateral canthus (``ex``); the canthal line is
  their straight join; the closing line (where the lids meet when closed) is the template's
  closed-lid line, :data:`CLOSURE_BOW` mm below the canthal line at mid-fissure.
* Upper lid margin at rest: :data:`UPPER_LID` mm above the canthal line at mid-fissure, lower
  margin :data:`LOWER_LID` mm below, both tapering to the canthi as ``sin(pi s) ** 0.65``:
  palpebral fissure height 9.5 mm, about the adult mean (9-10 mm, e.g. Price et al. 2009 as
  recalled; an assumption here).
* The pupil (iris centre) lies at mid-fissure, :data:`PUPIL_ABOVE_CANTHI` mm above the
  canthal line, so MRD1 is 4.5 mm and MRD2 5 mm (normal MRD1 4-5 mm; assumption as above).
  The iris diameter is :data:`IRIS_DIAMETER` mm (adult horizontal visible iris diameter about
  11.7 mm, the value Emotrics scales photos with: Guarin et al. 2018).
* Closure ``c`` (0 open, 1 closed) moves both margins toward the closing line: the upper lid
  does most of the travel (7.75 mm at mid-fissure), the lower lid rises 1.75 mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UPPER_LID = 6.5  # mm above the canthal line at mid-fissure (rest)
LOWER_LID = 3.0  # mm below the canthal line at mid-fissure (rest)
CLOSURE_BOW = 1.25  # mm: the closing line's bow below the canthal line (the template's lid line)
PUPIL_ABOVE_CANTHI = 2.0  # mm
IRIS_DIAMETER = 11.7  # mm
PUPIL_DIAMETER = 3.6  # mm (photopic pupil; assumption)
EYE_GAP = 0.8  # mm between the closed lid and the eye surface
PUSH_BEHIND = 1.5  # mm: the skin inside the fissure goes this far behind the eye surface
EYE_SEMI_AXES = (17.0, 14.0, 12.0)  # mm: lateral, vertical, depth semi-axes of the eye cap
GRID_MM = 0.3  # mm: the eye surface's grid
IRIS_COLOURS = {"dark_brown": (62, 40, 26), "brown": (98, 62, 36), "hazel": (120, 96, 52),
                "green": (88, 112, 74), "blue": (88, 120, 150), "grey": (120, 128, 134)}
SCLERA = (232, 226, 218)


def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, float) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _bump(s):
    return np.sin(np.pi * np.clip(s, 0.0, 1.0)) ** 0.65


@dataclass(frozen=True)
class Fissure:
    """One eye's fissure in its rest head's frame: canthi, pupil and the lid-margin curves."""

    side: str  # "left" (+x) or "right"
    en: np.ndarray
    ex: np.ndarray

    @classmethod
    def of(cls, head, side: str) -> "Fissure":
        s = "l" if side == "left" else "r"
        return cls(side, np.asarray(head.landmarks[f"en_{s}"], float), np.asarray(head.landmarks[f"ex_{s}"], float))

    def s(self, x):
        """Position along the fissure (0 medial canthus, 1 lateral) of lateral coordinate ``x``."""
        return (np.asarray(x, float) - self.en[0]) / (self.ex[0] - self.en[0])

    def canthal(self, s):
        return self.en[2] + np.asarray(s, float) * (self.ex[2] - self.en[2])

    def margins(self, s, closure: float) -> tuple[np.ndarray, np.ndarray]:
        """(upper, lower) lid margin heights z at ``s`` for ``closure`` 0 (open) to 1 (closed)."""
        zc, b = self.canthal(s), _bump(s)
        meet = zc - CLOSURE_BOW * np.sin(np.pi * np.clip(s, 0.0, 1.0))
        upper, lower = zc + UPPER_LID * b, zc - LOWER_LID * b
        c = float(np.clip(closure, 0.0, 1.0))
        return upper + c * (meet - upper), lower + c * (meet - lower)

    @property
    def pupil_xz(self) -> np.ndarray:
        x = 0.5 * (self.en[0] + self.ex[0])
        return np.array([x, self.canthal(0.5) + PUPIL_ABOVE_CANTHI])

    def inside(self, x, z, closure: float) -> np.ndarray:
        """Signed distance (mm, > 0 inside) of points from the fissure's margins, along z."""
        s = self.s(x)
        upper, lower = self.margins(s, closure)
        d = np.minimum(z - lower, upper - z)
        return np.where((s > 0.0) & (s < 1.0), d, np.minimum(d, -1.0))


def _front_mask(v, fis: Fissure):
    """Skin vertices near the eye, on the face's front (not the back of the head)."""
    lo, hi = sorted((fis.en[0], fis.ex[0]))
    zc = fis.canthal(0.5)
    return np.flatnonzero((v[:, 0] > lo - 4) & (v[:, 0] < hi + 4) & (np.abs(v[:, 2] - zc) < 14)
                          & (v[:, 1] < min(fis.en[1], fis.ex[1]) + 12))


def _cap_depth(fis: Fissure, x, z) -> np.ndarray:
    """How far the eye cap (:data:`EYE_SEMI_AXES`, centred on the pupil) bulges in front of its centre at (x, z)."""
    ax, az, ad = EYE_SEMI_AXES
    px, pz = fis.pupil_xz
    q = 1.0 - ((np.asarray(x) - px) / ax) ** 2 - ((np.asarray(z) - pz) / az) ** 2
    return ad * np.sqrt(np.clip(q, 0.0, None))


@dataclass(frozen=True)
class EyeCap:
    """The eye surface of one eye: the front of an ellipsoid of :data:`EYE_SEMI_AXES` whose
    centre ``y`` puts it :data:`EYE_GAP` behind the closed lid everywhere over the fissure."""

    fissure: Fissure
    y_centre: float

    def depth(self, x, z) -> np.ndarray:
        return _cap_depth(self.fissure, x, z)

    def y(self, x, z) -> np.ndarray:
        return self.y_centre - self.depth(x, z)

    @classmethod
    def fit(cls, rest_v: np.ndarray, fis: Fissure) -> "EyeCap":
        idx = _front_mask(rest_v, fis)
        p = rest_v[idx]
        s = fis.s(p[:, 0])
        line = fis.canthal(s) - CLOSURE_BOW * np.sin(np.pi * np.clip(s, 0, 1))
        over = (fis.inside(p[:, 0], p[:, 2], 0.0) > -1.0) & (np.abs(p[:, 2] - line) > 1.6)  # not the lid slit
        p = p[over]
        return cls(fis, float(np.max(p[:, 1] + EYE_GAP + _cap_depth(fis, p[:, 0], p[:, 2]))))


def open_eye_push(rest_v: np.ndarray, cap: EyeCap, closure: float) -> np.ndarray:
    """(N,) backward (+y) displacement of the skin that opens the fissure at ``closure``."""
    out = np.zeros(len(rest_v))
    idx = _front_mask(rest_v, cap.fissure)
    p = rest_v[idx]
    w = _smoothstep(-0.5, 0.5, cap.fissure.inside(p[:, 0], p[:, 2], closure))
    target = cap.y(p[:, 0], p[:, 2]) + PUSH_BEHIND
    out[idx] = w * np.maximum(0.0, target - p[:, 1])
    return out


def lid_paint(rest_v: np.ndarray, fis: Fissure, closure: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertex indices, upper lash-line weight, lower lash-line weight) around the open fissure."""
    idx = _front_mask(rest_v, fis)
    p = rest_v[idx]
    s = fis.s(p[:, 0])
    upper, lower = fis.margins(s, closure)
    along = _smoothstep(-0.08, 0.05, s) * _smoothstep(1.12, 0.97, s)
    up = (1 - _smoothstep(0.2, 0.9, np.abs(p[:, 2] - upper - 0.25))) * along
    low = (1 - _smoothstep(0.2, 0.8, np.abs(p[:, 2] - lower + 0.3))) * along * (1.0 - closure)
    return idx, up, low


def eye_surface(cap: EyeCap, closure: float, iris_rgb, seed: int = 0):
    """The visible eye of ``cap`` at ``closure``: (vertices, faces, normals, sRGB 0-1 colours),
    only where the fissure (dilated 1.5 mm) is open; None when the eye is closed."""
    fis = cap.fissure
    lo, hi = sorted((fis.en[0], fis.ex[0]))
    zc = fis.canthal(0.5)
    xs = np.arange(lo - 1.5, hi + 1.5 + GRID_MM, GRID_MM)
    zs = np.arange(zc - LOWER_LID - 3.0, zc + UPPER_LID + 3.0, GRID_MM)
    X, Z = np.meshgrid(xs, zs)
    keep = fis.inside(X, Z, closure) > -1.5
    cells = keep[:-1, :-1] | keep[1:, :-1] | keep[:-1, 1:] | keep[1:, 1:]
    if not cells.any():
        return None
    Y = cap.y(X, Z)
    ny, nx = X.shape
    ids = np.arange(nx * ny).reshape(ny, nx)
    a, b, c, d = ids[:-1, :-1][cells], ids[:-1, 1:][cells], ids[1:, :-1][cells], ids[1:, 1:][cells]
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])  # facing -y (the camera)
    v = np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)
    normals = _normals(X, Y, Z)
    colours = _eye_colours(cap, v, closure, iris_rgb, seed)
    used = np.unique(faces)
    remap = np.full(len(v), -1)
    remap[used] = np.arange(len(used))
    return v[used], remap[faces], normals[used], colours[used]


def _normals(X, Y, Z):
    """Normals of the height field y(x, z), pointing forward (-y)."""
    dydx = np.gradient(Y, X[0], axis=1)
    dydz = np.gradient(Y, Z[:, 0], axis=0)
    n = np.stack([dydx, -np.ones_like(Y), dydz], -1).reshape(-1, 3)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _eye_colours(cap: EyeCap, v, closure: float, iris_rgb, seed: int):
    """Sclera, iris with a dark limbal ring and radial streaks, pupil, and the upper lid's shadow."""
    fis = cap.fissure
    px, pz = fis.pupil_xz
    dx, dz = v[:, 0] - px, v[:, 2] - pz
    r = np.hypot(dx, dz)
    rng = np.random.default_rng([int(seed), 7])
    phase = rng.uniform(0, 2 * np.pi, 3)
    ang = np.arctan2(dz, dx)
    streak = 0.10 * np.sin(17 * ang + phase[0]) + 0.07 * np.sin(29 * ang + phase[1]) + 0.05 * np.sin(7 * ang + phase[2])
    iris = np.asarray(iris_rgb, float)[None] / 255.0 * (1.0 + streak[:, None]) * (0.8 + 0.35 * (r / 5.85))[:, None]
    s = fis.s(v[:, 0])
    sclera = np.asarray(SCLERA, float)[None] / 255.0 * (1.0 - 0.18 * _smoothstep(0.25, 0.0, np.minimum(s, 1 - s)))[:, None]
    caruncle = _smoothstep(0.12, 0.0, s)[:, None]  # the pink medial corner
    sclera = sclera * (1 - caruncle) + caruncle * np.array([0.78, 0.52, 0.5])
    ri, rp = IRIS_DIAMETER / 2.0, PUPIL_DIAMETER / 2.0
    in_iris = _smoothstep(ri + 0.12, ri - 0.12, r)[:, None]
    limbus = _smoothstep(ri - 1.0, ri - 0.1, r)[:, None] * in_iris
    col = sclera * (1 - in_iris) + iris * in_iris
    col = col * (1 - 0.45 * limbus)
    pupil = _smoothstep(rp + 0.1, rp - 0.1, r)[:, None]
    col = col * (1 - pupil) + pupil * np.array([0.05, 0.04, 0.04])
    upper, _ = fis.margins(s, closure)
    shadow = _smoothstep(1.5, 0.0, upper - v[:, 2])[:, None]
    return np.clip(col * (1 - 0.35 * shadow), 0, 1)


def iris_colour(seed: int, tone_index: int) -> tuple[str, tuple]:
    """An iris colour drawn from ``seed`` (darker tones: brown irises)."""
    rng = np.random.default_rng([int(seed), 8])
    names = ("dark_brown", "brown") if tone_index >= 4 else tuple(IRIS_COLOURS)
    name = str(rng.choice(names))
    return name, IRIS_COLOURS[name]
