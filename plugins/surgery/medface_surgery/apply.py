"""Applying a plan to bone meshes: cut the bones, collect the segments, move them, mirror.

:func:`apply_plan` is a pure function of the bone meshes and the plan: the inputs are not
modified and the same inputs give the same :class:`PlanResult`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError

from .collisions import new_overlaps
from .cutting import MIN_PIECE_VOLUME_MM3, Piece, cut
from .mirror import mirror_plane, mirror_healthy_side
from .plan_validation import check_plan
from .slicer_planes import cut_plane
from .transforms import resolve_point, segment_transforms, transform_points

#: a landmark farther than this from every moving segment stays where it is (mm)
LANDMARK_REACH_MM = 5.0


@dataclass
class PlanResult:
    """Meshes after the plan: ``segments`` (moved), ``rest`` (uncut remainder per bone, not
    moved), ``transforms`` (4x4 per segment), ``mirror`` (mirrored healthy side, if planned),
    ``kerf_volume`` per bone (mm^3), ``moved_whole`` (bones a segment moves uncut, whole) and
    ``landmarks`` moved with their segments; ``mirror_rms_mm`` and ``mirror_plane``: how well the
    mirror registered and the plane it was reflected across; ``collisions``: bone overlaps the
    moves created (:mod:`.collisions`); ``dropped``: slivers the cuts left, per bone (mm^3);
    ``warnings``: what a surgeon should look at (collisions, slivers); ``segment_bone``: the bone
    each segment was cut from."""

    segments: dict[str, SurfaceMesh] = field(default_factory=dict)
    rest: dict[str, SurfaceMesh] = field(default_factory=dict)
    transforms: dict[str, np.ndarray] = field(default_factory=dict)
    mirror: SurfaceMesh | None = None
    mirror_transform: np.ndarray | None = None
    kerf_volume: dict[str, float] = field(default_factory=dict)
    moved_whole: set[str] = field(default_factory=set)
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    landmark_segment: dict[str, str] = field(default_factory=dict)
    segment_bone: dict[str, str] = field(default_factory=dict)  # the bone each segment was cut from
    mirror_rms_mm: float | None = None
    mirror_plane: object | None = None  # medface.anatomy.cephalometry.SymmetryPlane
    collisions: list = field(default_factory=list)  # collisions.Overlap
    dropped: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def segments_before(self) -> dict[str, SurfaceMesh]:
        """The moving segments in their place before the moves (their transforms undone)."""
        out = {}
        for name, moved in self.segments.items():
            back = np.linalg.inv(self.transforms[name])
            out[name] = SurfaceMesh(transform_points(back, moved.vertices), moved.faces, name=name)
        return out


def merge_meshes(meshes: list[SurfaceMesh], name: str) -> SurfaceMesh:
    """One mesh holding all of ``meshes`` (vertices stacked, faces re-indexed)."""
    offsets = np.cumsum([0] + [m.n_vertices for m in meshes])
    return SurfaceMesh(np.vstack([m.vertices for m in meshes]),
                       np.vstack([m.faces + o for m, o in zip(meshes, offsets)]), name=name)


def _needed_bones(doc: dict, bones: dict[str, SurfaceMesh]) -> list[str]:
    needed = {o["bone"] for o in doc.get("osteotomies", [])} | {s["bone"] for s in doc.get("segments", [])}
    missing = sorted(b for b in needed if b not in bones)
    if missing:
        raise InputError(f"the plan needs bone mesh(es) {', '.join(missing)}; got {', '.join(sorted(bones)) or 'none'}",
                         hint="give one closed mesh per bone the plan names (cranium, mandible)")
    return sorted(needed)


def _cut_bone(doc: dict, bone_name: str, mesh: SurfaceMesh, result: PlanResult) -> list[Piece] | None:
    """The pieces of a bone after its osteotomies (None when the plan does not cut it)."""
    planes = [cut_plane(o) for o in doc.get("osteotomies", []) if o["bone"] == bone_name]
    if not planes:
        return None
    named = SurfaceMesh(mesh.vertices, mesh.faces, name=bone_name, source=mesh.source)
    cut_result = cut(named, planes, float(doc.get("kerf_mm", 1.0)))
    result.kerf_volume[bone_name] = cut_result.kerf_volume
    if cut_result.dropped:
        result.dropped[bone_name] = cut_result.dropped
        result.warnings.append(
            f"the cuts of '{bone_name}' left {len(cut_result.dropped)} loose sliver(s) of "
            f"{sum(cut_result.dropped):.1f} mm^3 in all (each under {MIN_PIECE_VOLUME_MM3:g} mm^3): dropped from the pieces")
    return cut_result.pieces


def _piece_indices(seg: dict, pieces: list[Piece], taken: set[int], plan_landmarks: dict) -> list[int]:
    """The untaken pieces on the segment's side of each of its cuts (the one nearest its anchor)."""
    want = {c["osteotomy"]: (1 if c["side"] == "positive" else -1) for c in seg["cuts"]}
    idx = [k for k, p in enumerate(pieces) if k not in taken
           and all(p.sides[name] == side for name, side in want.items())]
    if idx and seg.get("anchor") is not None:
        anchor = resolve_point(seg["anchor"], plan_landmarks, f"segment '{seg['name']}'")
        dist = [float(np.min(np.linalg.norm(pieces[k].mesh.vertices - anchor, axis=1))) for k in idx]
        idx = [idx[int(np.argmin(dist))]]
    return idx


