"""Photograph-like colour renders of a phantom head, with exact 2D landmark positions.

:func:`render_photo` renders a :class:`medface.phantom.head.Head`'s skin with a perspective
camera like a portrait lens (about a metre away, the field of view fitted so the face from
the hairline to the chin fills about two thirds of the image height), per-vertex colours
(skin tone, redder lips and cheeks, eyebrows, the lash line of the closed eyelids, a hair
cap), smooth shading under a key and a fill light, over a plain studio backdrop. Every soft
tissue landmark the camera sees is projected with the same camera into
``FaceImage.landmarks_2d``; ``FaceImage.metadata`` records everything needed to redo it
(``"synthetic": True``).

Views (:data:`PHOTO_VIEWS`, the views of :data:`medface.viz.VIEWS` around the head; the yaw of
the camera about the head's vertical axis is :func:`medface.viz.view_yaw`; the head stays upright):

======================== ====== ==========================================================
view                      yaw   where the camera is, and how the face appears
======================== ====== ==========================================================
``frontal``                 0°  in front (-y) looking +y; the patient's left is on the
                                image's right, as in a photograph of a person
``three_quarter_left``     45°  front-left; the face turns toward the image's left
``left``                   90°  on the patient's left (+x) looking -x; the face looks toward
                                the image's **left** (``prn`` is the leftmost landmark) and
                                the right-side landmarks (``ex_r``, ``ch_r``...) are hidden
``three_quarter_right``   -45°  front-right; the face turns toward the image's right
``right``                 -90°  on the patient's right (-x); the face looks toward the
                                image's **right**
======================== ====== ==========================================================

Image coordinates follow medface's one pixel convention (:mod:`medface.viz.views`, used by
:class:`medface.data.FaceImage`): x to the right, y down, origin at the top-left corner of the
top-left pixel, so the pixel containing ``(x, y)`` is ``pixels[int(y), int(x)]``. A landmark is
kept when it lies in the image, in front of the camera, and the rendered depth (the z-buffer)
at its pixel or at one of the 8 pixels around it is not in front of it by more than
:data:`VISIBILITY_TOLERANCE` mm; the neighbours keep landmarks that lie on the face's outline
(``zy_s`` in a frontal view, ``prn`` in a lateral one). Where the skin at the landmark is seen
edge-on (its normal within :data:`GRAZING_COSINE` of perpendicular to the line of sight) the
slack is :data:`GRAZING_TOLERANCE` mm: a perspective camera sees a rounded tip such as ``prn``
in profile past a thin sliver of its own flank, which does not hide it in a photograph. The
others are listed in ``metadata["hidden_landmarks"]``. Landmarks at the bottom of a slit
(:data:`SLIT_LANDMARKS`: ``sto`` lies at the back of the mouth line) are tested at the slit's
opening; their 2D position is still the projection of the 3D landmark.

The camera is a :class:`medface.viz.Camera` (perspective), given to VTK as it is: position
``focal + distance * d`` with ``d = (sin yaw cos pitch, -cos yaw cos pitch, sin pitch)``
(positive pitch looks down on the face), view-up +z rolled by ``roll`` degrees about the
viewing direction (positive roll tilts the camera clockwise, so the face appears turned
counter-clockwise), a vertical view angle ``view_angle_deg``.
:meth:`medface.viz.Camera.project` with that camera, a pinhole ``x = W/2 + f u/w``,
``y = H/2 - f v/w`` with ``f = (H/2) / tan(view_angle/2)`` and ``(u, v, w)`` the point in the
camera's (right, up, forward) frame, gives the same pixel positions as VTK's own projection,
which places the landmarks (the tests check it).

Appearance palette (illustrative sRGB values chosen for renders, not colorimetric
measurements): six skin tones ordered along a Fitzpatrick-like scale, I (lightest) to VI
(darkest), see :data:`SKIN_TONES`; hair colours :data:`HAIR_COLOURS`; backdrops
:data:`BACKGROUNDS`. Everything random comes from ``seed``: the appearance (skin tone, hair,
lighting, backdrop) from ``default_rng([seed, 0])`` and each view's camera jitter from
``default_rng([seed, 1, view code])``, so a view renders the same whether it is rendered alone
or with others by :func:`render_views`.

Rendering reuses one off-screen plotter per thread (:class:`PhotoRenderer`): a new head only
updates the mesh's points, normals and colours (heads share the template's faces). Edges are
smoothed with FXAA (multisampling costs 3-4x the render time in software OpenGL). Images are
always labelled synthetic.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..data.mesh import SurfaceMesh, outward_normals
from ..errors import ParameterError
from ..viz.views import Camera, check_view, perspective_camera, view_yaw

#: the views a photo can be taken from (names of :data:`medface.viz.VIEWS`)
PHOTO_VIEWS = ("frontal", "three_quarter_left", "left", "three_quarter_right", "right")
_VIEW_CODE = {"frontal": 0, "left": 1, "right": 2, "three_quarter_left": 3, "three_quarter_right": 4}

# (roman numeral, name, sRGB 0-255); illustrative values along a Fitzpatrick-like scale
SKIN_TONES = (
    ("I", "very_light", (232, 196, 176)),
    ("II", "light", (226, 184, 152)),
    ("III", "intermediate", (200, 152, 114)),
    ("IV", "olive", (168, 118, 82)),
    ("V", "brown", (122, 82, 56)),
    ("VI", "dark", (78, 52, 38)),
)
HAIR_COLOURS = {
    "black": (22, 18, 16), "dark_brown": (48, 32, 24), "brown": (86, 58, 38), "light_brown": (128, 94, 62),
    "blond": (176, 142, 92), "red": (128, 58, 30), "grey": (150, 146, 140), "white": (205, 202, 196),
}
BACKGROUNDS = {
    "light_grey": (206, 208, 210), "blue_grey": (150, 166, 182), "off_white": (232, 228, 220),
    "teal": (104, 142, 146), "dark_grey": (70, 72, 76), "warm_beige": (196, 180, 156),
}
DEFAULT_DISTANCE = 1000.0  # mm, camera to the face (portrait lens)
DEFAULT_FILL = 0.65  # fraction of the image height spanned by the face (hairline to chin)
HAIRLINE_ABOVE_GLABELLA = 55.0  # mm, front hairline above g_s (+-5 mm, at most 62 % of g_s to v_s)
VISIBILITY_TOLERANCE = 4.0  # mm, depth slack of the z-buffer visibility test
GRAZING_TOLERANCE = 12.0  # mm, the slack where the skin is seen edge-on
GRAZING_COSINE = 0.35  # |cos| between the skin normal and the line of sight below which it is edge-on
# landmarks at the bottom of a slit in the skin: their visibility is tested at the slit's
# opening (sto lies at the back of the mouth line; the opening is level with ls / li)
SLIT_LANDMARKS = ("sto",)

_NEUTRAL_CAMERA = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "distance": DEFAULT_DISTANCE, "fill": DEFAULT_FILL,
                   "shift_x": 0.0, "shift_y": 0.0}
_NEUTRAL_LIGHTING = {"key_azimuth": 35.0, "key_elevation": 30.0, "key_intensity": 0.85, "fill_azimuth": -50.0,
                     "fill_elevation": 5.0, "fill_intensity": 0.3, "ambient": 0.18, "specular": 0.12,
                     "warmth": 0.0}
LIGHTING_PRESETS = {
    "neutral": dict(_NEUTRAL_LIGHTING),
    "soft": {**_NEUTRAL_LIGHTING, "key_azimuth": 20.0, "key_elevation": 20.0, "key_intensity": 0.65,
             "fill_intensity": 0.45, "ambient": 0.25, "specular": 0.08},
    "dramatic": {**_NEUTRAL_LIGHTING, "key_azimuth": 60.0, "key_elevation": 35.0, "key_intensity": 1.0,
                 "fill_intensity": 0.1, "ambient": 0.1, "specular": 0.18},
}


# ---------------------------------------------------------------------------------------------
# parameters
def _rgb(value, name: str) -> tuple[float, float, float]:
    """An RGB colour as 0-1 floats from 0-255 numbers or 0-1 floats (or a palette name)."""
    try:
        arr = np.asarray(value, float).reshape(3)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be an RGB triple or a palette name, got {value!r}", parameter=name) from None
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 255:
        raise ParameterError(f"{name} {value!r} is not a colour (0-255 or 0-1 per channel)", parameter=name)
    if arr.max() > 1.0:
        arr = arr / 255.0
    return tuple(float(a) for a in arr)


def skin_tone(value) -> tuple[int, str, tuple[float, float, float]]:
    """Resolve a skin tone: an index 1-6, a numeral ``"I"``-``"VI"`` or a name from :data:`SKIN_TONES`.

    Returns (index 1-6, name, sRGB 0-1).
    """
    for i, (roman, name, rgb) in enumerate(SKIN_TONES, start=1):
        if (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == i) or \
                (isinstance(value, str) and value.strip().lower() in (roman.lower(), name)):
            return i, name, tuple(c / 255.0 for c in rgb)
    known = ", ".join(f"{i} / {r} / {n}" for i, (r, n, _) in enumerate(SKIN_TONES, start=1))
    raise ParameterError(f"unknown skin tone {value!r}; known: {known}", parameter="skin_tone")


@dataclass(frozen=True)
class Appearance:
    """Everything about a photo that does not depend on the view."""

    tone_index: int
    tone_name: str
    skin_rgb: tuple
    hair_name: str | None
    hair_rgb: tuple | None
    hairline_mm: float  # front hairline above g_s
    lighting: dict
    background: tuple
    background_top: tuple
    mottle: tuple  # (frequencies (k, 3), phases (k,), amplitudes (k,))

    def to_dict(self) -> dict:
        return {"skin_tone": {"index": self.tone_index, "name": self.tone_name,
                              "fitzpatrick_like": SKIN_TONES[self.tone_index - 1][0],
                              "rgb": [round(c * 255) for c in self.skin_rgb]},
                "hair": None if self.hair_name is None else
                {"colour": self.hair_name, "rgb": [round(c * 255) for c in self.hair_rgb],
                 "hairline_above_g_s_mm": round(self.hairline_mm, 2)},
                "lighting": {k: round(float(v), 4) for k, v in self.lighting.items()},
                "background": [round(c * 255) for c in self.background],
                "background_top": [round(c * 255) for c in self.background_top]}


def _sample_hair(rng: np.random.Generator, tone: int, age: float) -> str:
    if rng.random() < np.clip((age - 50.0) / 40.0, 0.0, 0.7):
        return "grey" if rng.random() < 0.75 else "white"
    if tone >= 4:
        names, p = ("black", "dark_brown", "brown"), (0.55, 0.35, 0.10)
    else:
        names, p = ("black", "dark_brown", "brown", "light_brown", "blond", "red"), (0.1, 0.3, 0.25, 0.15, 0.14, 0.06)
    return str(rng.choice(names, p=p))


def sampled_skin_tone(seed: int) -> int:
    """The skin tone index (1-6) that :func:`render_photo` draws for ``seed`` when none is given."""
    return int(np.random.default_rng([int(seed), 0]).integers(1, len(SKIN_TONES) + 1))


def _appearance(head, seed: int, skin_tone_value, lighting, background, hair) -> Appearance:
    rng = np.random.default_rng([int(seed), 0])
    # draw everything in a fixed order so that overriding one choice does not change the others
    tone_draw = int(rng.integers(1, len(SKIN_TONES) + 1))
    tone_gain = float(rng.normal(1.0, 0.03))
    light_draw = {
        "key_azimuth": float(rng.uniform(20, 55) * rng.choice([-1, 1])),
        "key_elevation": float(rng.uniform(15, 45)),
        "key_intensity": float(rng.uniform(0.7, 0.95)),
        "fill_elevation": float(rng.uniform(-5, 15)),
        "fill_intensity": float(rng.uniform(0.15, 0.4)),
        "ambient": float(rng.uniform(0.12, 0.22)),
        "specular": float(rng.uniform(0.05, 0.2)),
        "warmth": float(rng.uniform(-0.06, 0.08)),
    }
    light_draw["fill_azimuth"] = -np.sign(light_draw["key_azimuth"]) * float(rng.uniform(35, 70))
    bg_name = str(rng.choice(sorted(BACKGROUNDS)))
    bg_jitter = rng.normal(0, 0.03, 3)
    hairline = float(HAIRLINE_ABOVE_GLABELLA + rng.uniform(-5, 5))
    hair_rng = np.random.default_rng(rng.integers(2 ** 32))
    k = 6
    mottle = (rng.normal(0, 1, (k, 3)) / rng.uniform(15, 60, (k, 1)), rng.uniform(0, 2 * np.pi, k),
              rng.uniform(0.006, 0.018, k))

    if skin_tone_value is None:
        index, name, rgb = skin_tone(tone_draw)
        rgb = tuple(float(np.clip(c * tone_gain, 0, 1)) for c in rgb)
    else:
        index, name, rgb = skin_tone(skin_tone_value)

    if lighting is None:
        light = light_draw
    elif isinstance(lighting, str):
        if lighting not in LIGHTING_PRESETS:
            raise ParameterError(f"unknown lighting preset {lighting!r}; known: {', '.join(LIGHTING_PRESETS)}",
                                 parameter="lighting")
        light = dict(LIGHTING_PRESETS[lighting])
    elif isinstance(lighting, dict):
        light = _merged(lighting, _NEUTRAL_LIGHTING, "lighting")
    else:
        raise ParameterError(f"lighting must be None, a preset name or a dict, got {type(lighting).__name__}",
                             parameter="lighting")

    if background is None:
        bg = tuple(float(np.clip(c / 255.0 + j, 0, 1)) for c, j in zip(BACKGROUNDS[bg_name], bg_jitter))
    elif isinstance(background, str):
        if background not in BACKGROUNDS:
            raise ParameterError(f"unknown background {background!r}; known: {', '.join(BACKGROUNDS)}",
                                 parameter="background")
        bg = tuple(c / 255.0 for c in BACKGROUNDS[background])
    else:
        bg = _rgb(background, "background")
    bg_top = tuple(float(min(1.0, c * 1.08 + 0.03)) for c in bg)

    age = float(getattr(getattr(head, "subject", None), "age", 40.0))
    if hair is False:
        hair_name = None
    elif hair is None or hair is True:
        hair_name = _sample_hair(hair_rng, index, age)
    elif isinstance(hair, str):
        if hair not in HAIR_COLOURS:
            raise ParameterError(f"unknown hair colour {hair!r}; known: {', '.join(HAIR_COLOURS)}", parameter="hair")
        hair_name = hair
    else:
        raise ParameterError(f"hair must be None, True, False or a colour name, got {hair!r}", parameter="hair")
    hair_rgb = None if hair_name is None else tuple(c / 255.0 for c in HAIR_COLOURS[hair_name])
    gs, vs = _lm(head, "g_s"), _lm(head, "v_s")
    if gs is not None and vs is not None:  # a low cranium: keep some hair in sight
        hairline = min(hairline, 0.62 * float(vs[2] - gs[2]))
    return Appearance(index, name, tuple(rgb), hair_name, hair_rgb, hairline, light, bg, bg_top, mottle)


def _camera_params(view: str, seed: int, camera) -> dict:
    check_view(view, PHOTO_VIEWS)
    rng = np.random.default_rng([int(seed), 1, _VIEW_CODE[view]])
    drawn = {"yaw": float(np.clip(rng.normal(0, 1.5), -4, 4)), "pitch": float(np.clip(rng.normal(0, 2.0), -5, 5)),
             "roll": float(np.clip(rng.normal(0, 1.5), -4, 4)), "distance": float(rng.uniform(850, 1200)),
             "fill": float(rng.uniform(0.6, 0.7)), "shift_x": float(rng.uniform(-0.015, 0.015)),
             "shift_y": float(rng.uniform(-0.015, 0.015))}
    if camera is None:
        params = drawn
    elif isinstance(camera, dict):
        params = _merged(camera, _NEUTRAL_CAMERA, "camera")
    else:
        raise ParameterError(f"camera must be None or a dict, got {type(camera).__name__}", parameter="camera")
    if not 100.0 <= params["distance"] <= 10000.0:
        raise ParameterError(f"camera distance {params['distance']:g} mm is outside 100-10000 mm", parameter="camera")
    if not 0.05 <= params["fill"] <= 1.5:
        raise ParameterError(f"camera fill {params['fill']:g} is outside 0.05-1.5", parameter="camera")
    return params


# ---------------------------------------------------------------------------------------------
# colours
def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _merged(given: dict, neutral: dict, parameter: str) -> dict:
    """``neutral`` with the caller's values (as floats); unknown keys are refused."""
    unknown = sorted(set(given) - set(neutral))
    if unknown:
        raise ParameterError(f"unknown {parameter} key(s) {', '.join(unknown)}; known: {', '.join(neutral)}",
                             parameter=parameter)
    return {**neutral, **{k: float(v) for k, v in given.items()}}


