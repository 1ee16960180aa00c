"""Facial expressions and a unilateral facial palsy on the phantom, for grading photos of known truth.

:func:`render_expression_set` renders one frontal photo per expression (:data:`EXPRESSIONS`,
the photos of an eFACE examination) of one phantom head with open eyes, all with the same
camera and lighting, so distances compare across the photos. Each expression is a smooth,
local displacement field of the rest head's skin built from its landmarks (see
:data:`MAGNITUDES` and docs/phantom.md, "Expressions and facial palsy"); a :class:`Palsy`
scales every region's movement on the affected side by ``1 - severity`` and lowers the brow
and the oral commissure there at rest. ``left`` and ``right`` are the patient's: the patient's
left is +x in the phantom's LPS frame and appears on the image's right in a frontal photo.
:func:`write_expression_set` writes a session folder (``<expression>.png`` and ``truth.json``)
that ``medface expression grade --photos`` reads. Everything is synthetic.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from . import eyes as E

EXPRESSIONS = ("rest", "brow_raise", "eye_closure_gentle", "eye_closure_full", "smile", "pucker",
               "lower_lip_depression")
REGIONS = ("brow", "eye", "smile", "lower_lip")
SIDES = ("right", "left")

#: movement sizes (mm unless noted) and where they come from; see docs/phantom.md
MAGNITUDES = {
    "brow_raise_mm": 10.0,  # brow lift at mid-brow (normal adults ~8-12 mm; assumption within that range)
    "gentle_closure": 0.75,  # fraction of the fissure closed in gentle closure (assumption)
    "full_closure": 1.0,
    "smile_lateral_mm": 8.5, "smile_up_mm": 8.0, "smile_back_mm": 3.0,  # 11.7 mm in the frontal plane
    "cheek_lift_mm": 3.0,
    "pucker_medial_mm": 8.0, "pucker_forward_mm": 6.0,
    "lower_lip_down_mm": 7.5,
    "rest_brow_ptosis_mm": 3.0, "rest_commissure_droop_mm": 2.0,  # at severity 1 (assumptions)
    "synkinesis_closure": 0.5,  # eye closure in smile / pucker at synkinesis 1 (assumption)
}
#: the movement (region it belongs to, amount) each expression performs
MOVEMENTS = {
    "rest": {},
    "brow_raise": {"brow": 1.0},
    "eye_closure_gentle": {"eye": MAGNITUDES["gentle_closure"]},
    "eye_closure_full": {"eye": MAGNITUDES["full_closure"]},
    "smile": {"smile": 1.0},
    "pucker": {"pucker": 1.0},
    "lower_lip_depression": {"lower_lip": 1.0},
}
#: the palsy region that scales each movement (the pucker's orbicularis oris: the smile's buccal branch)
MOVEMENT_REGION = {"brow": "brow", "eye": "eye", "smile": "smile", "pucker": "smile", "lower_lip": "lower_lip"}
#: appearance of every expression set: a frontal, symmetric light and a level camera
LIGHTING = {"key_azimuth": 0.0, "key_elevation": 28.0, "key_intensity": 0.8, "fill_azimuth": 0.0,
            "fill_elevation": -12.0, "fill_intensity": 0.3, "ambient": 0.2, "specular": 0.1, "warmth": 0.0}
CAMERA = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "distance": 1000.0, "fill": 0.72, "shift_x": 0.0, "shift_y": 0.0}


# ---------------------------------------------------------------------------------------------
# the palsy
def _unit(value, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number in 0-1, got {value!r}", parameter=name) from None
    if isinstance(value, bool) or not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise ParameterError(f"{name} must be a finite number in 0-1, got {value!r}", parameter=name)
    return x


@dataclass
class Palsy:
    """A unilateral facial palsy: the patient's ``side`` ("right" or "left"), each region's
    ``severity`` (:data:`REGIONS`; 0 normal movement, 1 flaccid; regions left out are 0) and
    ``synkinesis`` (0-1: how far the affected eye closes during smile and pucker, as a fraction
    of :data:`MAGNITUDES` ``synkinesis_closure``)."""

    side: str
    severity: dict = field(default_factory=dict)
    synkinesis: float = 0.0

    def __post_init__(self):
        if self.side not in SIDES:
            raise ParameterError(f"palsy side must be 'right' or 'left' (the patient's), got {self.side!r}",
                                 parameter="side")
        if not isinstance(self.severity, dict):
            raise ParameterError(f"severity must map regions ({', '.join(REGIONS)}) to 0-1, got "
                                 f"{type(self.severity).__name__}", parameter="severity")
        unknown = sorted(str(k) for k in self.severity if k not in REGIONS)
        if unknown:
            raise ParameterError(f"unknown palsy region(s) {', '.join(unknown)}; known: {', '.join(REGIONS)}",
                                 parameter="severity")
        self.severity = {r: _unit(self.severity.get(r, 0.0), f"severity[{r}]") for r in REGIONS}
        self.synkinesis = _unit(self.synkinesis, "synkinesis")

    def to_dict(self) -> dict:
        return {"side": self.side, "severity": dict(self.severity), "synkinesis": self.synkinesis}

    @classmethod
    def from_dict(cls, doc: dict) -> "Palsy":
        if not isinstance(doc, dict) or "side" not in doc:
            raise ParameterError(f"a palsy is a dict with side, severity and synkinesis, got {doc!r}",
                                 parameter="palsy")
        unknown = sorted(set(doc) - {"side", "severity", "synkinesis"})
        if unknown:
            raise ParameterError(f"unknown palsy key(s) {', '.join(unknown)}", parameter="palsy")
        return cls(doc["side"], dict(doc.get("severity") or {}), doc.get("synkinesis", 0.0))


def activation(expression: str, palsy: Palsy | None = None) -> dict:
    """Per side, the fraction of each movement performed in ``expression`` (eye: the closure)
    and the resting tone change (mm): what the render applies, as written to truth.json."""
    if expression not in EXPRESSIONS:
        raise ParameterError(f"unknown expression {expression!r}; known: {', '.join(EXPRESSIONS)}",
                             parameter="expressions")
    out = {}
    for side in SIDES:
        sev = palsy.severity if palsy is not None and palsy.side == side else dict.fromkeys(REGIONS, 0.0)
        moves = {m: 0.0 for m in MOVEMENT_REGION}
        for m, amount in MOVEMENTS[expression].items():
            moves[m] = amount * (1.0 - sev[MOVEMENT_REGION[m]])
        if palsy is not None and palsy.side == side and expression in ("smile", "pucker"):
            moves["eye"] = max(moves["eye"], palsy.synkinesis * MAGNITUDES["synkinesis_closure"])
        moves["rest_brow_ptosis_mm"] = MAGNITUDES["rest_brow_ptosis_mm"] * sev["brow"]
        moves["rest_commissure_droop_mm"] = MAGNITUDES["rest_commissure_droop_mm"] * sev["smile"]
        out[side] = {k: round(float(v), 4) for k, v in moves.items()}
    return out


# ---------------------------------------------------------------------------------------------
# displacement fields (rest-head coordinates in, mm out)
_smoothstep = E._smoothstep


def _gauss(p, centre, sigma):
    d = (p - np.asarray(centre, float)) / np.broadcast_to(np.asarray(sigma, float), (3,))
    return np.exp(-0.5 * np.einsum("ij,ij->i", d, d))


def _lm(head, key) -> np.ndarray:
    return np.asarray(head.landmarks[key], float)


def _sgn(side: str) -> float:
    return 1.0 if side == "left" else -1.0


def _half(p, side: str):
    """Weight of one side of the face, blended over the midline (+-6 mm)."""
    return _smoothstep(-6.0, 6.0, _sgn(side) * p[:, 0])


def brow_field(p, head, side: str, lift_mm: float):
    """The brow and forehead of ``side`` move up by ``lift_mm`` at mid-brow (frontalis): full
    from the brow up, fading to 35 % at the hairline, none below the upper lid's fold."""
    fis = E.Fissure.of(head, side)
    cx, zc = fis.pupil_xz[0], fis.canthal(0.5)
    w = np.exp(-0.5 * ((p[:, 0] - cx) / 22.0) ** 2) * np.exp(-0.5 * ((p[:, 1] - _lm(head, "n_s")[1]) / 25.0) ** 2)
    wz = _smoothstep(zc + E.UPPER_LID + 0.5, zc + 12.0, p[:, 2]) * (1 - 0.65 * _smoothstep(zc + 20, zc + 80, p[:, 2]))
    out = np.zeros_like(p)
    out[:, 2] = lift_mm * w * wz * _half(p, side)
    return out


