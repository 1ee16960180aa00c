"""Checking a surgical plan: the JSON Schema first, then the rules a schema cannot say.

:func:`validate_plan` lists every problem as a readable string; :func:`check_plan` raises
:class:`.plan_schema.PlanError` (a :class:`ParameterError`) with all of them.
"""

from __future__ import annotations

import numpy as np

from medface.data import Plan

from .plan_schema import MAX_ROTATION_DEG, MAX_TRANSLATION_MM, SCHEMA, PlanError, as_plan, plan_document
from .transforms import rotation_angle_deg


def schema_problems(doc: dict) -> list[str]:
    """Where the document breaks the JSON Schema (path: message), in path order."""
    import jsonschema

    from medface.io.textfiles import describe_schema_error

    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.append(f"{where}: {describe_schema_error(err)}")  # "kerf_mm: expected a number, got a list"
    return problems


def _name_problems(doc: dict) -> list[str]:
    problems = []
    segments = doc.get("segments", [])
    for what, items in (("osteotomy", doc.get("osteotomies", [])), ("segment", segments)):
        names = [i["name"] for i in items]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"duplicate {what} name '{dup}' ({names.count(dup)} times)")
    seg_names = {s["name"] for s in segments}
    clash = sorted(seg_names & set(doc.get("bones", {}) or {}) - {s["name"] for s in segments if not s.get("cuts")})
    for name in clash:
        problems.append(f"segment name '{name}' is also a bone name; the uncut rest of a bone is named after it")
    return problems


def _osteotomy_problems(doc: dict) -> list[str]:
    problems = []
    bones = doc.get("bones")
    for o in doc.get("osteotomies", []):
        if np.linalg.norm(o["normal"]) < 1e-9:
            problems.append(f"osteotomy '{o['name']}': the normal is zero {o['normal']}; give a direction")
        if bones is not None and o["bone"] not in bones:
            problems.append(f"osteotomy '{o['name']}': bone '{o['bone']}' is not among the plan's bones "
                            f"({', '.join(sorted(bones))})")
    return problems


def _segment_problems(doc: dict) -> list[str]:
    problems = []
    landmarks = doc.get("landmarks", {})
    by_name = {o["name"]: o for o in doc.get("osteotomies", [])}
    for s in doc.get("segments", []):
        for c in s.get("cuts", []):
            o = by_name.get(c["osteotomy"])
            if o is None:
                problems.append(f"segment '{s['name']}': unknown osteotomy '{c['osteotomy']}' "
                                f"(have: {', '.join(sorted(by_name)) or 'none'})")
            elif o["bone"] != s["bone"]:
                problems.append(f"segment '{s['name']}' is on bone '{s['bone']}' but osteotomy '{o['name']}' "
                                f"cuts bone '{o['bone']}'")
        if isinstance(s.get("anchor"), str) and s["anchor"] not in landmarks:
            problems.append(f"segment '{s['name']}': anchor landmark '{s['anchor']}' is not in the plan's landmarks")
    return problems


def _move_problems(doc: dict) -> list[str]:
    problems = []
    landmarks = doc.get("landmarks", {})
    seg_names = {s["name"] for s in doc.get("segments", [])}
    for k, m in enumerate(doc.get("moves", [])):
        label = f"move {k + 1} (segment '{m['segment']}')"
        if m["segment"] not in seg_names:
            problems.append(f"{label}: unknown segment '{m['segment']}' (have: {', '.join(sorted(seg_names)) or 'none'})")
        t = float(np.linalg.norm(m.get("translation_mm", [0, 0, 0])))
        if t > MAX_TRANSLATION_MM:
            problems.append(f"{label}: translation of {t:.1f} mm exceeds the {MAX_TRANSLATION_MM:g} mm limit "
                            f"({m['translation_mm']})")
        rot = m.get("rotation_deg", [0, 0, 0])
        angle = max(rotation_angle_deg(rot), max(abs(float(a)) for a in rot))
        if angle > MAX_ROTATION_DEG:
            problems.append(f"{label}: rotation of {angle:.1f} deg exceeds the {MAX_ROTATION_DEG:g} deg limit ({rot})")
        if any(abs(float(a)) > 0 for a in rot) and "pivot" not in m:
            problems.append(f"{label}: a rotation needs a pivot point (LPS mm or a landmark id)")
        if isinstance(m.get("pivot"), str) and m["pivot"] not in landmarks:
            problems.append(f"{label}: pivot landmark '{m['pivot']}' is not in the plan's landmarks")
    return problems


def _mirror_problems(doc: dict) -> list[str]:
    mirror = doc.get("mirror")
    if not mirror:
        return []
    plane = mirror.get("plane")
    if plane is not None and np.linalg.norm(plane["normal"]) < 1e-9:
        return ["mirror: the plane normal is zero"]
    if plane is None and mirror.get("plane_method", "landmarks") == "landmarks" and len(doc.get("landmarks", {})) < 4:
        return ["mirror: no plane given and too few landmarks to fit one (needs 2 bilateral pairs)"]
    return []


def validate_plan(plan) -> list[str]:
    """Every problem of a plan (a :class:`Plan`, a SurgeryPlan or its JSON dict), as readable
    strings; [] if valid."""
    doc = plan_document(plan)
    problems = schema_problems(doc)
    if problems:  # the semantic checks below assume the structure is right
        return problems
    return (_name_problems(doc) + _osteotomy_problems(doc) + _segment_problems(doc) + _move_problems(doc)
            + _mirror_problems(doc))


def check_plan(plan) -> Plan:
    """Return the plan as a :class:`Plan` or raise :class:`PlanError` listing every problem."""
    problems = validate_plan(plan)
    if problems:
        raise PlanError(problems, getattr(as_plan_or_none(plan), "source", None))
    return as_plan(plan)


def as_plan_or_none(plan):
    """The plan envelope when there is one (for the file name in messages), else None."""
    return plan if isinstance(plan, Plan) else getattr(plan, "document", None)


def load_plan(path) -> Plan:
    """Read and check a plan file (JSON)."""
    from medface.io import read_plan

    return check_plan(read_plan(path))


def save_plan(plan, path):
    """Check and write a plan file (JSON, UTF-8)."""
    from medface.io import write_plan

    return write_plan(check_plan(plan), path)