def _lm(head, key, default=None):
    p = head.landmarks.get(key)
    return default if p is None else np.asarray(p, float)


def _box(cols, centre, half):
    """Indices of the vertices inside an axis-aligned box (to colour a feature locally);
    ``cols`` holds the x, y and z columns as contiguous arrays."""
    (cx, cy, cz), (hx, hy, hz) = centre, half
    x, y, z = cols
    return np.flatnonzero((x >= cx - hx) & (x <= cx + hx) & (y >= cy - hy) & (y <= cy + hy)
                          & (z >= cz - hz) & (z <= cz + hz))


class _Painter:
    """Per-vertex colours being painted: ``col`` (N, 3) sRGB 0-1 over the vertices ``v``."""

    def __init__(self, v: np.ndarray, col: np.ndarray):
        self.v, self.col = v, col
        self.cols = np.ascontiguousarray(v.T)  # x, y, z columns, for fast box tests

    def tint(self, idx, weight, rgb, strength=1.0):
        """Blend the vertices ``idx`` toward ``rgb`` by ``weight * strength`` (clipped to 0-1)."""
        w = np.clip(np.asarray(weight) * strength, 0, 1)[:, None]
        self.col[idx] = self.col[idx] * (1 - w) + np.asarray(rgb) * w

    def blob(self, centre, radii, rgb, strength):
        """A Gaussian tint around ``centre`` with per-axis ``radii`` (mm)."""
        radii = np.broadcast_to(np.asarray(radii, float), (3,))
        idx = _box(self.cols, centre, 2.5 * radii)
        self.tint(idx, np.exp(-0.5 * np.sum(((self.v[idx] - centre) / radii) ** 2, 1)), rgb, strength)