def smile_field(p, head, side: str, amount: float):
    """The commissure of ``side`` pulled up, out and back (zygomaticus major), with a cheek lift."""
    s, sg = side[0], _sgn(side)
    ch, orb = _lm(head, f"ch_{s}"), _lm(head, f"or_s_{s}")
    m = MAGNITUDES
    pull = np.array([sg * m["smile_lateral_mm"], m["smile_back_mm"], m["smile_up_mm"]])
    cheek = 0.55 * orb + 0.45 * ch + np.array([sg * 8.0, 4.0, 0.0])
    out = amount * _gauss(p, ch, 10.0)[:, None] * pull[None]
    out += amount * _gauss(p, cheek, 14.0)[:, None] * np.array([sg * 1.0, 0.0, m["cheek_lift_mm"]])[None]
    return out


def droop_field(p, head, side: str, droop_mm: float):
    """Resting droop of the commissure of ``side``."""
    out = np.zeros_like(p)
    out[:, 2] = -droop_mm * _gauss(p, _lm(head, f"ch_{side[0]}"), 10.0)
    return out


def pucker_field(p, head, side: str, amount: float):
    """The commissure of ``side`` toward the midline and that half of the lips forward (orbicularis oris)."""
    sg, sto = _sgn(side), _lm(head, "sto")
    m = MAGNITUDES
    out = amount * _gauss(p, _lm(head, f"ch_{side[0]}"), 12.0)[:, None] * \
        np.array([-sg * m["pucker_medial_mm"], -3.0, 0.0])[None]
    out[:, 1] -= amount * m["pucker_forward_mm"] * _gauss(p, sto, (16.0, 10.0, 10.0)) * _half(p, side)
    return out


