"""Osteotomy presets built from landmarks: Le Fort I, BSSO and genioplasty.

Each preset places bounded cut planes (rectangles, like 3D Slicer planes with a size) from
craniometric landmarks in the landmarks' own head frame (:func:`medface.anatomy.cephalometry.head_frame`),
so they work in any head orientation. They are geometric simplifications of the operations,
listed in ``docs/surgery-plans.md``; a surgeon adjusts the planes in Slicer afterwards.

:func:`make_plan` returns a checked :class:`medface.data.Plan`::

    plan = make_plan("le_fort_i", landmarks, advance=4.0)
    plan = make_plan("bimaxillary", landmarks, advance=4.0, mandible_advance=6.0)
"""

from __future__ import annotations

import numpy as np

from medface.anatomy.cephalometry import HeadFrame, as_point_dict, head_frame
from medface.data import Plan
from medface.errors import InputError, ParameterError

from .plan_schema import new_plan
from .plan_validation import check_plan

PROCEDURES = ("le_fort_i", "bsso", "genioplasty", "bimaxillary")
#: other spellings accepted for each preset (on the command line, in scripts)
ALIASES = {"lefort1": "le_fort_i", "le-fort-i": "le_fort_i", "lefort_i": "le_fort_i", "le_fort_1": "le_fort_i",
           "bsso": "bsso", "sagittal_split": "bsso", "genio": "genioplasty", "bimax": "bimaxillary"}

UPPER_INCISOR_ROOT_MM = 11.0
"""Alveolar crest (prosthion) to upper incisor apex, mm: root length ~13 mm less ~2 mm crest
to cemento-enamel junction (Wheeler's dental anatomy averages)."""
LOWER_CANINE_ROOT_MM = 15.0
"""Alveolar crest (infradentale) to lower canine apex, mm (root ~16 mm, Wheeler's averages)."""


def procedure_id(name: str) -> str:
    """The preset id (one of :data:`PROCEDURES`) of a procedure name or one of its :data:`ALIASES`."""
    key = name.strip().lower().replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in PROCEDURES:
        raise ParameterError(f"unknown procedure {name!r}; use one of {', '.join(PROCEDURES)} "
                             f"(or {', '.join(sorted(ALIASES))})", parameter="procedure")
    return key


def _need(points: dict, ids, procedure: str) -> None:
    missing = [i for i in ids if i not in points]
    if missing:
        raise InputError(f"the {procedure} preset needs landmark(s) {', '.join(missing)}")


def _height(frame: HeadFrame, p) -> float:
    return float(frame.to_frame(p)[2])


def _ap(frame: HeadFrame, p) -> float:
    """Anterior coordinate in the head frame."""
    return float(-frame.to_frame(p)[1])


def _at(frame: HeadFrame, left: float, anterior: float, up: float) -> np.ndarray:
    return frame.origin + left * frame.left + anterior * frame.anterior + up * frame.superior


def _tilted_normal(frame: HeadFrame, tilt_deg: float, downward: bool = True) -> np.ndarray:
    """A normal (pointing down) of a plane parallel to the horizontal, tilted ``tilt_deg``
    about the left axis (+ raises the anterior end)."""
    t = np.radians(tilt_deg)
    n = -(np.cos(t) * frame.superior - np.sin(t) * frame.anterior)
    return n if downward else -n