def vertex_colours(head, appearance: Appearance) -> np.ndarray:
    """Per-vertex sRGB colours (N, 3) in 0-1 for the head's skin."""
    v = np.asarray(head.meshes["skin"][0], float)
    skin = np.asarray(appearance.skin_rgb)
    paint = _Painter(v, _mottled(v, skin, appearance.mottle))
    _flush(paint, head, skin)
    _lips(paint, head, skin)
    _brows_and_lashes(paint, head, skin, appearance)
    if appearance.hair_rgb is not None:  # a hair cap above a hairline from the forehead over the ears to the nape
        idx, w = _hair_weight(head, v, paint.cols[2], appearance.hairline_mm)
        paint.tint(idx, w, _hair_texture(v[idx], appearance.hair_rgb), 1.0)
    return np.clip(paint.col, 0, 1)


def _mottled(v, skin, mottle) -> np.ndarray:
    """The skin colour with low-frequency mottling (brightness and a touch of redness)."""
    freqs, phases, amps = mottle
    mot = (np.sin(v @ freqs.T + phases[None]) @ amps)
    col = skin[None] * (1.0 + mot)[:, None]
    col[:, 0] *= 1.0 + 0.5 * mot
    return col


def _flush(paint: _Painter, head, skin) -> None:
    """Cheeks, nose tip and ears: a little redder."""
    red = skin * np.array([1.0, 0.78, 0.78])
    for side in ("l", "r"):
        orb, ch = _lm(head, f"or_s_{side}"), _lm(head, f"ch_{side}")
        if orb is not None and ch is not None:
            paint.blob(0.55 * orb + 0.45 * ch + np.array([np.sign(orb[0]) * 8.0, 4.0, 0.0]), 14.0, red, 0.35)
        t = _lm(head, f"t_{side}")
        if t is not None:
            paint.blob(t + np.array([np.sign(t[0]) * 2.0, 14.0, 2.0]), np.array([8.5, 11.0, 18.0]), red, 0.2)
    prn = _lm(head, "prn")
    if prn is not None:
        paint.blob(prn, 9.0, red, 0.25)