#: the template's mouth line (``medface.phantom.skin.mouth_line``) in the design frame: a slit at
#: this height, this half-width
MOUTH_LINE_Z, MOUTH_HALF_WIDTH = -50.5, 25.0


def design_coordinates(head) -> np.ndarray:
    """The template's design-frame position of each of ``head``'s skin vertices (a phantom head's
    skin is the template's, warped: same vertices, same faces); where the mouth's slit is flat."""
    from .template import get_template

    t = get_template()
    v = t.meshes["skin"][0]
    if len(v) != len(head.meshes["skin"][0]):
        raise ParameterError("the head's skin is not a phantom skin (its vertices are not the template's)",
                             parameter="head", hint="use a head made by medface.phantom.make_head")
    inv = np.linalg.inv(t.frame)
    return v @ inv[:3, :3].T + inv[:3, 3]


def _lower_lip_mask(design):
    """1 on the lower lip and below the mouth line, 0 above: a sharp step across the mouth's slit,
    a soft one beyond the commissures (the skin there is continuous)."""
    width = 0.15 + 6.0 * _smoothstep(MOUTH_HALF_WIDTH - 2.0, MOUTH_HALF_WIDTH + 5.0, np.abs(design[:, 0]))
    return _smoothstep(MOUTH_LINE_Z + width, MOUTH_LINE_Z - width, design[:, 2])


def lower_lip_field(p, head, side: str, amount: float, design):
    """The lower lip of ``side`` pulled down (depressor labii inferioris); ``design``: the points'
    design-frame positions (:func:`design_coordinates`)."""
    sg, sto, li, ch = _sgn(side), _lm(head, "sto"), _lm(head, "li"), _lm(head, f"ch_{side[0]}")
    centre = np.array([sg * 0.5 * abs(ch[0]), li[1], 0.5 * (sto[2] + li[2])])
    w = amount * _gauss(p, centre, (8.0, 12.0, 9.0)) * _lower_lip_mask(design)
    return w[:, None] * np.array([sg * 1.0, -0.5, -MAGNITUDES["lower_lip_down_mm"]])[None]


def displacement(p, head, act: dict, design):
    """(N, 3) skin displacement of the activation ``act`` (see :func:`activation`) at rest-head
    points ``p`` (``design``: their design-frame positions, :func:`design_coordinates`)."""
    p = np.asarray(p, float).reshape(-1, 3)
    out = np.zeros_like(p)
    for side in SIDES:
        a = act[side]
        lift = MAGNITUDES["brow_raise_mm"] * a["brow"] - a["rest_brow_ptosis_mm"]
        if lift:
            out += brow_field(p, head, side, lift)
        if a["rest_commissure_droop_mm"]:
            out += droop_field(p, head, side, a["rest_commissure_droop_mm"])
        if a["smile"]:
            out += smile_field(p, head, side, a["smile"])
        if a["pucker"]:
            out += pucker_field(p, head, side, a["pucker"])
        if a["lower_lip"]:
            out += lower_lip_field(p, head, side, a["lower_lip"], design)
    return out