def _segment_pieces(seg: dict, mesh: SurfaceMesh, pieces, taken: set[int],
                    plan_landmarks: dict) -> tuple[list[int], list[SurfaceMesh]]:
    """(piece indices, meshes) forming one segment: the uncut bone, every piece, or the cut ones."""
    if pieces is None:
        return [], [SurfaceMesh(mesh.vertices, mesh.faces)]
    if not seg.get("cuts"):
        return list(range(len(pieces))), [p.mesh for p in pieces]
    idx = _piece_indices(seg, pieces, taken, plan_landmarks)
    return idx, [pieces[k].mesh for k in idx]


def _apply_to_bone(doc: dict, bone_name: str, mesh: SurfaceMesh, transforms: dict, plan_landmarks: dict,
                   result: PlanResult) -> None:
    pieces = _cut_bone(doc, bone_name, mesh, result)
    taken: set[int] = set()
    for seg in (s for s in doc.get("segments", []) if s["bone"] == bone_name):
        idx, chosen = _segment_pieces(seg, mesh, pieces, taken, plan_landmarks)
        if not chosen:
            raise InputError(f"segment '{seg['name']}' is empty: the cuts {[c['osteotomy'] for c in seg['cuts']]} "
                             f"do not separate such a piece from bone '{bone_name}'",
                             hint="check the planes' sides and sizes (a bounded cut must cross the whole bone)")
        taken.update(idx)
        merged = merge_meshes(chosen, seg["name"])
        m = transforms[seg["name"]]
        result.segments[seg["name"]] = SurfaceMesh(transform_points(m, merged.vertices), merged.faces,
                                                   name=seg["name"])
        result.transforms[seg["name"]] = m
        result.segment_bone[seg["name"]] = bone_name
        if pieces is None:
            result.moved_whole.add(bone_name)
    if pieces is not None:
        rest = [p.mesh for k, p in enumerate(pieces) if k not in taken]
        if rest:
            result.rest[bone_name] = merge_meshes(rest, bone_name)


def _move_landmarks(result: PlanResult, points: dict[str, np.ndarray]) -> None:
    """Each landmark moves with the segment whose surface (before the move) is nearest, within
    :data:`LANDMARK_REACH_MM`, unless the fixed remainder of a bone is nearer still."""
    from scipy.spatial import cKDTree

    trees = {name: cKDTree(mesh.vertices) for name, mesh in result.segments_before().items()}
    for lid, p in sorted(points.items()):
        best, best_d = None, LANDMARK_REACH_MM
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


def apply_plan(plan, bones: dict[str, SurfaceMesh], landmarks=None) -> PlanResult:
    """Cut the bones, collect the segments, move them, mirror the healthy side.

    ``bones`` maps bone names (as in the plan) to closed meshes; ``landmarks`` (default: the
    plan's) are moved with the segment whose surface is nearest (within 5 mm). Pure: the
    inputs are not modified and the same inputs give the same output.
    """
    doc = copy.deepcopy(check_plan(plan).to_json_dict())
    points = {k: np.asarray(v, float) for k, v in (landmarks if landmarks is not None
                                                   else doc.get("landmarks", {})).items()}
    plan_landmarks = {**doc.get("landmarks", {}), **{k: list(v) for k, v in points.items()}}
    result = PlanResult()
    transforms = segment_transforms(doc)
    for bone_name in _needed_bones(doc, bones):
        _apply_to_bone(doc, bone_name, bones[bone_name], transforms, plan_landmarks, result)
    if points:
        _move_landmarks(result, points)
    _measure_collisions(result, bones)
    if doc.get("mirror"):
        _mirror(doc["mirror"], bones, points, result)
    return result


def _pieces_before_after(result: PlanResult, bones: dict[str, SurfaceMesh]) -> tuple[dict, dict]:
    """Every bone piece before and after the moves: segments, uncut rests, bones the plan leaves."""
    before, after = result.segments_before(), dict(result.segments)
    for bone, mesh in bones.items():
        if bone in result.rest:
            before[f"{bone} (rest)"] = after[f"{bone} (rest)"] = result.rest[bone]
        elif bone not in result.kerf_volume and bone not in result.moved_whole:
            before[bone] = after[bone] = mesh
    return before, after


def _measure_collisions(result: PlanResult, bones: dict[str, SurfaceMesh]) -> None:
    moved = {name for name, m in result.transforms.items() if not np.allclose(m, np.eye(4))}
    if not moved:
        return
    before, after = _pieces_before_after(result, bones)
    result.collisions = new_overlaps(before, after, moved)
    result.warnings.extend(o.warning() for o in result.collisions)


def _mirror(mirror: dict, bones: dict[str, SurfaceMesh], points: dict[str, np.ndarray], result: PlanResult) -> None:
    """The plan's ``mirror`` step: the mirrored healthy half, its transform, fit and plane."""
    if mirror["bone"] not in bones:
        raise InputError(f"the plan mirrors bone '{mirror['bone']}' but got bone mesh(es) "
                         f"{', '.join(sorted(bones)) or 'none'}")
    bone = bones[mirror["bone"]]
    plane = mirror_plane(mirror, bone, points)
    result.mirror, result.mirror_transform, result.mirror_rms_mm = mirror_healthy_side(
        bone, plane, mirror["healthy_side"], register=mirror.get("register", "icp") == "icp",
        name=mirror.get("name", "mirror"))
    result.mirror_plane = plane