def _lips(paint: _Painter, head, skin) -> None:
    """A vermilion band around the mouth line, tapering to the corners."""
    sto, chl, chr_ = _lm(head, "sto"), _lm(head, "ch_l"), _lm(head, "ch_r")
    if sto is None or chl is None or chr_ is None:
        return
    X, Y, Z = paint.cols
    half = max(abs(chl[0] - chr_[0]) / 2.0, 10.0)
    cx = 0.5 * (chl[0] + chr_[0])
    top = _extent(_lm(head, "ls"), sto[2], +1, 8.0)
    bottom = _extent(_lm(head, "li"), sto[2], -1, 9.5)
    front_y = min(chl[1], chr_[1])
    idx = np.flatnonzero((np.abs(X - cx) < half + 1.0) & (np.abs(Z - sto[2]) < max(top, bottom) + 1.0)
                         & (Y < front_y + 25.0))
    p = paint.v[idx]
    u = np.abs(p[:, 0] - cx) / (half + 1.0)
    profile = np.clip(1 - u ** 2, 0, 1) ** 0.4
    dz = p[:, 2] - sto[2]
    extent = np.where(dz >= 0, top, bottom) * profile + 0.8
    inside = 1 - _smoothstep(0.75, 1.0, np.abs(dz) / extent)
    depth_ok = _smoothstep(-25.0, -15.0, -(p[:, 1] - front_y))  # the front of the face only
    lip = skin * np.array([0.88, 0.62, 0.64]) + np.array([0.04, 0.0, 0.01])
    paint.tint(idx, inside * depth_ok, lip, 0.7)


def _brows_and_lashes(paint: _Painter, head, skin, appearance: Appearance) -> None:
    """Eyebrows and the lash lines of the closed lids (hair colour, darkened for the lashes)."""
    brow_rgb = np.asarray(appearance.hair_rgb) if appearance.hair_rgb is not None else skin * 0.45
    if appearance.hair_name in ("grey", "white", "blond"):
        brow_rgb = 0.5 * brow_rgb + 0.5 * skin * 0.45
    X, Y, Z = paint.cols
    for side in ("l", "r"):
        en, ex = _lm(head, f"en_{side}"), _lm(head, f"ex_{side}")
        if en is None or ex is None:
            continue
        sgn = np.sign(ex[0]) or 1.0
        eye_y = min(en[1], ex[1])
        lo_x, hi_x = sorted((en[0] - sgn * 8.0, ex[0] + sgn * 10.0))
        idx = np.flatnonzero((X > max(lo_x, -2.0 if sgn > 0 else lo_x)) & (X < min(hi_x, 2.0 if sgn < 0 else hi_x))
                             & (Z > min(en[2], ex[2]) - 4.0) & (Z < max(en[2], ex[2]) + 24.0) & (Y < eye_y + 30.0))
        x, y, z = paint.v[idx, 0], paint.v[idx, 1], paint.v[idx, 2]
        near = _smoothstep(-30.0, -18.0, -(y - eye_y)) * _smoothstep(-2.0, 4.0, sgn * x)
        paint.tint(idx, _brow(x, z, en, ex, sgn) * near, brow_rgb, 0.82)
        paint.tint(idx, _lash(x, z, en, ex, sgn) * near, brow_rgb * 0.5, 0.75)