def le_fort_i(landmarks, *, above_ans_mm: float = 2.0, tilt_deg: float = 0.0, frame: HeadFrame | None = None,
              posterior_margin_mm: float = 22.0) -> dict:
    """Le Fort I osteotomy: a plane parallel to the Frankfurt horizontal ``above_ans_mm`` above
    ANS (ANS and A point go with the maxilla), bounded to the maxilla: from 10 mm ahead of ANS to
    ``posterior_margin_mm`` behind ectomolare (stand-in for the pterygomaxillary junction), and
    laterally 15 mm beyond ectomolare (or zygomaxillare). The normal points down, to the maxilla.

    Checks that the plane lies below orbitale by at least 10 mm (the infraorbital foramina lie
    ~6-10 mm below the rim) and at least 3 mm above the estimated upper incisor apex
    (prosthion + 11 mm); otherwise :class:`ParameterError`.
    """
    points = as_point_dict(landmarks)
    _need(points, ("ans", "pr"), "Le Fort I")
    frame = frame or head_frame(points)
    level = _height(frame, points["ans"]) + above_ans_mm
    problems = []
    orb = [points[i] for i in ("or_l", "or_r") if i in points]
    if orb:
        gap = min(_height(frame, o) for o in orb) - level
        if gap < 10.0:
            problems.append(f"the Le Fort I plane is only {gap:.1f} mm below orbitale (needs >= 10 mm to spare the "
                            "infraorbital foramina)")
    apex = _height(frame, points["pr"]) + UPPER_INCISOR_ROOT_MM
    if level - apex < 3.0:
        problems.append(f"the Le Fort I plane is {level - apex:.1f} mm above the estimated incisor apex "
                        f"(needs >= 3 mm)")
    if problems:
        raise ParameterError("; ".join(problems), parameter="above_ans_mm")
    lateral_ids = [i for i in ("ecm_l", "ecm_r", "zm_l", "zm_r") if i in points]
    half_width = (max(abs(float(frame.to_frame(points[i])[0])) for i in lateral_ids) if lateral_ids else 32.0) + 15.0
    front = _ap(frame, points["ans"]) + 10.0
    back_ids = [i for i in ("ecm_l", "ecm_r") if i in points]
    back = (min(_ap(frame, points[i]) for i in back_ids) if back_ids else _ap(frame, points["ans"]) - 45.0) \
        - posterior_margin_mm
    if "pns" in points:
        back = min(back, _ap(frame, points["pns"]) - 5.0)
    centre = _at(frame, float(frame.to_frame(points["ans"])[0]), 0.5 * (front + back), level)
    # tilt about the left axis through the ANS-level point
    normal = _tilted_normal(frame, tilt_deg)
    return {"name": "le_fort_i", "bone": "cranium", "centre": centre, "normal": normal,
            "size_mm": [2.0 * half_width, (front - back) / np.cos(np.radians(tilt_deg))],
            "u_axis": frame.left, "description": "Le Fort I: above the apices, below the infraorbital foramina"}


def bsso(landmarks, *, forward_mm: float = 0.0, frame: HeadFrame | None = None) -> list[dict]:
    """Bilateral sagittal split, simplified to one vertical plane per side.

    Each plane is perpendicular to the Frankfurt horizontal and to that side's mandibular body
    line (gonion to pogonion, projected on the horizontal), placed where the body line reaches
    the front-back position of the coronoid tip (the anterior ramus border, behind the last
    molar), moved ``forward_mm`` along the body. The normal points forward, to the tooth-bearing
    (distal) segment. A real BSSO splits the ramus sagittally (medial horizontal cut above the
    lingula, buccal vertical cut at the second molar) so the segments overlap and slide; a single
    plane instead leaves a gap when the distal segment advances.
    """
    points = as_point_dict(landmarks)
    _need(points, ("pog", "me", "go_l", "go_r", "cor_l", "cor_r"), "BSSO")
    frame = frame or head_frame(points)
    out = []
    for side in ("l", "r"):
        go, cor, pog = points[f"go_{side}"], points[f"cor_{side}"], points["pog"]
        body = pog - go
        horizontal = body - (body @ frame.superior) * frame.superior
        normal = horizontal / np.linalg.norm(horizontal)
        t = (_ap(frame, cor) - _ap(frame, go)) / (_ap(frame, pog) - _ap(frame, go))
        if not 0.0 < t < 1.0:
            raise InputError(f"the coronoid tip cor_{side} is not between gonion and pogonion front to back")
        at = go + t * body + forward_mm * normal
        top = _height(frame, cor) + 10.0
        bottom = _height(frame, points["me"]) - 10.0
        centre = at + ((0.5 * (top + bottom)) - _height(frame, at)) * frame.superior
        out.append({"name": f"bsso_{side}", "bone": "mandible", "centre": centre, "normal": normal,
                    "size_mm": [top - bottom, 40.0], "u_axis": frame.superior,
                    "description": f"BSSO {'left' if side == 'l' else 'right'} (single-plane simplification)"})
    return out


def genioplasty(landmarks, *, height_fraction: float = 0.4, tilt_deg: float = 0.0,
                frame: HeadFrame | None = None) -> dict:
    """Sliding genioplasty: a plane parallel to the Frankfurt horizontal at ``height_fraction``
    of the symphysis height (menton to infradentale) above menton, bounded to the chin (from
    the front of the chin back 60 % of the way from pogonion to gonion, as wide as the gonial
    breadth, 90 mm without gonia). The normal points down, to
    the chin segment. Checks that the plane lies at least 5 mm below the estimated lower canine
    apex (infradentale - 15 mm) and at least 8 mm above menton (:class:`ParameterError`).
    """
    points = as_point_dict(landmarks)
    _need(points, ("me", "id", "pog"), "genioplasty")
    frame = frame or head_frame(points)
    me, top = _height(frame, points["me"]), _height(frame, points["id"])
    level = me + height_fraction * (top - me)
    problems = []
    apex = top - LOWER_CANINE_ROOT_MM
    if apex - level < 5.0:
        problems.append(f"the genioplasty plane is only {apex - level:.1f} mm below the estimated canine apex "
                        "(needs >= 5 mm)")
    if level - me < 8.0:
        problems.append(f"the genioplasty plane is only {level - me:.1f} mm above menton (needs >= 8 mm)")
    if problems:
        raise ParameterError("; ".join(problems), parameter="height_fraction")
    front = _ap(frame, points["pog"]) + 10.0
    gonia = [points[i] for i in ("go_l", "go_r") if i in points]
    go_ap = float(np.mean([_ap(frame, g) for g in gonia])) if gonia else _ap(frame, points["pog"]) - 75.0
    back = _ap(frame, points["pog"]) - 0.6 * (_ap(frame, points["pog"]) - go_ap)
    width = float(np.linalg.norm(gonia[0] - gonia[1])) if len(gonia) == 2 else 90.0
    centre = _at(frame, float(frame.to_frame(points["me"])[0]), 0.5 * (front + back), level)
    return {"name": "genioplasty", "bone": "mandible", "centre": centre, "normal": _tilted_normal(frame, tilt_deg),
            "size_mm": [width, (front - back) / np.cos(np.radians(tilt_deg))], "u_axis": frame.left,
            "description": "genioplasty: below the canine apices and mental foramina, above menton"}


