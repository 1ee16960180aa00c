"""Surgical plans: a versioned JSON document (``kind = "medface.surgery.plan"``) and its logic.

A plan holds, in LPS millimetres:

* ``osteotomies``: cut planes (centre, normal, optional rectangle size) on a named bone mesh;
* ``segments``: the bone pieces the cuts create, each named by its bone and the side of each
  plane it lies on (``positive`` = the side the plane normal points to), optionally the piece
  nearest an ``anchor`` landmark;
* ``moves``: rigid moves per segment (see :func:`move_matrix` for the axis convention);
* ``mirror``: the healthy side mirrored across the mid-sagittal plane onto the defect side;
* ``landmarks``: ``{id: [x, y, z]}``.

:func:`validate_plan` lists every problem; :func:`check_plan` raises :class:`PlanError` (a
:class:`ParameterError`) with all of them. :func:`apply_plan` turns bone meshes and a plan into
moved segment meshes: a pure function of its inputs. The format is described with an example
in ``docs/surgery-plans.md``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from medface.anatomy.cephalometry import (
    SymmetryPlane,
    midsagittal_plane,
    reflection_matrix,
)
from medface.data import Plan, SurfaceMesh
from medface.errors import InputError, ParameterError

from .cutting import CutPlane, check_closed, cut, to_manifold

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


# ---------------------------------------------------------------------------------------------
# construction and validation
def new_plan(*, name: str = "", osteotomies=(), segments=(), moves=(), mirror=None, landmarks=None,
             kerf_mm: float = 1.0, procedure: str | None = None, parameters: dict | None = None) -> Plan:
    """A plan envelope with plain-JSON content (lists, not numpy arrays)."""
    content = {"name": name, "coordinate_system": "LPS", "units": "mm", "kerf_mm": float(kerf_mm),
               "osteotomies": [_jsonable(o) for o in osteotomies], "segments": [_jsonable(s) for s in segments],
               "moves": [_jsonable(m) for m in moves]}
    if procedure:
        content["procedure"] = procedure
    if parameters:
        content["parameters"] = _jsonable(parameters)
    if mirror is not None:
        content["mirror"] = _jsonable(mirror)
    if landmarks is not None:
        content["landmarks"] = {str(k): [float(x) for x in np.asarray(v, float)] for k, v in dict(landmarks).items()}
    return Plan(KIND, VERSION, content)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _doc(plan) -> dict:
    return plan.to_json_dict() if isinstance(plan, Plan) else dict(plan)


def _rotation_angle_deg(rotation_deg) -> float:
    r = rotation_matrix(rotation_deg)
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def validate_plan(plan) -> list[str]:
    """Every problem of a plan (a :class:`Plan` or its JSON dict), as readable strings; [] if valid."""
    import jsonschema

    doc = _doc(plan)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.append(f"{where}: {err.message}")
    if problems:  # the semantic checks below assume the structure is right
        return problems
    landmarks = doc.get("landmarks", {})
    osteotomies = doc.get("osteotomies", [])
    segments = doc.get("segments", [])
    for what, items in (("osteotomy", osteotomies), ("segment", segments)):
        names = [i["name"] for i in items]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"duplicate {what} name '{dup}' ({names.count(dup)} times)")
    seg_names = {s["name"] for s in segments}
    clash = sorted(seg_names & set(doc.get("bones", {}) or {}) - {s["name"] for s in segments if not s.get("cuts")})
    for name in clash:
        problems.append(f"segment name '{name}' is also a bone name; the uncut rest of a bone is named after it")
    by_name = {o["name"]: o for o in osteotomies}
    bones = doc.get("bones")
    for o in osteotomies:
        if np.linalg.norm(o["normal"]) < 1e-9:
            problems.append(f"osteotomy '{o['name']}': the normal is zero {o['normal']}; give a direction")
        if bones is not None and o["bone"] not in bones:
            problems.append(f"osteotomy '{o['name']}': bone '{o['bone']}' is not among the plan's bones "
                            f"({', '.join(sorted(bones))})")
    for s in segments:
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
    for k, m in enumerate(doc.get("moves", [])):
        label = f"move {k + 1} (segment '{m['segment']}')"
        if m["segment"] not in seg_names:
            problems.append(f"{label}: unknown segment '{m['segment']}' (have: {', '.join(sorted(seg_names)) or 'none'})")
        t = float(np.linalg.norm(m.get("translation_mm", [0, 0, 0])))
        if t > MAX_TRANSLATION_MM:
            problems.append(f"{label}: translation of {t:.1f} mm exceeds the {MAX_TRANSLATION_MM:g} mm limit "
                            f"({m['translation_mm']})")
        rot = m.get("rotation_deg", [0, 0, 0])
        angle = _rotation_angle_deg(rot)
        if angle > MAX_ROTATION_DEG or max(abs(float(a)) for a in rot) > MAX_ROTATION_DEG:
            problems.append(f"{label}: rotation of {max(angle, max(abs(float(a)) for a in rot)):.1f} deg exceeds "
                            f"the {MAX_ROTATION_DEG:g} deg limit ({rot})")
        if any(abs(float(a)) > 0 for a in rot) and "pivot" not in m:
            problems.append(f"{label}: a rotation needs a pivot point (LPS mm or a landmark id)")
        if isinstance(m.get("pivot"), str) and m["pivot"] not in landmarks:
            problems.append(f"{label}: pivot landmark '{m['pivot']}' is not in the plan's landmarks")
    mirror = doc.get("mirror")
    if mirror:
        plane = mirror.get("plane")
        if plane is not None and np.linalg.norm(plane["normal"]) < 1e-9:
            problems.append("mirror: the plane normal is zero")
        if plane is None and mirror.get("plane_method", "landmarks") == "landmarks" and len(landmarks) < 4:
            problems.append("mirror: no plane given and too few landmarks to fit one (needs 2 bilateral pairs)")
    return problems


def check_plan(plan) -> Plan:
    """Return the plan as a :class:`Plan` or raise :class:`PlanError` listing every problem."""
    problems = validate_plan(plan)
    if problems:
        raise PlanError(problems, getattr(plan, "source", None))
    return plan if isinstance(plan, Plan) else Plan.from_json_dict(plan)


def load_plan(path) -> Plan:
    """Read and check a plan file (JSON)."""
    from medface.io import read_plan

    return check_plan(read_plan(path))


def save_plan(plan: Plan, path):
    """Check and write a plan file (JSON, UTF-8)."""
    from medface.io import write_plan

    return write_plan(check_plan(plan), path)


# ---------------------------------------------------------------------------------------------
# rigid moves
def rotation_matrix(rotation_deg) -> np.ndarray:
    """R = Rz(c) @ Ry(b) @ Rx(a) for ``rotation_deg = [a, b, c]``.

    Rotations about the fixed LPS axes x (patient's left), y (posterior), z (superior), applied
    in the order x, then y, then z; positive by the right-hand rule. With the head upright:
    + x (pitch) moves anterior points down (chin down, "clockwise" in a right-facing profile);
    + y (roll) moves inferior points towards the patient's right; + z (yaw) turns anterior
    points towards the patient's left.
    """
    a, b, c = np.radians(np.asarray(rotation_deg, float).reshape(3))
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _point(value, landmarks, what: str) -> np.ndarray:
    if isinstance(value, str):
        if not landmarks or value not in landmarks:
            raise InputError(f"{what}: landmark '{value}' is not available")
        return np.asarray(landmarks[value], float)
    return np.asarray(value, float)


def move_matrix(move: dict, landmarks=None) -> np.ndarray:
    """4x4 homogeneous matrix of a move: rotate about ``pivot``, then translate.

    ``M = T(translation_mm) @ T(pivot) @ R(rotation_deg) @ T(-pivot)``; see :func:`rotation_matrix`.
    ``pivot`` may be a landmark id (looked up in ``landmarks``). Raises :class:`ParameterError`
    for a move beyond the plausibility limits (30 mm, 45 deg).
    """
    t = np.asarray(move.get("translation_mm", [0, 0, 0]), float).reshape(3)
    rot = np.asarray(move.get("rotation_deg", [0, 0, 0]), float).reshape(3)
    if np.linalg.norm(t) > MAX_TRANSLATION_MM:
        raise ParameterError(f"move of segment '{move.get('segment')}': translation of {np.linalg.norm(t):.1f} mm "
                             f"exceeds the {MAX_TRANSLATION_MM:g} mm limit", parameter="translation_mm")
    angle = max(_rotation_angle_deg(rot), float(np.abs(rot).max()))
    if angle > MAX_ROTATION_DEG:
        raise ParameterError(f"move of segment '{move.get('segment')}': rotation of {angle:.1f} deg exceeds the "
                             f"{MAX_ROTATION_DEG:g} deg limit", parameter="rotation_deg")
    pivot = _point(move.get("pivot", [0, 0, 0]), landmarks, f"move of segment '{move.get('segment')}'")
    m = np.eye(4)
    r = rotation_matrix(rot)
    m[:3, :3] = r
    m[:3, 3] = pivot - r @ pivot + t
    return m


def transform_points(matrix: np.ndarray, points) -> np.ndarray:
    p = np.asarray(points, float)
    return p @ matrix[:3, :3].T + matrix[:3, 3]


def segment_transforms(plan) -> dict[str, np.ndarray]:
    """The composed 4x4 transform of every segment (moves applied in the order listed)."""
    doc = _doc(plan)
    landmarks = doc.get("landmarks", {})
    out = {s["name"]: np.eye(4) for s in doc.get("segments", [])}
    for move in doc.get("moves", []):
        out[move["segment"]] = move_matrix(move, landmarks) @ out[move["segment"]]
    return out


# ---------------------------------------------------------------------------------------------
# osteotomy planes and 3D Slicer markups planes
def cut_plane(osteotomy: dict) -> CutPlane:
    size = osteotomy.get("size_mm")
    return CutPlane(osteotomy["name"], osteotomy["centre"], osteotomy["normal"],
                    tuple(size) if size else None, osteotomy.get("u_axis"))


def plane_to_slicer(osteotomy: dict) -> dict:
    """A 3D Slicer markups document (schema v1.0.3, LPS) holding one "Plane" node."""
    from medface.io.markups import MARKUPS_SCHEMA

    plane = cut_plane(osteotomy)
    u, v, n = plane.basis()
    size = list(plane.size) if plane.size else [100.0, 100.0]
    object_to_base = np.eye(4)
    object_to_base[:3, 0], object_to_base[:3, 1], object_to_base[:3, 2] = u, v, n
    object_to_base[:3, 3] = plane.centre
    centre = [float(x) for x in plane.centre]
    return {"@schema": MARKUPS_SCHEMA, "markups": [{
        "type": "Plane", "coordinateSystem": "LPS", "coordinateUnits": "mm", "locked": False,
        "name": plane.name, "labelFormat": "%N-%d",
        "controlPoints": [{"id": "1", "label": plane.name, "description": osteotomy.get("description", ""),
                           "associatedNodeID": "", "position": centre,
                           "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
                           "selected": True, "locked": False, "visibility": True, "positionStatus": "defined"}],
        "measurements": [],
        "planeType": "pointNormal", "sizeMode": "absolute" if plane.size else "auto", "autoScalingFactor": 1.0,
        "center": centre, "normal": [float(x) for x in n], "size": size,
        "planeBounds": [-size[0] / 2, size[0] / 2, -size[1] / 2, size[1] / 2],
        "objectToBase": [float(x) for x in object_to_base.ravel()],
        "baseToNode": [float(x) for x in np.eye(4).ravel()],
        "orientation": [float(x) for x in np.column_stack([u, v, n]).ravel()],
        "medfaceBone": osteotomy.get("bone", ""),
    }]}


def plane_from_slicer(doc: dict, *, bone: str | None = None, name: str | None = None) -> dict:
    """An osteotomy dict from a 3D Slicer markups document's first "Plane" node (LPS or RAS)."""
    planes = [m for m in doc.get("markups", []) if m.get("type") == "Plane"] if isinstance(doc, dict) else []
    if not planes:
        raise InputError("the markups document holds no \"Plane\" node")
    m = planes[0]
    flip = np.array([-1.0, -1.0, 1.0]) if m.get("coordinateSystem", "LPS") == "RAS" else np.ones(3)
    base_to_node = np.asarray(m.get("baseToNode", np.eye(4).ravel()), float).reshape(4, 4)
    if "objectToBase" in m:
        o2n = base_to_node @ np.asarray(m["objectToBase"], float).reshape(4, 4)
        u, normal, centre = o2n[:3, 0], o2n[:3, 2], o2n[:3, 3]
    else:
        u = None
        normal = np.asarray(m.get("normal"), float)
        centre = np.asarray(m.get("center") or m["controlPoints"][0]["position"], float)
    if "normal" in m and "objectToBase" not in m:
        normal = np.asarray(m["normal"], float)
    size = m.get("size") if m.get("sizeMode") == "absolute" else None
    out = {"name": name or m.get("name") or "plane", "bone": bone or m.get("medfaceBone") or "bone",
           "centre": [float(x) for x in centre * flip], "normal": [float(x) for x in normal * flip]}
    if size:
        out["size_mm"] = [float(size[0]), float(size[1])]
    if u is not None:
        out["u_axis"] = [float(x) for x in u * flip]
    return out


# ---------------------------------------------------------------------------------------------
# applying a plan
@dataclass
class PlanResult:
    """Meshes after the plan: ``segments`` (moved), ``rest`` (uncut remainder per bone, not
    moved), ``transforms`` (4x4 per segment), ``mirror`` (mirrored healthy side, if planned),
    ``kerf_volume`` per bone (mm^3) and ``landmarks`` moved with their segments."""

    segments: dict[str, SurfaceMesh] = field(default_factory=dict)
    rest: dict[str, SurfaceMesh] = field(default_factory=dict)
    transforms: dict[str, np.ndarray] = field(default_factory=dict)
    mirror: SurfaceMesh | None = None
    mirror_transform: np.ndarray | None = None
    kerf_volume: dict[str, float] = field(default_factory=dict)
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    landmark_segment: dict[str, str] = field(default_factory=dict)


def _merge(meshes: list[SurfaceMesh], name: str) -> SurfaceMesh:
    offsets = np.cumsum([0] + [m.n_vertices for m in meshes])
    return SurfaceMesh(np.vstack([m.vertices for m in meshes]),
                       np.vstack([m.faces + o for m, o in zip(meshes, offsets)]), name=name)


def apply_plan(plan, bones: dict[str, SurfaceMesh], landmarks=None) -> PlanResult:
    """Cut the bones, collect the segments, move them, mirror the healthy side.

    ``bones`` maps bone names (as in the plan) to closed meshes; ``landmarks`` (default: the
    plan's) are moved with the segment whose surface is nearest (within 5 mm). Pure: the
    inputs are not modified and the same inputs give the same output.
    """
    plan = check_plan(plan)
    doc = copy.deepcopy(plan.to_json_dict())
    points = {k: np.asarray(v, float) for k, v in (landmarks if landmarks is not None
                                                   else doc.get("landmarks", {})).items()}
    plan_landmarks = {**doc.get("landmarks", {}), **{k: list(v) for k, v in points.items()}}
    kerf = float(doc.get("kerf_mm", 1.0))
    result = PlanResult()
    transforms = segment_transforms(doc)
    segments = doc.get("segments", [])
    needed = {o["bone"] for o in doc.get("osteotomies", [])} | {s["bone"] for s in segments}
    missing = sorted(b for b in needed if b not in bones)
    if missing:
        raise InputError(f"the plan needs bone mesh(es) {', '.join(missing)}; got {', '.join(sorted(bones)) or 'none'}")
    for bone_name in sorted(needed):
        mesh = bones[bone_name]
        planes = [cut_plane(o) for o in doc.get("osteotomies", []) if o["bone"] == bone_name]
        if planes:
            mesh = SurfaceMesh(mesh.vertices, mesh.faces, name=bone_name, source=mesh.source)
            cut_result = cut(mesh, planes, kerf)
            pieces = cut_result.pieces
            result.kerf_volume[bone_name] = cut_result.kerf_volume
        else:
            pieces = None
        taken: set[int] = set()
        for seg in (s for s in segments if s["bone"] == bone_name):
            if pieces is None or not seg.get("cuts"):
                chosen = [SurfaceMesh(mesh.vertices, mesh.faces)] if pieces is None else [p.mesh for p in pieces]
                idx = list(range(len(pieces))) if pieces is not None else []
            else:
                want = {c["osteotomy"]: (1 if c["side"] == "positive" else -1) for c in seg["cuts"]}
                idx = [k for k, p in enumerate(pieces) if k not in taken
                       and all(p.sides[name] == side for name, side in want.items())]
                if idx and seg.get("anchor") is not None:
                    anchor = _point(seg["anchor"], plan_landmarks, f"segment '{seg['name']}'")
                    dist = [float(np.min(np.linalg.norm(pieces[k].mesh.vertices - anchor, axis=1))) for k in idx]
                    idx = [idx[int(np.argmin(dist))]]
                chosen = [pieces[k].mesh for k in idx]
            if not chosen:
                raise InputError(f"segment '{seg['name']}' is empty: the cuts {[c['osteotomy'] for c in seg['cuts']]} "
                                 f"do not separate such a piece from bone '{bone_name}'",
                                 hint="check the planes' sides and sizes (a bounded cut must cross the whole bone)")
            taken.update(idx)
            merged = _merge(chosen, seg["name"])
            m = transforms[seg["name"]]
            result.segments[seg["name"]] = SurfaceMesh(transform_points(m, merged.vertices), merged.faces,
                                                       name=seg["name"])
            result.transforms[seg["name"]] = m
        if pieces is not None:
            rest = [p.mesh for k, p in enumerate(pieces) if k not in taken]
            if rest:
                result.rest[bone_name] = _merge(rest, bone_name)
    if points:
        _move_landmarks(result, points, segments, bones)
    mirror = doc.get("mirror")
    if mirror:
        plane = mirror.get("plane")
        if plane is not None:
            sym = SymmetryPlane(np.asarray(plane["centre"], float),
                                np.asarray(plane["normal"], float) / np.linalg.norm(plane["normal"]))
        elif mirror.get("plane_method", "landmarks") == "surface":
            initial = midsagittal_plane(points) if len(points) >= 4 else None
            sym = symmetry_plane_from_surface(bones[mirror["bone"]], initial)
        else:
            sym = midsagittal_plane(points)
        result.mirror, result.mirror_transform, _ = mirror_healthy_side(
            bones[mirror["bone"]], sym, mirror["healthy_side"], register=mirror.get("register", "icp") == "icp",
            name=mirror.get("name", "mirror"))
    return result


def _move_landmarks(result: PlanResult, points: dict, segments: list, bones: dict) -> None:
    from scipy.spatial import cKDTree

    before = {name: mesh for name, mesh in result.segments.items()}
    trees = {}
    for name, mesh in before.items():  # segment vertices back in the planned-before position
        inv = np.linalg.inv(result.transforms[name])
        trees[name] = cKDTree(transform_points(inv, mesh.vertices))
    for lid, p in sorted(points.items()):
        best, best_d = None, 5.0
        for name in sorted(trees):
            d, _ = trees[name].query(p)
            if d < best_d:
                best, best_d = name, d
        if best is not None:
            for rest in result.rest.values():  # a landmark nearer the fixed remainder stays
                d = float(np.min(np.linalg.norm(rest.vertices - p, axis=1)))
                if d < best_d - 1e-9:
                    best = None
                    break
        result.landmark_segment[lid] = best or ""
        result.landmarks[lid] = transform_points(result.transforms[best], p) if best else p.copy()


# ---------------------------------------------------------------------------------------------
# mirroring
def _sample(points: np.ndarray, n: int) -> np.ndarray:
    step = max(1, len(points) // n)
    return points[::step]


def symmetry_plane_from_surface(mesh: SurfaceMesh, initial: SymmetryPlane | None = None,
                                samples: int = 3000, iterations: int = 30) -> SymmetryPlane:
    """The mid-sagittal plane of a surface from its own symmetry.

    The surface is mirrored across an initial plane (default: the x = const LPS plane through
    the vertex centroid), the mirror image registered back onto the surface by rigid ICP; each
    sample point p and its image S(p) then straddle the symmetry plane, whose normal is the
    principal direction of S(p) - p and whose centre is the mean of the midpoints.
    """
    import trimesh

    v = mesh.vertices
    if initial is None:
        initial = SymmetryPlane(v.mean(axis=0), np.array([1.0, 0.0, 0.0]))
    p = _sample(v, samples)
    mirrored = initial.reflect(p)
    matrix, _, _ = trimesh.registration.icp(mirrored, _sample(v, 4 * samples), max_iterations=iterations,
                                            reflection=False, scale=False)
    images = transform_points(matrix, mirrored)
    diffs = images - p
    keep = np.linalg.norm(diffs, axis=1) > 1.0  # points near the plane give no direction
    units = diffs[keep] / np.linalg.norm(diffs[keep], axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(units.T @ units)
    normal = vecs[:, -1]
    if normal @ initial.normal < 0:
        normal = -normal
    centre = (0.5 * (images + p)).mean(axis=0)
    return SymmetryPlane(centre, normal)


def mirror_healthy_side(mesh: SurfaceMesh, plane: SymmetryPlane, healthy_side: str = "left",
                        register: bool = True, name: str = "mirror", iterations: int = 40):
    """The healthy half mirrored across ``plane`` and (optionally) registered onto the defect side.

    Returns ``(mesh, matrix, rms_mm)``: the mirrored half (closed when the input is closed),
    the 4x4 transform applied to the original healthy half (reflection, then the rigid ICP
    correction) and the ICP's RMS distance. Outward winding is kept (faces reversed).
    """
    import trimesh

    if healthy_side not in ("left", "right"):
        raise ParameterError(f"healthy_side must be 'left' or 'right', got {healthy_side!r}", parameter="healthy_side")
    towards = plane.normal if healthy_side == "left" else -plane.normal
    try:
        closed = check_closed(mesh)
        half = to_manifold(closed).trim_by_plane(towards, float(towards @ plane.centre)).to_mesh64()
        hv, hf = np.asarray(half.vert_properties, float)[:, :3], np.asarray(half.tri_verts, np.int64)
    except InputError:  # an open surface: keep the healthy side's triangles
        d = (mesh.vertices - plane.centre) @ towards
        keep = (d[mesh.faces] > 0).all(axis=1)
        used = np.unique(mesh.faces[keep])
        remap = -np.ones(mesh.n_vertices, np.int64)
        remap[used] = np.arange(len(used))
        hv, hf = mesh.vertices[used], remap[mesh.faces[keep]]
    if len(hf) == 0:
        raise InputError(f"no part of the mesh lies on the {healthy_side} side of the mid-sagittal plane")
    reflect = reflection_matrix(plane.centre, plane.normal)
    mirrored = transform_points(reflect, hv)
    correction, rms = np.eye(4), 0.0
    if register:
        d = (mesh.vertices - plane.centre) @ towards
        target = mesh.vertices[d < 0]
        if len(target) < 10:
            raise InputError("the defect side has too few vertices to register the mirror onto")
        correction, _, rms = trimesh.registration.icp(_sample(mirrored, 4000), _sample(target, 16000),
                                                      max_iterations=iterations, reflection=False, scale=False)
        rms = float(np.sqrt(rms))
    matrix = correction @ reflect
    out = SurfaceMesh(transform_points(matrix, hv), hf[:, ::-1], name=name)
    return out, matrix, rms