def _brow(x, z, en, ex, sgn):
    """Weight of an eyebrow: an arc over the eye, thick medially."""
    x0, x1 = en[0] - sgn * 3.0, ex[0] + sgn * 6.0
    s = np.clip((x - x0) / (x1 - x0), -0.3, 1.3)
    sc = np.clip(s, 0, 1)
    zc = 0.5 * (en[2] + ex[2]) + 13.0 + 4.0 * np.sin(np.pi * sc * 0.85) - 2.5 * sc
    half_w = 4.6 - 2.4 * sc
    along = 1 - _smoothstep(0.0, 0.12, np.maximum(-s, s - 1))
    return (1 - _smoothstep(0.6, 1.0, np.abs(z - zc) / half_w)) * along


def _lash(x, z, en, ex, sgn):
    """Weight of a lash line: through en and ex, bowing down a little."""
    s2 = np.clip((x - en[0]) / (ex[0] - en[0]), 0, 1)
    zl = en[2] + (ex[2] - en[2]) * s2 - 1.5 * np.sin(np.pi * s2)
    inside2 = ((x - en[0]) * sgn > -0.5) & ((ex[0] - x) * sgn > -1.0)
    return (1 - _smoothstep(0.5, 1.3, np.abs(z - zl))) * inside2


def _extent(p, mouth_z, sign, default):
    """Height of a lip (mm) from the labrale if it lies plausibly above/below the mouth line."""
    if p is not None:
        d = sign * (p[2] - mouth_z)
        if 3.0 <= d <= 20.0:
            return float(d) + 1.0
    return default


def _hair_weight(head, v, Z, hairline_mm):
    """Vertices of the hair cap and their weights (soft edge at the hairline, ears kept bare)."""
    gs, ops = _lm(head, "g_s"), _lm(head, "op_s")
    tl, tr = _lm(head, "t_l"), _lm(head, "t_r")
    if gs is None:
        return np.zeros(0, int), np.zeros(0)
    zf = gs[2] + hairline_mm
    yc = 0.5 * (gs[1] + ops[1]) if ops is not None else 0.0
    tz = 0.5 * (tl[2] + tr[2]) if tl is not None and tr is not None else gs[2] - 40.0
    knots = np.array([0.0, 35.0, 60.0, 80.0, 100.0, 125.0, 150.0, 180.0])
    zk = np.array([zf, zf - 4.0, zf - 18.0, tz + 42.0, tz + 42.0, tz + 25.0, tz - 5.0, tz - 25.0])
    idx = np.flatnonzero(Z > zk.min() - 3.0)
    p = v[idx]
    theta = np.degrees(np.arctan2(np.abs(p[:, 0]), -(p[:, 1] - yc)))
    w = _smoothstep(-1.5, 2.5, p[:, 2] - np.interp(theta, knots, zk))
    for t in (tl, tr):  # keep the ears bare
        if t is not None:
            c = t + np.array([np.sign(t[0]) * 2.0, 14.0, 2.0])
            r = np.sqrt(np.sum(((p - c) / np.array([16.0, 22.0, 34.0])) ** 2, 1))
            w *= _smoothstep(0.9, 1.15, r)
    keep = w > 0
    return idx[keep], w[keep]


def _hair_texture(v, hair_rgb):
    """Hair colour with strand-like streaks running back from the forehead (deterministic)."""
    h = np.asarray(hair_rgb)
    phi = np.arctan2(v[:, 0], -v[:, 1])
    streak = (0.035 * np.sin(phi * 140.0 + 0.15 * v[:, 2]) + 0.03 * np.sin(phi * 61.0 - 0.07 * v[:, 2] + 1.3)
              + 0.025 * np.sin(phi * 23.0 + 0.05 * v[:, 2] + 0.4))
    return np.clip(h[None] * (1.0 + streak)[:, None] + 0.03 * streak[:, None], 0, 1)


# ---------------------------------------------------------------------------------------------
# camera
def _face_frame(head) -> tuple[np.ndarray, float]:
    """Focal point (the face's centre on the head's vertical axis) and the face height (mm)."""
    gs, ms = _lm(head, "g_s"), _lm(head, "me_s")
    prn, ops = _lm(head, "prn"), _lm(head, "op_s")
    v = np.asarray(head.meshes["skin"][0], float)
    if gs is None or ms is None:
        lo, hi = v.min(0), v.max(0)
        return 0.5 * (lo + hi), float(hi[2] - lo[2]) * 0.75
    top = gs[2] + HAIRLINE_ABOVE_GLABELLA
    front = prn[1] if prn is not None else v[:, 1].min()
    back = ops[1] if ops is not None else v[:, 1].max()
    focal = np.array([0.0, 0.5 * (front + back), 0.5 * (top + ms[2])])
    return focal, float(top - ms[2])


def camera_setup(head, view: str, params: dict, size) -> Camera:
    """The perspective camera of a photo from ``view`` with the jitter in ``params`` (yaw,
    pitch, roll in degrees, distance in mm, fill, shift_x, shift_y; see :func:`render_photo`)."""
    W, H = size
    focal0, face_h = _face_frame(head)
    yaw = np.radians(view_yaw(view) + params["yaw"])
    pitch = np.radians(params["pitch"])
    d = np.array([np.sin(yaw) * np.cos(pitch), -np.cos(yaw) * np.cos(pitch), np.sin(pitch)])
    dist = params["distance"]
    span = face_h / params["fill"]  # mm covered by the image height at the focal point
    angle = 2 * np.degrees(np.arctan(0.5 * span / dist))
    forward = -d
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    r = np.radians(params["roll"])
    up_rolled = np.cos(r) * up + np.sin(r) * right  # positive roll: the face turns counter-clockwise
    # shift the framing: move the focal point along the image axes
    focal = focal0 - params["shift_x"] * span * (W / H) * right - params["shift_y"] * span * up
    return perspective_camera(focal, d, up_rolled, distance=dist, view_angle=float(angle), view=view)