# ---------------------------------------------------------------------------------------------
# posed heads
@dataclass
class Pose:
    """One expression of a head: the deformed head, what was applied, and the open eyes."""

    expression: str
    head: object  # a medface.phantom.Head with the deformed skin and landmarks
    activation: dict
    caps: dict  # side -> eyes.EyeCap (rest-head coordinates)
    closure: dict  # side -> 0 (open) .. 1 (closed)
    rest_vertices: np.ndarray = field(repr=False)
    displacement: np.ndarray = field(repr=False)  # of the skin vertices (mm), eye opening excluded


def _moved_landmarks(head, shift) -> dict:
    """The head's landmarks with the soft-tissue ones on the skin moved by the vertex ``shift``
    (each landmark is a triangle and barycentric weights on the template's skin)."""
    from .template import get_template

    faces = np.asarray(head.meshes["skin"][1])
    out = dict(head.landmarks)
    for key, sp in get_template().landmarks.items():
        if getattr(sp, "mesh", None) == "skin" and key in out:
            out[key] = np.asarray(out[key], float) + np.asarray(sp.weights) @ shift[faces[sp.face]]
    return out


def eye_caps(head) -> dict:
    v = np.asarray(head.meshes["skin"][0], float)
    return {side: E.EyeCap.fit(v, E.Fissure.of(head, side)) for side in SIDES}


def pose(head, expression: str, palsy: Palsy | None = None, *, caps: dict | None = None,
         open_eyes: bool = True, design: np.ndarray | None = None) -> Pose:
    """``head`` performing ``expression`` with ``palsy``: skin and soft-tissue landmarks moved
    (and, with ``open_eyes``, the fissures opened to each side's closure). ``caps`` and
    ``design`` (:func:`eye_caps`, :func:`design_coordinates` of ``head``) are computed when not given."""
    act = activation(expression, palsy)
    v, f = head.meshes["skin"]
    v = np.asarray(v, float)
    if not open_eyes:
        caps = {}
    elif caps is None:
        caps = eye_caps(head)
    closure = {s: float(act[s]["eye"]) for s in SIDES}
    disp = displacement(v, head, act, design_coordinates(head) if design is None else design)
    moved = v + disp
    for side, cap in caps.items():
        moved[:, 1] += E.open_eye_push(v, cap, closure[side])
    landmarks = _moved_landmarks(head, moved - v)
    posed = replace(head, meshes={**head.meshes, "skin": (moved, f)}, landmarks=landmarks)
    return Pose(expression, posed, act, caps, closure, v, disp)


# ---------------------------------------------------------------------------------------------
# rendering
MOUTH_INSIDE = (0.22, 0.08, 0.08)  # sRGB 0-1: the mouth's slit and the oral cavity seen through it


def _mouth_interior(design, rest_v, act: dict):
    """(vertex indices, weights) of the mouth's slit walls, dark; where the lower lip is pulled down,
    also the lips' rims next to the slit (the mesh does not resolve the slit everywhere, so the
    triangles that then span the parted lips take the rims' dark colour: the open mouth)."""
    idx = np.flatnonzero((np.abs(design[:, 2] - MOUTH_LINE_Z) < 2.0) & (np.abs(design[:, 0]) < MOUTH_HALF_WIDTH))
    d, p = design[idx], rest_v[idx]
    opening = sum(min(1.0, 2.0 * act[s]["lower_lip"]) * _half(p, s) for s in SIDES)
    reach = 0.75 + 1.0 * opening
    w = _smoothstep(reach + 0.15, reach - 0.15, np.abs(d[:, 2] - MOUTH_LINE_Z))
    return idx, w * _smoothstep(MOUTH_HALF_WIDTH, MOUTH_HALF_WIDTH - 3.0, np.abs(d[:, 0]))


def _colours(rest_colours, p: Pose, appearance, design):
    """The rest head's colours (they move with the skin) with lash lines at the open lids' margins
    and a dark inside of the mouth."""
    col = np.array(rest_colours, copy=True)
    idx, w = _mouth_interior(design, p.rest_vertices, p.activation)
    col[idx] = col[idx] * (1 - w[:, None]) + np.asarray(MOUTH_INSIDE) * w[:, None]
    skin = np.asarray(appearance.skin_rgb)
    lash = (np.asarray(appearance.hair_rgb) if appearance.hair_rgb is not None else skin * 0.45) * 0.35
    for side, cap in p.caps.items():
        idx, up, low = E.lid_paint(p.rest_vertices, cap.fissure, p.closure[side])
        for w, strength in ((up, 0.9), (low, 0.45)):
            w = np.clip(w * strength, 0, 1)[:, None]
            col[idx] = col[idx] * (1 - w) + lash * w
    return col


