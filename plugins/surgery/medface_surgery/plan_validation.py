"""Checking a surgical plan: the JSON Schema first, then the rules a schema cannot say.

:func:`validate_plan` lists every problem as a readable string; :func:`check_plan` raises
:class:`.plan_schema.PlanError` (a :class:`ParameterError`) with all of them.
"""

from __future__ import annotations

import numpy as np

from medface.data import Plan

from .plan_schema import MAX_ROTATION_DEG, MAX_TRANSLATION_MM, SCHEMA, PlanError, as_plan, plan_document
from .transforms import resolve_point, rotation_angle_deg


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


def _non_finite_problems(doc, where: str = "") -> list[str]:
    """Every NaN or infinite number in the document, by its path (JSON Schema's "number" admits
    them, and a NaN move would otherwise reach the meshes)."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _non_finite_problems(v, f"{where}/{k}" if where else str(k))]
    if isinstance(doc, (list, tuple)):
        return [p for k, v in enumerate(doc) for p in _non_finite_problems(v, f"{where}/{k}")]
    if isinstance(doc, float) and not np.isfinite(doc):
        return [f"{where or '(top level)'}: {doc} is not a finite number"]
    return []


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
    return problems or _composed_move_problems(doc)


def _composed_move_problems(doc: dict) -> list[str]:
    """Segments whose moves, composed in order, go beyond the limits (two 24 mm moves of one
    segment make a 48 mm move). The translation is measured at the segment's anchor landmark
    (else the first move's pivot, else the LPS origin): where the bone actually goes."""
    from .transforms import segment_transforms

    landmarks = doc.get("landmarks", {})
    counts: dict[str, int] = {}
    for m in doc.get("moves", []):
        counts[m["segment"]] = counts.get(m["segment"], 0) + 1
    segments = {s["name"]: s for s in doc.get("segments", [])}
    problems = []
    for name, matrix in sorted(segment_transforms(doc).items()):
        if counts.get(name, 0) < 2:
            continue  # one move is checked on its own above
        at = _reference_point(segments.get(name, {}), doc, landmarks)
        shift = float(np.linalg.norm(matrix[:3, :3] @ at + matrix[:3, 3] - at))
        angle = float(np.degrees(np.arccos(np.clip((np.trace(matrix[:3, :3]) - 1) / 2, -1, 1))))
        if shift > MAX_TRANSLATION_MM:
            problems.append(f"segment '{name}': its {counts[name]} moves compose to a {shift:.1f} mm move, beyond "
                            f"the {MAX_TRANSLATION_MM:g} mm limit")
        if angle > MAX_ROTATION_DEG:
            problems.append(f"segment '{name}': its {counts[name]} moves compose to a {angle:.1f} deg rotation, "
                            f"beyond the {MAX_ROTATION_DEG:g} deg limit")
    return problems


def _reference_point(segment: dict, doc: dict, landmarks: dict) -> np.ndarray:
    """Where a segment's composed move is measured: its anchor, else its first pivot, else 0
    (a landmark id that the plan does not give is passed over)."""
    pivots = [m["pivot"] for m in doc.get("moves", []) if m["segment"] == segment.get("name") and "pivot" in m]
    for point in (segment.get("anchor"), *pivots):
        if point is not None and (not isinstance(point, str) or point in landmarks):
            return resolve_point(point, landmarks, f"segment '{segment.get('name')}'")
    return np.zeros(3)


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
    problems = schema_problems(doc) + _non_finite_problems(doc)
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