# ---------------------------------------------------------------------------------------------
# rendering
class PhotoRenderer:
    """An off-screen plotter kept between renders; a new head only updates the mesh arrays.

    The building blocks (:meth:`set_mesh`, :meth:`add_light`, :meth:`set_scene`, :meth:`read`,
    :meth:`depth_from_zbuffer`) also render other surfaces in the photos' style.
    """

    def __init__(self, size=(512, 512), multi_samples: int = 0, fxaa: bool = True):
        import pyvista as pv
        import vtk

        from ..viz.render import quiet_display_probe

        quiet_display_probe()
        self._pv, self._vtk = pv, vtk
        self.plotter = pv.Plotter(off_screen=True, window_size=list(size), lighting="none")
        self.plotter.ren_win.SetMultiSamples(int(multi_samples))
        self.renderer = self.plotter.renderer
        self.renderer.AutomaticLightCreationOff()
        if fxaa:  # anti-aliasing as a cheap post-process (MSAA costs 3-4x the render time in software GL)
            self.renderer.UseFXAAOn()
        self.poly = vtk.vtkPolyData()
        self.mapper = vtk.vtkPolyDataMapper()
        self.mapper.SetInputData(self.poly)
        self.mapper.SetColorModeToDirectScalars()
        self.mapper.ScalarVisibilityOn()
        self.mapper.SetScalarModeToUsePointData()
        self.actor = vtk.vtkActor()
        self.actor.SetMapper(self.mapper)
        prop = self.actor.GetProperty()
        prop.SetInterpolationToPhong()
        prop.SetDiffuse(0.8)
        prop.SetSpecularPower(18.0)
        self.renderer.AddActor(self.actor)
        self.key, self.fill = self._new_light(), self._new_light()
        self._extra_lights: list[tuple[object, float, float, float]] = []
        self._faces = None
        self.last_depth = None  # depth (mm along the viewing direction, inf = background) of the last render
        self._size = tuple(size)
        self._lock = threading.Lock()

    def close(self):
        self.plotter.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- building blocks (also used to render other surfaces in the photos' style) --
    def _new_light(self):
        """A directional scene light added to the renderer."""
        light = self._vtk.vtkLight()
        light.SetLightTypeToSceneLight()
        light.PositionalOff()
        self.renderer.AddLight(light)
        return light

    def add_light(self, azimuth: float, elevation: float, intensity: float) -> None:
        """Add a white directional light held relative to the camera like the key and fill
        lights: ``azimuth`` and ``elevation`` in degrees (azimuth 0 = from the camera, positive
        = from the camera's right, 180 = from behind the subject), placed by every :meth:`set_scene`."""
        self._extra_lights.append((self._new_light(), float(azimuth), float(elevation), float(intensity)))

    def set_mesh(self, v: np.ndarray, f: np.ndarray, normals: np.ndarray, colours: np.ndarray):
        """Upload a triangle mesh (mm), its vertex normals and RGB colours in [0, 1]."""
        from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray

        vtk = self._vtk
        if self._faces is None or self._faces.shape != f.shape or not np.array_equal(self._faces, f):
            cells = vtk.vtkCellArray()
            offsets = np.arange(0, 3 * len(f) + 1, 3, dtype=np.int64)
            cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                          numpy_to_vtkIdTypeArray(np.ascontiguousarray(f, dtype=np.int64).ravel(), deep=True))
            self.poly.SetPolys(cells)
            self._faces = np.array(f, copy=True)
        pts = vtk.vtkPoints()
        pts.SetData(numpy_to_vtk(np.ascontiguousarray(v, dtype=np.float32), deep=True))
        self.poly.SetPoints(pts)
        nrm = numpy_to_vtk(np.ascontiguousarray(normals, dtype=np.float32), deep=True)
        nrm.SetName("Normals")
        self.poly.GetPointData().SetNormals(nrm)
        rgb = numpy_to_vtk(np.ascontiguousarray(np.round(colours * 255), dtype=np.uint8), deep=True)
        rgb.SetName("rgb")
        self.poly.GetPointData().SetScalars(rgb)
        self.poly.Modified()

    def set_scene(self, appearance: Appearance, camera: Camera, size):
        """Background, camera (a perspective :class:`medface.viz.Camera`) and lights of ``appearance``."""
        W, H = size
        if (W, H) != self._size:
            self.plotter.ren_win.SetSize(W, H)
            self._size = (W, H)
        ren = self.renderer
        ren.SetBackground(*appearance.background)
        ren.SetBackground2(*appearance.background_top)
        ren.GradientBackgroundOn()
        self._set_camera(camera)
        light = appearance.lighting
        warm = light["warmth"]
        for lt, pre in ((self.key, "key"), (self.fill, "fill")):
            _place_light(lt, camera, light[f"{pre}_azimuth"], light[f"{pre}_elevation"], light[f"{pre}_intensity"])
            sign = 1.0 if pre == "key" else -1.0
            lt.SetColor(1.0 + sign * warm * 0.5, 1.0, 1.0 - sign * warm)
        for lt, azimuth, elevation, intensity in self._extra_lights:
            _place_light(lt, camera, azimuth, elevation, intensity)
        prop = self.actor.GetProperty()
        prop.SetAmbient(light["ambient"])
        prop.SetSpecular(light["specular"])

    def _set_camera(self, cam: Camera) -> None:
        """VTK's active camera from ``cam``, clipped tightly around the mesh (depth precision)."""
        camera = self.renderer.GetActiveCamera()
        camera.SetPosition(*cam.position)
        camera.SetFocalPoint(*cam.focal_point)
        camera.SetViewUp(*cam.view_up)
        camera.SetViewAngle(cam.view_angle)
        camera.SetParallelProjection(False)
        camera.SetUseHorizontalViewAngle(False)
        b = np.array(self.poly.GetBounds()).reshape(3, 2)
        centre, radius = b.mean(1), 0.5 * np.linalg.norm(b[:, 1] - b[:, 0])
        dist = np.linalg.norm(np.asarray(cam.position) - centre)
        camera.SetClippingRange(max(dist - radius - 20.0, 1.0), dist + radius + 20.0)

    def clipping_range(self) -> tuple[float, float]:
        """(near, far) distances (mm) of the last scene's camera."""
        return tuple(self.renderer.GetActiveCamera().GetClippingRange())

    def read(self, size):
        """Render; the (H, W, 3) uint8 image and the raw z-buffer."""
        from vtkmodules.util.numpy_support import vtk_to_numpy

        W, H = size
        rw = self.plotter.ren_win
        rw.Render()
        rgb = self._vtk.vtkUnsignedCharArray()
        rw.GetPixelData(0, 0, W - 1, H - 1, 0, rgb, 0)
        img = vtk_to_numpy(rgb).reshape(H, W, 3)[::-1].copy()
        zb = self._vtk.vtkFloatArray()
        rw.GetZbufferData(0, 0, W - 1, H - 1, zb)
        z = vtk_to_numpy(zb).reshape(H, W)[::-1].copy()
        return img, z

    def depth_from_zbuffer(self, z):
        """Distance from the camera (mm) of each pixel of a z-buffer; inf on the backdrop."""
        near, far = self.clipping_range()
        ndc = 2.0 * z.astype(np.float64) - 1.0
        depth = 2.0 * near * far / ((far + near) - ndc * (far - near))
        depth[z >= 1.0] = np.inf  # background
        return depth

    # -- public --
    def render(self, head, *, view="frontal", size=(512, 512), skin_tone=None, lighting=None, camera=None,
               seed=0, background=None, hair=None):
        """Render one view (see :func:`render_photo`)."""
        check_view(view, PHOTO_VIEWS)
        return self.render_views(head, views=(view,), size=size, skin_tone=skin_tone, lighting=lighting,
                                 camera=camera, seed=seed, background=background, hair=hair)[view]

    def render_views(self, head, views=("frontal", "left", "three_quarter_left"), *, size=(512, 512),
                     skin_tone=None, lighting=None, camera=None, seed=0, background=None, hair=None):
        size = _size(size)
        seed = _seed(seed)
        views = tuple(views)
        for view in views:
            check_view(view, PHOTO_VIEWS, parameter="views")
        if "skin" not in getattr(head, "meshes", {}):
            raise ParameterError("the head has no 'skin' mesh", parameter="head")
        appearance = _appearance(head, seed, skin_tone, lighting, background, hair)
        skin = _SkinLandmarks.of(head)
        out = {}
        with self._lock:
            self.set_mesh(skin.vertices, skin.faces, skin.normals, vertex_colours(head, appearance))
            for view in views:
                params = _camera_params(view, seed, camera)
                out[view] = self._photo(head, skin, appearance, camera_setup(head, view, params, size),
                                        params, seed=seed, size=size)
        return out

    def _photo(self, head, skin, appearance: Appearance, cam: Camera, params: dict, *, seed: int, size):
        """Render the uploaded head from ``cam``: the FaceImage with its visible landmarks."""
        from ..data import FaceImage

        self.set_scene(appearance, cam, size)
        img, zbuf = self.read(size)
        depth = self.depth_from_zbuffer(zbuf)
        self.last_depth = depth
        xy, w = self._vtk_project(skin.points, size)
        xy_probe, w_probe = self._vtk_project(skin.probes, size)
        to_camera = np.asarray(cam.position)[None] - skin.points
        to_camera /= np.maximum(np.linalg.norm(to_camera, axis=1, keepdims=True), 1e-9)
        grazing = np.abs(np.einsum("ij,ij->i", skin.landmark_normals, to_camera)) < GRAZING_COSINE
        tol = np.where(grazing, GRAZING_TOLERANCE, VISIBILITY_TOLERANCE)
        lm2d, hidden = _visible(skin.ids, xy, xy_probe, w_probe, depth, size, tol)
        meta = {"synthetic": True, "generator": "medface.phantom.photo", "view": cam.view,
                "seed": seed, "size": list(size),
                "subject_id": getattr(getattr(head, "subject", None), "subject_id", None),
                "camera": {**{k: round(float(val), 4) for k, val in params.items()},
                           "base_yaw": view_yaw(cam.view),
                           "position": [float(c) for c in cam.position],
                           "focal_point": [float(c) for c in cam.focal_point],
                           "view_up": [float(c) for c in cam.view_up],
                           "view_angle_deg": cam.view_angle,
                           "clipping_range": list(self.clipping_range())},
                **appearance.to_dict(), "hidden_landmarks": hidden}
        return FaceImage(img, landmarks_2d=lm2d, metadata=meta)

    def _vtk_project(self, pts: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
        """VTK's own world -> display projection (composite projection matrix), in image pixels."""
        W, H = size
        cam = self.renderer.GetActiveCamera()
        m = cam.GetCompositeProjectionTransformMatrix(self.renderer.GetTiledAspectRatio(), -1, 1)
        M = np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])
        hom = np.c_[pts, np.ones(len(pts))] @ M.T
        ndc = hom[:, :3] / hom[:, 3:4]
        x = (ndc[:, 0] + 1) / 2 * W
        y = (1 - ndc[:, 1]) / 2 * H
        # depth along the viewing direction (mm)
        pos, foc = np.array(cam.GetPosition()), np.array(cam.GetFocalPoint())
        fwd = (foc - pos) / np.linalg.norm(foc - pos)
        return np.stack([x, y], axis=1), (pts - pos) @ fwd