def make_plan(procedure: str, landmarks, *, advance: float = 0.0, impaction: float = 0.0,
              mandible_advance: float | None = None, chin_advance: float | None = None, kerf_mm: float = 1.0,
              **options) -> Plan:
    """A checked surgical plan for ``procedure`` (one of :data:`PROCEDURES`) from landmarks.

    ``advance`` (mm) moves the mobile segment forward (anterior) in the head frame; for
    ``le_fort_i`` ``impaction`` (mm) moves the maxilla up. ``bimaxillary`` combines Le Fort I
    (``advance``) and BSSO (``mandible_advance``, default ``advance``). ``options`` go to the
    preset functions (``above_ans_mm``, ``tilt_deg``, ``forward_mm``, ``height_fraction``).
    Segments: ``maxilla`` (of bone ``cranium``), ``mandible_distal`` (tooth-bearing part of
    ``mandible``), ``proximal_l``/``proximal_r``, ``chin``.
    """
    if procedure not in PROCEDURES:
        raise ParameterError(f"unknown procedure {procedure!r}; use one of {', '.join(PROCEDURES)}",
                             parameter="procedure")
    points = as_point_dict(landmarks)
    frame = head_frame(points)
    osteotomies, segments, moves = [], [], []
    fwd = frame.anterior

    def move(segment, amount, up=0.0, pivot=None):
        t = amount * fwd + up * frame.superior
        m = {"segment": segment, "translation_mm": t, "rotation_deg": [0.0, 0.0, 0.0]}
        if pivot is not None:
            m["pivot"] = pivot
        if amount or up:
            moves.append(m)

    def pick(names, fn):
        return fn(points, frame=frame, **{k: v for k, v in options.items() if k in names})

    if procedure in ("le_fort_i", "bimaxillary"):
        osteotomies.append(pick(("above_ans_mm", "tilt_deg", "posterior_margin_mm"), le_fort_i))
        segments.append({"name": "maxilla", "bone": "cranium", "anchor": "a" if "a" in points else "ans",
                         "cuts": [{"osteotomy": "le_fort_i", "side": "positive"}]})
        move("maxilla", advance, impaction)
    if procedure in ("bsso", "bimaxillary"):
        osteotomies.extend(pick(("forward_mm",), bsso))
        segments.append({"name": "mandible_distal", "bone": "mandible", "anchor": "pog",
                         "cuts": [{"osteotomy": "bsso_l", "side": "positive"}, {"osteotomy": "bsso_r", "side": "positive"}]})
        segments.append({"name": "proximal_l", "bone": "mandible", "anchor": "go_l",
                         "cuts": [{"osteotomy": "bsso_l", "side": "negative"}]})
        segments.append({"name": "proximal_r", "bone": "mandible", "anchor": "go_r",
                         "cuts": [{"osteotomy": "bsso_r", "side": "negative"}]})
        move("mandible_distal", advance if mandible_advance is None else mandible_advance)
    if procedure == "genioplasty":
        osteotomies.append(pick(("height_fraction", "tilt_deg"), genioplasty))
        segments.append({"name": "chin", "bone": "mandible", "anchor": "me",
                         "cuts": [{"osteotomy": "genioplasty", "side": "positive"}]})
        move("chin", advance if chin_advance is None else chin_advance)
    parameters = {"advance": advance, "impaction": impaction, "mandible_advance": mandible_advance,
                  "chin_advance": chin_advance, "horizontal": frame.horizontal, **options}
    plan = new_plan(name=procedure, osteotomies=osteotomies, segments=segments, moves=moves, landmarks=points,
                    kerf_mm=kerf_mm, procedure=procedure,
                    parameters={k: v for k, v in parameters.items() if v is not None})
    return check_plan(plan)
