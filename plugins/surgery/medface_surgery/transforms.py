"""Rigid moves of bone segments: rotations, 4x4 move matrices and their composition per segment."""

from __future__ import annotations

import numpy as np

from medface.errors import InputError, ParameterError

from .plan_schema import MAX_ROTATION_DEG, MAX_TRANSLATION_MM, plan_document


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


def rotation_angle_deg(rotation_deg) -> float:
    """The angle (degrees) of the single rotation that :func:`rotation_matrix` composes."""
    r = rotation_matrix(rotation_deg)
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def resolve_point(value, landmarks, what: str) -> np.ndarray:
    """A point given as LPS coordinates or as a landmark id looked up in ``landmarks``."""
    if isinstance(value, str):
        if not landmarks or value not in landmarks:
            raise InputError(f"{what}: landmark '{value}' is not available",
                             hint="add the landmark to the plan's landmarks or give the point in LPS mm")
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
    angle = max(rotation_angle_deg(rot), float(np.abs(rot).max()))
    if angle > MAX_ROTATION_DEG:
        raise ParameterError(f"move of segment '{move.get('segment')}': rotation of {angle:.1f} deg exceeds the "
                             f"{MAX_ROTATION_DEG:g} deg limit", parameter="rotation_deg")
    pivot = resolve_point(move.get("pivot", [0, 0, 0]), landmarks, f"move of segment '{move.get('segment')}'")
    m = np.eye(4)
    r = rotation_matrix(rot)
    m[:3, :3] = r
    m[:3, 3] = pivot - r @ pivot + t
    return m


def transform_points(matrix: np.ndarray, points) -> np.ndarray:
    """Points (..., 3) mapped by a 4x4 homogeneous matrix."""
    p = np.asarray(points, float)
    return p @ matrix[:3, :3].T + matrix[:3, 3]


def segment_transforms(plan) -> dict[str, np.ndarray]:
    """The composed 4x4 transform of every segment (moves applied in the order listed)."""
    doc = plan_document(plan)
    landmarks = doc.get("landmarks", {})
    out = {s["name"]: np.eye(4) for s in doc.get("segments", [])}
    for move in doc.get("moves", []):
        out[move["segment"]] = move_matrix(move, landmarks) @ out[move["segment"]]
    return out


def segment_moves(plan_or_moves) -> dict[str, np.ndarray]:
    """Segment name -> 4x4 move from a plan (Plan, SurgeryPlan or its JSON dict), an applied plan
    (anything with ``transforms``, like :class:`.apply.PlanResult`) or such a dict itself."""
    if isinstance(getattr(plan_or_moves, "transforms", None), dict):
        return dict(plan_or_moves.transforms)
    if hasattr(plan_or_moves, "to_json_dict") or (isinstance(plan_or_moves, dict) and "kind" in plan_or_moves):
        return segment_transforms(plan_or_moves)
    if isinstance(plan_or_moves, dict):
        return dict(plan_or_moves)
    raise ParameterError(f"moves must be a plan or a dict of segment name -> 4x4 matrix, got "
                         f"{type(plan_or_moves).__name__}", parameter="moves")