def _place_light(light, camera: Camera, azimuth: float, elevation: float, intensity: float) -> None:
    """Aim a directional light at the camera's focal point from ``azimuth`` / ``elevation``
    (degrees) relative to the camera: azimuth 0 from the camera, positive from its right."""
    pos, foc = np.asarray(camera.position), np.asarray(camera.focal_point)
    fwd = (foc - pos) / np.linalg.norm(foc - pos)
    up = np.asarray(camera.view_up)
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    az, el = np.radians(azimuth), np.radians(elevation)
    direction = np.cos(el) * (np.cos(az) * -fwd + np.sin(az) * right) + np.sin(el) * up
    light.SetFocalPoint(*foc)
    light.SetPosition(*(foc + 1000.0 * direction))
    light.SetIntensity(intensity)


@dataclass(frozen=True)
class _SkinLandmarks:
    """A head's skin as rendered (vertices, faces, outward normals) and its soft-tissue
    landmarks: points, visibility probes and the skin normals there."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    ids: list
    points: np.ndarray
    probes: np.ndarray
    landmark_normals: np.ndarray

    @classmethod
    def of(cls, head) -> "_SkinLandmarks":
        v, f = head.meshes["skin"]
        v = np.asarray(v, float)
        f = np.asarray(f)
        normals = outward_normals(SurfaceMesh(v, f))
        ids = _soft_ids(head)
        pts = np.array([head.landmarks[k] for k in ids], float).reshape(-1, 3)
        return cls(v, f, normals, ids, pts, _visibility_probes(head, ids, pts), _landmark_normals(v, normals, pts))


def _visibility_probes(head, ids, pts):
    """Points whose visibility stands for each landmark's (see :data:`SLIT_LANDMARKS`)."""
    probes = pts.copy()
    for i, key in enumerate(ids):
        if key == "sto":
            fronts = [head.landmarks[k][1] for k in ("ls", "li") if k in head.landmarks]
            if fronts and min(fronts) < pts[i, 1]:
                probes[i, 1] = min(fronts)  # the mouth opening at the front of the lips
    return probes