def _render_pose(renderer, p: Pose, rest_colours, scene: dict):
    """Render one pose with the set's appearance and camera (the skin and both eye surfaces)."""
    from .photo import _SkinLandmarks

    skin = _SkinLandmarks.of(p.head)
    parts = [(skin.vertices, skin.faces, skin.normals, _colours(rest_colours, p, scene["appearance"], scene["design"]))]
    for side, cap in p.caps.items():
        eye = E.eye_surface(cap, p.closure[side], scene["iris_rgb"], scene["seed"])
        if eye is not None:
            parts.append(eye)
    offsets = np.cumsum([0] + [len(part[0]) for part in parts[:-1]])
    v = np.concatenate([part[0] for part in parts])
    f = np.concatenate([part[1] + o for part, o in zip(parts, offsets)])
    n = np.concatenate([part[2] for part in parts])
    c = np.concatenate([part[3] for part in parts])
    with renderer._lock:
        renderer.set_mesh(v, f, n, c)
        image = renderer._photo(p.head, skin, scene["appearance"], scene["camera"], scene["params"],
                                seed=scene["seed"], size=scene["size"])
    image.metadata.update({"generator": "medface.phantom.expressions", "expression": p.expression,
                           "activation": p.activation, "iris_colour": scene["iris_name"]})
    return image


def _scene(head, seed: int, size) -> dict:
    from .photo import _appearance, _camera_params, _seed, _size, camera_setup

    seed, size = _seed(seed), _size(size)
    appearance = _appearance(head, seed, None, dict(LIGHTING), None, None)
    params = _camera_params("frontal", seed, dict(CAMERA))
    iris_name, iris_rgb = E.iris_colour(seed, appearance.tone_index)
    return {"seed": seed, "size": size, "appearance": appearance, "design": design_coordinates(head), "params": params,
            "camera": camera_setup(head, "frontal", params, size), "iris_name": iris_name, "iris_rgb": iris_rgb}


def default_head():
    """The mean woman of the phantom (the head of every expression set unless one is given)."""
    from .head import make_head, mean_subject

    return make_head(mean_subject())


def render_expression_set(*, palsy: Palsy | None = None, seed: int = 0, size=(768, 768),
                          expressions=EXPRESSIONS, head=None) -> dict:
    """One frontal photo (:class:`medface.data.FaceImage`) per expression of the same head, with
    open eyes, the same camera and light: ``expression -> FaceImage``. ``palsy``: a
    :class:`Palsy` (or its dict) or None; ``seed`` draws skin tone, hair, backdrop and iris
    colour; ``head``: a :class:`medface.phantom.Head` (default: the mean woman)."""
    from .photo import default_renderer, vertex_colours

    if isinstance(palsy, dict):
        palsy = Palsy.from_dict(palsy)
    if palsy is not None and not isinstance(palsy, Palsy):
        raise ParameterError(f"palsy must be a Palsy, its dict or None, got {type(palsy).__name__}", parameter="palsy")
    expressions = tuple(expressions)
    for e in expressions:
        activation(e)  # refuses unknown names
    head = default_head() if head is None else head
    scene = _scene(head, seed, size)
    rest_colours = vertex_colours(head, scene["appearance"])
    caps = eye_caps(head)
    renderer = default_renderer()
    out = {}
    for e in expressions:
        image = _render_pose(renderer, pose(head, e, palsy, caps=caps, design=scene["design"]), rest_colours, scene)
        image.metadata["palsy"] = None if palsy is None else palsy.to_dict()
        out[e] = image
    return out


def write_expression_set(folder, images: dict, palsy: Palsy | None) -> Path:
    """Write ``<expression>.png`` for each photo and ``truth.json`` (the palsy or null, the
    expressions, and per expression and side the activation applied) into ``folder``."""
    from ..io import write_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(palsy, dict):
        palsy = Palsy.from_dict(palsy)
    names = [e for e in EXPRESSIONS if e in images]
    unknown = sorted(set(images) - set(EXPRESSIONS))
    if unknown:
        raise ParameterError(f"unknown expression(s) {', '.join(unknown)}", parameter="images")
    for e in names:
        write_image(images[e], folder / f"{e}.png")
    truth = {"synthetic": True, "generator": "medface.phantom.expressions",
             "palsy": None if palsy is None else palsy.to_dict(), "expressions": names,
             "activation": {e: activation(e, palsy) for e in names}, "magnitudes": MAGNITUDES,
             "sides": "the patient's: the patient's right appears on the image's left"}
    (folder / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder
