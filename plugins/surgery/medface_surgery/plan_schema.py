"""The surgical plan document: kind, version, JSON Schema, limits, and building a plan.

A plan is a versioned JSON document (``kind = "medface.surgery.plan"``) holding, in LPS
millimetres:

* ``osteotomies``: cut planes (centre, normal, optional rectangle size) on a named bone mesh;
* ``segments``: the bone pieces the cuts create, each named by its bone and the side of each
  plane it lies on (``positive`` = the side the plane normal points to), optionally the piece
  nearest an ``anchor`` landmark;
* ``moves``: rigid moves per segment (see :func:`.transforms.move_matrix` for the axis convention);
* ``mirror``: the healthy side mirrored across the mid-sagittal plane onto the defect side;
* ``landmarks``: ``{id: [x, y, z]}``.

The format is described with an example in ``docs/surgery-plans.md``; checking a plan is
:mod:`.plan_validation`'s job.
"""

from __future__ import annotations

import numpy as np

from medface.data import Plan
from medface.errors import ParameterError

KIND = "medface.surgery.plan"
VERSION = "1.0"
MAX_TRANSLATION_MM = 30.0
MAX_ROTATION_DEG = 45.0

_VEC3 = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
_NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]*$"}
_POINT_OR_LANDMARK = {"oneOf": [_VEC3, {"type": "string", "minLength": 1}]}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "medface:surgery/plan-1.0",
    "title": "medface surgical plan, version 1.0",
    "type": "object",
    "required": ["kind", "version"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": KIND},
        "version": {"const": VERSION},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "procedure": {"type": "string"},
        "parameters": {"type": "object"},
        "coordinate_system": {"const": "LPS"},
        "units": {"const": "mm"},
        "kerf_mm": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
        "bones": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"file": {"type": "string"}, "sha256": {"type": "string"}}}},
        "osteotomies": {"type": "array", "items": {
            "type": "object", "required": ["name", "bone", "centre", "normal"], "additionalProperties": False,
            "properties": {"name": _NAME, "bone": _NAME, "centre": _VEC3, "normal": _VEC3,
                           "size_mm": {"oneOf": [{"type": "null"}, {"type": "array", "items": {
                               "type": "number", "exclusiveMinimum": 0}, "minItems": 2, "maxItems": 2}]},
                           "u_axis": _VEC3, "description": {"type": "string"}}}},
        "segments": {"type": "array", "items": {
            "type": "object", "required": ["name", "bone"], "additionalProperties": False,
            "properties": {"name": _NAME, "bone": _NAME, "description": {"type": "string"},
                           "cuts": {"type": "array", "items": {
                               "type": "object", "required": ["osteotomy", "side"], "additionalProperties": False,
                               "properties": {"osteotomy": _NAME, "side": {"enum": ["positive", "negative"]}}}},
                           "anchor": _POINT_OR_LANDMARK}}},
        "moves": {"type": "array", "items": {
            "type": "object", "required": ["segment"], "additionalProperties": False,
            "properties": {"segment": _NAME, "translation_mm": _VEC3, "rotation_deg": _VEC3,
                           "pivot": _POINT_OR_LANDMARK, "description": {"type": "string"}}}},
        "mirror": {"oneOf": [{"type": "null"}, {
            "type": "object", "required": ["bone", "healthy_side"], "additionalProperties": False,
            "properties": {"name": _NAME, "bone": _NAME, "healthy_side": {"enum": ["left", "right"]},
                           "plane": {"oneOf": [{"type": "null"}, {
                               "type": "object", "required": ["centre", "normal"],
                               "properties": {"centre": _VEC3, "normal": _VEC3}}]},
                           "plane_method": {"enum": ["landmarks", "surface"]},
                           "register": {"enum": ["icp", "none"]}}}]},
        "landmarks": {"type": "object", "additionalProperties": _VEC3},
    },
}



class PlanError(ParameterError):
    """A plan is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        where = f"{source}: " if source else ""
        super().__init__(f"{where}the surgical plan has {len(problems)} problem(s):\n"
                         + "\n".join(f"  - {p}" for p in problems))


def new_plan(*, name: str = "", osteotomies=(), segments=(), moves=(), mirror=None, landmarks=None,
             kerf_mm: float = 1.0, procedure: str | None = None, parameters: dict | None = None) -> Plan:
    """A plan envelope with plain-JSON content (lists, not numpy arrays)."""
    content = {"name": name, "coordinate_system": "LPS", "units": "mm", "kerf_mm": float(kerf_mm),
               "osteotomies": [jsonable(o) for o in osteotomies], "segments": [jsonable(s) for s in segments],
               "moves": [jsonable(m) for m in moves]}
    if procedure:
        content["procedure"] = procedure
    if parameters:
        content["parameters"] = jsonable(parameters)
    if mirror is not None:
        content["mirror"] = jsonable(mirror)
    if landmarks is not None:
        content["landmarks"] = {str(k): [float(x) for x in np.asarray(v, float)] for k, v in dict(landmarks).items()}
    return Plan(KIND, VERSION, content)


def jsonable(obj):
    """``obj`` with numpy arrays and scalars turned into plain JSON lists and numbers."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def plan_document(plan) -> dict:
    """The JSON dict of a plan: a :class:`Plan`, a :class:`~.plan.SurgeryPlan` or the dict itself."""
    return plan.to_json_dict() if hasattr(plan, "to_json_dict") else dict(plan)


def as_plan(plan) -> Plan:
    """``plan`` as a :class:`Plan` envelope (from a Plan, a SurgeryPlan or a JSON dict), unchecked."""
    if isinstance(plan, Plan):
        return plan
    if isinstance(getattr(plan, "document", None), Plan):
        return plan.document
    return Plan.from_json_dict(dict(plan))