def _landmark_normals(v, normals, pts, k: int = 8):
    """Skin normal at each landmark: the mean of its k nearest vertices' normals."""
    if len(pts) == 0:
        return np.zeros((0, 3))
    from scipy.spatial import cKDTree

    _, idx = cKDTree(v, leafsize=64, balanced_tree=False, compact_nodes=False).query(pts, k=k)
    n = normals[idx].mean(axis=1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _visible(ids, xy, xy_probe, w, depth, size, tol):
    """z-buffer test: seen when, at the landmark's pixel or one of its 8 neighbours, the
    rendered surface is not in front of it by more than the tolerance (the neighbours keep
    landmarks that sit on a silhouette, such as ``zy_s`` in a frontal view)."""
    W, H = size
    lm2d, hidden = {}, []
    for key, (px, py), (qx, qy), d, t in zip(ids, xy, xy_probe, w, tol):
        ok = d > 0 and 0 <= px < W and 0 <= py < H and 0 <= qx < W and 0 <= qy < H
        if ok:
            i, j = int(qy), int(qx)
            near = depth[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            ok = bool(np.any(near >= d - t))
        if ok:
            lm2d[key] = (float(px), float(py))
        else:
            hidden.append(key)
    return lm2d, hidden


def _soft_ids(head) -> list[str]:
    from ..data.vocabulary import get

    out = []
    for key in head.landmarks:
        try:
            kind = get(key).kind
        except Exception:
            continue
        if kind == "soft_tissue":
            out.append(key)
    return out


def _size(size) -> tuple[int, int]:
    try:
        W, H = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ParameterError(f"size must be (width, height) in pixels, got {size!r}", parameter="size") from None
    if not (16 <= W <= 4096 and 16 <= H <= 4096):
        raise ParameterError(f"size {W}x{H} is outside 16-4096 pixels", parameter="size")
    return W, H


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}", parameter="seed")
    return int(seed)


_LOCAL = threading.local()


def default_renderer() -> PhotoRenderer:
    """This thread's shared renderer (made on first use)."""
    r = getattr(_LOCAL, "renderer", None)
    if r is None:
        r = _LOCAL.renderer = PhotoRenderer()
    return r


def render_photo(head, *, view: str = "frontal", size=(512, 512), skin_tone=None, lighting=None, camera=None,
                 seed: int = 0, background=None, hair=None):
    """A photograph-like colour render of the head's face as a :class:`medface.data.FaceImage`.

    ``view``: one of :data:`PHOTO_VIEWS`. ``size``: (width, height) pixels. ``skin_tone``: index 1-6,
    numeral ``"I"``-``"VI"`` or name (:data:`SKIN_TONES`); sampled from ``seed`` when None.
    ``lighting``: None (sampled), a preset name (:data:`LIGHTING_PRESETS`) or a dict of
    key/fill azimuth and elevation (degrees, relative to the camera; positive azimuth = from
    the camera's right), intensities, ambient, specular and warmth. ``camera``: None (a few
    degrees of yaw, pitch and roll, 850-1200 mm distance, 60-70 % fill, sampled) or a dict with
    yaw, pitch, roll (degrees, added to the view), distance (mm), fill (fraction of the image
    height the face spans, hairline to chin), shift_x, shift_y (fraction of the image); keys
    left out take neutral values. ``background``: None (sampled backdrop), a name from
    :data:`BACKGROUNDS` or an RGB triple. ``hair``: None/True (sampled colour), False (no
    hair) or a name from :data:`HAIR_COLOURS`. Same arguments and seed: the same image.
    """
    return default_renderer().render(head, view=view, size=size, skin_tone=skin_tone, lighting=lighting,
                                     camera=camera, seed=seed, background=background, hair=hair)


def render_views(head, views=("frontal", "left", "three_quarter_left"), **kw) -> dict:
    """Several views of one head with the same appearance, in one plotter: view -> FaceImage."""
    return default_renderer().render_views(head, views=views, **kw)


def contact_sheet(images, columns: int = 3, pad: int = 4, colour=(255, 255, 255)) -> np.ndarray:
    """Tile FaceImages (or arrays) of equal size into one RGB array, row by row."""
    arrs = [np.asarray(getattr(im, "pixels", im)) for im in images]
    if not arrs:
        raise ParameterError("no images to tile", parameter="images")
    h, w = arrs[0].shape[:2]
    rows = (len(arrs) + columns - 1) // columns
    sheet = np.empty((rows * h + (rows + 1) * pad, columns * w + (columns + 1) * pad, 3), np.uint8)
    sheet[:] = colour
    for i, a in enumerate(arrs):
        r, c = divmod(i, columns)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] = a[:h, :w, :3]
    return sheet
