"""Fibula free-flap planning for a segmental mandible defect (the job of 3D Slicer's
BoneReconstructionPlanner, done here with medface's own code).

Given two **resection planes** on the mandible (the defect lies between them) and a **fibula**
(any closed fibula surface, e.g. from a leg CT, or :func:`medface.phantom.fibula.template_fibula`),
:func:`plan_fibula`:

1. cuts the mandible along both planes with the saw's kerf (:func:`.cutting.cut`): the stumps
   and the resected piece;
2. traces the **contour** to rebuild between the stump faces: sections of the original mandible
   (or, ``contour="mirror"``, of the healthy side mirrored onto the defect side by
   :func:`.mirror.mirror_healthy_side`, when the defect side is diseased) across planes
   interpolated between the two resection planes; the fibula's centre follows each section at
   half the fibula's height above the **inferior border** and midway between the buccal and
   lingual surfaces there (``alignment="inferior"``, the usual choice for contour), or at the
   section's centroid (``"centroid"``);
3. chooses the **segments**: the fewest straight segments (at most ``max_segments``, none shorter
   than ``min_segment_mm``) whose chords stay within ``max_deviation_mm`` of the contour (dynamic
   programming over breakpoints on the contour, minimising the largest deviation), or the best
   fit when none does;
4. places a **fibula piece** on each chord: the fibula's axis along the chord, its lateral surface
   facing buccally; each end is cut by the plane bisecting the junction's angle (a closing-wedge
   osteotomy, so adjacent pieces meet face to face) or parallel to the stump face at the ends;
5. lays the pieces out on the fibula, from ``keep_distal_mm`` above the lateral malleolus upwards,
   ``2 * kerf + spacing_mm`` apart at their closest, and never nearer than ``keep_proximal_mm``
   to the head;
6. reports the **segment table** (lengths centre to centre, end-cut angles, where on the fibula),
   the **junctions** (wedge angles, measured gaps and bone contact), and the **distance** of the
   reconstructed bone surface to the original mandible surface in the defect;
7. makes the **cutting guides**: the mandible resection guide (slots on both planes) and the
   fibula guide (a slot on every fibula cut, offset by half a kerf into the waste bone so the
   piece keeps its planned length) with :func:`.guides.cutting_guide`.

Defaults: ``min_segment_mm`` 20 (segments under ~2 cm are commonly avoided for the blood supply of
the bone through its periosteum; the figure usually quoted in fibula-flap reviews, e.g. after
Hidalgo, Plast Reconstr Surg 1989;84:71-79; **assumption**, not re-read); ``max_segments`` 4
(**assumption**: one to four segments rebuild most mandible defects); ``keep_distal_mm`` 75 (BRP's
``safeDistanceToFibulaTip_mm``; 6-7 cm of distal fibula are commonly kept for the ankle's
stability), ``keep_proximal_mm`` 60 (**assumption**: the peroneal nerve winds round the neck);
``spacing_mm`` 1.5 (BRP's ``additionalBetweenSpaceOfFibulaPlanes_mm``); ``max_deviation_mm`` 2
(**assumption**). Geometry only: no vascular pedicle, no plates, no bone healing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError, ParameterError

from .cutting import CutPlane, check_closed, cut, from_manifold, to_manifold
from .printable import check_parameter

MIN_SEGMENT_MM = 20.0
MAX_SEGMENTS = 4
MAX_DEVIATION_MM = 2.0
KEEP_DISTAL_MM = 75.0
KEEP_PROXIMAL_MM = 60.0
SPACING_MM = 1.5
CONTOUR_STEP_MM = 1.0


# ---------------------------------------------------------------------------------------------
# sections
def _plane_frame(normal, up) -> np.ndarray:
    """Rows (b, e, n): e = ``up`` made perpendicular to n, b = e x n ... a right-handed frame."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    e = np.asarray(up, float) - (np.asarray(up, float) @ n) * n
    if np.linalg.norm(e) < 1e-6:
        raise InputError("a section plane is horizontal: the resection planes must cross the mandible's body")
    e /= np.linalg.norm(e)
    return np.vstack([np.cross(e, n), e, n])


def _polygon_stats(polys) -> tuple[float, np.ndarray]:
    area, c = 0.0, np.zeros(2)
    for p in polys:
        p = np.asarray(p, float)
        x, y = p[:, 0], p[:, 1]
        xn, yn = np.roll(x, -1), np.roll(y, -1)
        cross = x * yn - xn * y
        area += cross.sum() / 2
        c += np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / 6
    return area, (c / area if abs(area) > 1e-9 else np.zeros(2))


def section(solid, centre, normal, up):
    """The section of a manifold3d solid by a plane, as (polygons in the plane's (b, e) mm
    coordinates about ``centre``, the 3x3 rows of that frame): only the connected piece nearest
    the centre."""
    rows = _plane_frame(normal, up)
    m = np.column_stack([rows, -rows @ np.asarray(centre, float)])
    cs = solid.transform(m).slice(0.0)
    best, best_d = None, np.inf
    for part in cs.decompose():
        polys = part.to_polygons()
        area, c = _polygon_stats(polys)
        if area <= 1.0:
            continue
        d = float(np.linalg.norm(c))
        if d < best_d:
            best, best_d = polys, d
    return best, rows


def _contour_point(polys, rows, centre, alignment: str, half_height: float) -> np.ndarray:
    """The fibula's centre in one section (LPS)."""
    if alignment == "centroid":
        _, c = _polygon_stats(polys)
        return np.asarray(centre) + c[0] * rows[0] + c[1] * rows[1]
    pts = np.vstack(polys)
    level = float(pts[:, 1].min()) + half_height
    xs = []
    for p in polys:  # the section's extent along b at that height: crossings of the polygon edges
        p = np.asarray(p, float)
        q = np.roll(p, -1, axis=0)
        cross = (p[:, 1] - level) * (q[:, 1] - level) <= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (level - p[:, 1]) / (q[:, 1] - p[:, 1])
        t = np.where(np.isfinite(t), t, 0.0)
        xs.extend((p[:, 0] + t * (q[:, 0] - p[:, 0]))[cross])
    b = 0.5 * (min(xs) + max(xs)) if xs else float(_polygon_stats(polys)[1][0])
    return np.asarray(centre) + b * rows[0] + level * rows[1]


def contour_between(source: SurfaceMesh, plane_a: CutPlane, plane_b: CutPlane, up, *, alignment: str = "inferior",
                    half_height: float = 7.0, step_mm: float = CONTOUR_STEP_MM) -> np.ndarray:
    """The contour the fibula follows from ``plane_a`` to ``plane_b`` (normals pointing into the
    defect): one point per section (about every ``step_mm``), on the planes at both ends."""
    solid = to_manifold(check_closed(source, "contour mesh"))
    na, nb = plane_a.normal, -plane_b.normal  # both along the way from a to b
    n = max(8, int(np.ceil(np.linalg.norm(plane_b.centre - plane_a.centre) / step_mm)) + 1)
    points = []
    for s in np.linspace(0.0, 1.0, n):
        normal = (1 - s) * na + s * nb
        normal /= np.linalg.norm(normal)
        centre = (1 - s) * plane_a.centre + s * plane_b.centre
        if s in (0.0, 1.0):  # exactly on the end planes
            plane = plane_a if s == 0 else plane_b
            centre, normal = plane.centre, (na if s == 0 else nb)
        polys, rows = section(solid, centre, normal, up)
        if polys is None:
            raise InputError(f"the contour mesh has no bone at {s:.0%} of the way between the resection planes",
                             hint="check that the planes cross the mandible (and the mirror covers the defect)")
        p = _contour_point(polys, rows, centre, alignment, half_height)
        # keep the point on its section plane (it is, by construction) and on the end planes
        points.append(p)
    return np.asarray(points)


# ---------------------------------------------------------------------------------------------
# segments along the contour
def _deviation(q: np.ndarray, i: int, j: int) -> float:
    a, b = q[i], q[j]
    ab = b - a
    t = np.clip(((q[i:j + 1] - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
    return float(np.max(np.linalg.norm(q[i:j + 1] - (a + t[:, None] * ab), axis=1)))


def fit_segments(contour: np.ndarray, n_segments: int, min_length: float) -> tuple[list[int], float]:
    """Breakpoints (indices into ``contour``, first and last included) of ``n_segments`` chords
    no shorter than ``min_length`` that minimise the largest deviation from the contour, and that
    deviation (mm); ``([], inf)`` when no such chords exist."""
    m = len(contour)
    dist = np.linalg.norm(contour[:, None] - contour[None], axis=2)
    dev = np.full((m, m), np.inf)
    for i in range(m):
        for j in range(i + 1, m):
            if dist[i, j] >= min_length - 1e-9:
                dev[i, j] = _deviation(contour, i, j)
    cost = np.full((n_segments + 1, m), np.inf)
    back = np.zeros((n_segments + 1, m), int)
    cost[0, 0] = 0.0
    for k in range(1, n_segments + 1):
        for j in range(1, m):
            c = np.maximum(cost[k - 1, :j], dev[:j, j])
            p = int(np.argmin(c))
            cost[k, j], back[k, j] = c[p], p
    if not np.isfinite(cost[n_segments, m - 1]):
        return [], np.inf
    idx = [m - 1]
    for k in range(n_segments, 0, -1):
        idx.append(back[k, idx[-1]])
    return idx[::-1], float(cost[n_segments, m - 1])


def choose_segments(contour: np.ndarray, min_length: float, max_segments: int, max_deviation: float):
    """(breakpoints, deviation, n, note): the fewest chords within ``max_deviation``, else the best."""
    length = float(np.sum(np.linalg.norm(np.diff(contour, axis=0), axis=1)))
    if length < min_length:
        return [0, len(contour) - 1], _deviation(contour, 0, len(contour) - 1), 1, (
            f"the defect ({length:.1f} mm along the contour) is shorter than the minimum segment length "
            f"{min_length:g} mm: one segment of {np.linalg.norm(contour[-1] - contour[0]):.1f} mm")
    best = None
    for n in range(1, max_segments + 1):
        idx, worst = fit_segments(contour, n, min_length)
        if not idx:
            break
        if best is None or worst < best[1] - 1e-9:
            best = (idx, worst, n)
        if worst <= max_deviation:
            return idx, worst, n, ""
    if best is None:
        return [0, len(contour) - 1], _deviation(contour, 0, len(contour) - 1), 1, (
            f"the defect's chord ({np.linalg.norm(contour[-1] - contour[0]):.1f} mm) is shorter than the minimum "
            f"segment length {min_length:g} mm: one segment")
    idx, worst, n = best
    return idx, worst, n, (f"no plan of at most {max_segments} segments of >= {min_length:g} mm follows the contour "
                           f"within {max_deviation:g} mm: the best ({n} segments) deviates {worst:.1f} mm")


# ---------------------------------------------------------------------------------------------
@dataclass
class FibulaAxis:
    """The fibula's straight axis: ``origin`` + s * ``axis`` (s in mm, up the leg), its lateral
    direction, and the usable range of s."""

    origin: np.ndarray
    axis: np.ndarray
    lateral: np.ndarray
    s_min: float
    s_max: float
    usable: tuple[float, float]
    half_height: float
    max_radius: float


def fibula_axis(fibula: SurfaceMesh, *, side: str = "left", keep_distal_mm: float = KEEP_DISTAL_MM,
                keep_proximal_mm: float = KEEP_PROXIMAL_MM) -> FibulaAxis:
    """The axis of a fibula mesh (principal direction of its shaft, pointing to +z: the
    proximal end is the superior one, as in a leg CT in LPS or the template), its lateral
    direction (+x for a left fibula, -x for a right one, made perpendicular) and the usable shaft."""
    v = fibula.vertices
    centre = v.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((v - centre).T))
    a = vecs[:, -1] * (1 if vecs[2, -1] >= 0 else -1)
    s = (v - centre) @ a
    s_min, s_max = float(s.min()), float(s.max())
    if s_max - s_min < keep_distal_mm + keep_proximal_mm + MIN_SEGMENT_MM:
        raise InputError(f"the fibula is {s_max - s_min:.0f} mm long: too short to keep {keep_distal_mm:g} mm "
                         f"distally and {keep_proximal_mm:g} mm proximally and still give a segment",
                         path=fibula.source, hint="give a whole fibula (mm, LPS), or lower keep_distal/keep_proximal")
    shaft = (s > s_min + keep_distal_mm) & (s < s_max - keep_proximal_mm)
    sc = v[shaft].mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((v[shaft] - sc).T))
    a = vecs[:, -1] * (1 if vecs[2, -1] >= 0 else -1)
    s = (v - sc) @ a
    lateral = np.array([1.0, 0.0, 0.0]) * (1 if side == "left" else -1)
    lateral = lateral - (lateral @ a) * a
    if np.linalg.norm(lateral) < 1e-3:
        raise InputError("the fibula's axis runs left-right: give it in a leg frame (LPS, long axis superior)")
    lateral /= np.linalg.norm(lateral)
    radial = v[shaft] - sc - np.outer(s[shaft], a)
    up = np.cross(a, lateral)
    return FibulaAxis(sc, a, lateral, float(s.min()), float(s.max()),
                      (float(s.min()) + keep_distal_mm, float(s.max()) - keep_proximal_mm),
                      0.5 * float(np.ptp(radial @ up)), float(np.max(np.linalg.norm(radial, axis=1))))


@dataclass
class FibulaPlan:
    """A fibula free-flap plan (see :func:`plan_fibula`); meshes in LPS mm."""

    segments: list[SurfaceMesh]            # fibula pieces placed in the defect
    fibula_pieces: list[SurfaceMesh]       # the same pieces where they are cut from the fibula
    fibula_planes: list[CutPlane]          # the cuts on the fibula (piece faces)
    stumps: list[SurfaceMesh]              # the mandible left after the resection
    resected: SurfaceMesh                  # the bone removed
    planes: tuple[CutPlane, CutPlane]      # the resection planes
    contour: np.ndarray                    # the contour followed (points, LPS)
    breakpoints: np.ndarray                # the chords' ends (LPS)
    transforms: list[np.ndarray]           # fibula -> mandible, per segment (4x4)
    segment_rows: list[dict]
    junction_rows: list[dict]
    metrics: dict
    warnings: list[str] = field(default_factory=list)
    guides: dict = field(default_factory=dict)  # name -> guides.Guide

    @property
    def n_segments(self) -> int:
        return len(self.segments)


def _angle(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(np.dot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))))


def _rigid(rot: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = dst - rot @ src
    return m


def _trim(solid, plane_point, plane_normal):
    n = np.asarray(plane_normal, float)
    return solid.trim_by_plane(tuple(n), float(n @ plane_point))


def _face_overlap(x_solid, y_solid, point, normal, up) -> tuple[float, float]:
    """(overlap area, area of y's face) of two solids' sections just either side of a plane."""
    rows = _plane_frame(normal, up)
    m = np.column_stack([rows, -rows @ np.asarray(point, float)])
    xs = x_solid.transform(m).slice(-0.05)
    ys = y_solid.transform(m).slice(0.05)
    return float((xs ^ ys).area()), float(ys.area())


def _outer_points(mesh: SurfaceMesh, planes: list[tuple[np.ndarray, np.ndarray]], n: int, seed: int) -> np.ndarray:
    """Area-weighted sample of a piece's surface, leaving out the faces on its cut planes."""
    v, f = mesh.vertices, mesh.faces
    centres = v[f].mean(axis=1)
    on_cut = np.zeros(len(f), bool)
    for p, nrm in planes:
        on_cut |= np.abs((centres - p) @ nrm) < 0.05
    keep = np.flatnonzero(~on_cut)
    tri = v[f[keep]]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(keep), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s1 = np.sqrt(r1)
    w = np.column_stack([1 - s1, s1 * (1 - r2), s1 * r2])
    return np.einsum("ij,ijk->ik", w, tri[pick])


def _surface_distance(points: np.ndarray, mesh: SurfaceMesh, near: np.ndarray | None = None) -> np.ndarray:
    """Exact distances from points to a surface (trimesh closest points), on the faces near them."""
    import trimesh

    f = mesh.faces
    if near is not None:
        lo, hi = near.min(axis=0) - 15.0, near.max(axis=0) + 15.0
        c = mesh.vertices[f].mean(axis=1)
        f = f[((c >= lo) & (c <= hi)).all(axis=1)]
    tm = trimesh.Trimesh(mesh.vertices, f, process=False)
    _, d, _ = trimesh.proximity.closest_point(tm, points)
    return np.asarray(d)


def _orient_into(plane: CutPlane, towards) -> CutPlane:
    n = plane.normal if plane.normal @ (np.asarray(towards) - plane.centre) >= 0 else -plane.normal
    return CutPlane(plane.name, plane.centre, n, plane.size, plane.u_axis)


def _shifted(plane: CutPlane, by: float, name: str | None = None) -> CutPlane:
    return CutPlane(name or plane.name, plane.centre + by * plane.normal, plane.normal, plane.size, plane.u_axis)


@dataclass(frozen=True)
class _FlapSettings:
    """The checked numbers of a fibula plan (mm)."""

    min_len: float
    max_segments: int
    max_dev: float
    gap: float
    stump_gap: float
    kerf: float
    spacing: float


def _check_choices(*, contour: str, alignment: str, fibula_side: str) -> None:
    if contour not in ("original", "mirror"):
        raise ParameterError(f"contour must be 'original' or 'mirror', got {contour!r}", parameter="contour")
    if alignment not in ("inferior", "centroid"):
        raise ParameterError(f"alignment must be 'inferior' or 'centroid', got {alignment!r}", parameter="alignment")
    if fibula_side not in ("left", "right"):
        raise ParameterError(f"fibula_side must be 'left' or 'right', got {fibula_side!r}", parameter="fibula_side")


def _flap_settings(*, min_segment_mm: float, max_segments: int, max_deviation_mm: float, gap_mm: float,
                   stump_gap_mm: float, kerf_mm: float, spacing_mm: float) -> _FlapSettings:
    """The plan's numbers, each checked against its range."""
    min_len = check_parameter(min_segment_mm, "min_segment_mm", 5.0, 200.0)
    if int(max_segments) != max_segments or not 1 <= int(max_segments) <= 8:
        raise ParameterError(f"max_segments must be a whole number from 1 to 8, got {max_segments}",
                             parameter="max_segments")
    return _FlapSettings(min_len, int(max_segments), check_parameter(max_deviation_mm, "max_deviation_mm", 0.1, 20.0),
                         check_parameter(gap_mm, "gap_mm", 0.0, 5.0),
                         check_parameter(stump_gap_mm, "stump_gap_mm", 0.0, 5.0),
                         check_parameter(kerf_mm, "kerf_mm", 0.1, 5.0),
                         check_parameter(spacing_mm, "spacing_mm", 0.0, 20.0))


def _landmark_frame(landmarks) -> tuple[dict | None, np.ndarray]:
    """The landmarks as points and the superior axis of their head frame (+z without them)."""
    from medface.anatomy.cephalometry import head_frame

    points = None if landmarks is None else {k: np.asarray(v, float) for k, v in dict(landmarks).items()} \
        if isinstance(landmarks, dict) else landmarks.to_dict()
    up = np.array([0.0, 0.0, 1.0])
    if points:
        up = head_frame(points).superior
    return points, up


@dataclass
class _Resection:
    """The mandible cut along both resection planes (``pa``, ``pb``: normals into the defect)."""

    pa: CutPlane
    pb: CutPlane
    pieces: list          # every piece of the cut (cutting.Piece)
    inside: object        # the resected piece
    stumps: list          # the pieces left on the patient
    face_a: CutPlane      # where the rebuilt bone starts and ends: stump_gap past the stumps' faces
    face_b: CutPlane

    @property
    def resected(self) -> SurfaceMesh:
        return self.inside.mesh


def _resect(mandible: SurfaceMesh, planes: list[CutPlane], kerf: float, stump_gap: float) -> _Resection:
    """Cut the defect out of the mandible with the saw's kerf (:func:`.cutting.cut`)."""
    pa = _orient_into(planes[0], planes[1].centre)
    pb = _orient_into(planes[1], planes[0].centre)
    if np.linalg.norm(pa.centre - pb.centre) < 2 * kerf + 1.0:
        raise ParameterError("the resection planes are closer than two kerfs: there is no defect to rebuild",
                             parameter="planes")
    result = cut(SurfaceMesh(mandible.vertices, mandible.faces, name="mandible"), [pa, pb], kerf)
    inside = [p for p in result.pieces if p.sides[pa.name] > 0 and p.sides[pb.name] > 0]
    stumps = [p for p in result.pieces if not (p.sides[pa.name] > 0 and p.sides[pb.name] > 0)]
    if not inside or not stumps:
        raise InputError("the resection planes do not cut a segment out of the mandible",
                         hint="each plane must cross the whole body (bounded planes: make them large enough)")
    # the stumps' faces lie half a kerf on their side of the planes; the pieces start stump_gap past them
    return _Resection(pa, pb, result.pieces, inside[0], stumps, _shifted(pa, -kerf / 2 + stump_gap, "stump_a"),
                      _shifted(pb, -kerf / 2 + stump_gap, "stump_b"))


def _contour_source(mandible: SurfaceMesh, points, cut_: _Resection, contour: str,
                    healthy_side: str | None) -> tuple[SurfaceMesh, dict]:
    """The surface whose contour the fibula follows: the mandible, or (``contour="mirror"``) its
    healthy side mirrored onto the defect's; and what the mirror reports."""
    if contour != "mirror":
        return mandible, {}
    from medface.anatomy.cephalometry import midsagittal_plane

    from .mirror import mirror_healthy_side

    if not points:
        raise InputError("the mirror contour needs landmarks (the mid-sagittal plane)")
    plane = midsagittal_plane(points)
    side_of_defect = float((0.5 * (cut_.pa.centre + cut_.pb.centre) - plane.centre) @ plane.normal)
    healthy = healthy_side or ("right" if side_of_defect > 0 else "left")
    towards = plane.normal if healthy == "left" else -plane.normal
    if side_of_defect * float(towards @ plane.normal) > 0:
        raise ParameterError(f"the defect lies on the {healthy} side: mirror the other side",
                             parameter="healthy_side")
    source, _, rms = mirror_healthy_side(mandible, plane, healthy, name="mirror")
    return source, {"healthy_side": healthy, "mirror_rms_mm": round(float(rms), 3)}


def _bisector(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    bis = a + b
    return bis / np.linalg.norm(bis)


def _piece_faces(ends: np.ndarray, face_a: CutPlane, face_b: CutPlane, gap: float):
    """The chords' directions and each piece's faces ``((start point, normal), (end point,
    normal))``, normals into the piece: the stump faces at the defect's ends, else the plane
    bisecting the junction's angle, half the ``gap`` from the breakpoint."""
    n = len(ends) - 1
    dirs = [(ends[k + 1] - ends[k]) / np.linalg.norm(ends[k + 1] - ends[k]) for k in range(n)]
    faces = []
    for k in range(n):
        if k == 0:
            start = (ends[0] + 0.0, face_a.normal)
        else:
            bis = _bisector(dirs[k - 1], dirs[k])
            start = (ends[k] + 0.5 * gap * bis, bis)
        if k == n - 1:
            stop = (ends[-1] + 0.0, face_b.normal)
        else:
            bis = _bisector(dirs[k], dirs[k + 1])
            stop = (ends[k + 1] - 0.5 * gap * bis, -bis)
        faces.append((start, stop))
    return dirs, faces


def _segment_rotation(axis: FibulaAxis, mid: np.ndarray, direction: np.ndarray, centroid: np.ndarray,
                      up: np.ndarray, roll_deg: float) -> np.ndarray:
    """The rotation taking the fibula's axis onto a chord's ``direction`` and its lateral surface
    to face buccally (away from the mandible's ``centroid``, turned by ``roll_deg`` about the chord)."""
    buccal = np.cross(up, direction)
    out = (mid - centroid) - ((mid - centroid) @ up) * up
    buccal = buccal if buccal @ out >= 0 else -buccal
    buccal = buccal - (buccal @ direction) * direction
    buccal /= np.linalg.norm(buccal)
    if roll_deg:
        from scipy.spatial.transform import Rotation

        buccal = Rotation.from_rotvec(np.radians(roll_deg) * direction).apply(buccal)
    dst = np.column_stack([direction, buccal, np.cross(direction, buccal)])
    src = np.column_stack([axis.axis, axis.lateral, np.cross(axis.axis, axis.lateral)])
    return dst @ src.T


def _piece_at(fib_solid, axis: FibulaAxis, rot: np.ndarray, mid: np.ndarray, faces, s: float):
    """The piece cut from the fibula when its point ``s`` (mm along the axis) goes to ``mid``:
    (fibula -> defect transform, the piece's faces on the fibula, the piece)."""
    m = _rigid(rot, axis.origin + s * axis.axis, mid)
    inv = np.linalg.inv(m)
    on_fibula = [(inv[:3, :3] @ p + inv[:3, 3], inv[:3, :3] @ nrm) for p, nrm in faces]
    return m, on_fibula, _trim(_trim(fib_solid, *on_fibula[0]), *on_fibula[1])


def _along_axis(piece, axis: FibulaAxis) -> np.ndarray:
    """Where a piece's vertices lie along the fibula's axis (mm)."""
    return (np.asarray(piece.to_mesh64().vert_properties)[:, :3] - axis.origin) @ axis.axis


def _cut_from_fibula(fib_solid, axis: FibulaAxis, rot: np.ndarray, mid: np.ndarray, faces, s_next: float, *,
                     k: int, n: int):
    """Segment ``k + 1``'s piece, laid out on the fibula so that its distal end is at ``s_next``:
    (transform, faces on the fibula, piece, where it lies along the axis)."""
    _, _, piece0 = _piece_at(fib_solid, axis, rot, mid, faces, 0.0)
    if piece0.is_empty():
        raise InputError(f"segment {k + 1}: the fibula has no bone where the piece would be cut",
                         hint="check the fibula mesh (mm, proximal end superior)")
    m, on_fibula, piece = _piece_at(fib_solid, axis, rot, mid, faces, s_next - float(np.min(_along_axis(piece0, axis))))
    s_range = _along_axis(piece, axis)
    if s_range.max() > axis.usable[1] + 1e-6:
        raise InputError(f"the fibula's usable shaft ({axis.usable[1] - axis.usable[0]:.0f} mm) is too short for "
                         f"{n} segments", hint="lower keep_distal_mm/keep_proximal_mm or plan fewer segments")
    return m, on_fibula, piece, s_range


@dataclass
class _Placement:
    """The pieces cut from the fibula and placed in the defect."""

    segments: list = field(default_factory=list)        # placed in the defect
    pieces: list = field(default_factory=list)          # on the fibula
    transforms: list = field(default_factory=list)      # fibula -> defect
    fibula_planes: list = field(default_factory=list)   # the saw's cuts on the fibula
    rows: list = field(default_factory=list)            # the segment table


def _segment_row(k: int, ends: np.ndarray, direction: np.ndarray, faces, s_range: np.ndarray, axis: FibulaAxis,
                 piece) -> dict:
    return {"segment": k + 1, "length_mm": round(float(np.linalg.norm(ends[k + 1] - ends[k])), 2),
            "start_cut_deg": round(_angle(faces[0][1], direction), 2),
            "end_cut_deg": round(_angle(faces[1][1], direction), 2),
            "fibula_from_mm": round(float(s_range.min() - axis.s_min), 1),
            "fibula_to_mm": round(float(s_range.max() - axis.s_min), 1),
            "volume_mm3": round(float(piece.volume()), 1)}


def _place_segments(fibula: SurfaceMesh, axis: FibulaAxis, ends: np.ndarray, dirs: list, faces: list, *,
                    up: np.ndarray, centroid: np.ndarray, roll_deg: float, kerf: float, spacing: float) -> _Placement:
    """Place a fibula piece on each chord and lay the pieces out up the fibula from its usable
    shaft's distal end, ``2 * kerf + spacing`` apart."""
    fib_solid = to_manifold(fibula)
    s_next = axis.usable[0]
    out = _Placement()
    n = len(dirs)
    for k in range(n):
        mid = 0.5 * (ends[k] + ends[k + 1])
        rot = _segment_rotation(axis, mid, dirs[k], centroid, up, roll_deg)
        m, on_fibula, piece, s_range = _cut_from_fibula(fib_solid, axis, rot, mid, faces[k], s_next, k=k, n=n)
        s_next = float(s_range.max()) + 2 * kerf + spacing
        out.segments.append(from_manifold(piece.transform(m[:3]), f"fibula_segment_{k + 1}"))
        out.pieces.append(from_manifold(piece, f"fibula_piece_{k + 1}"))
        out.transforms.append(m)
        for j, (p, nrm) in enumerate(on_fibula):
            # the saw runs on the waste side: the slot centre half a kerf out of the piece
            out.fibula_planes.append(CutPlane(f"seg{k + 1}_{'distal' if j == 0 else 'proximal'}",
                                              p - 0.5 * kerf * nrm, nrm))
        out.rows.append(_segment_row(k, ends, dirs[k], faces[k], s_range, axis, piece))
    return out


def _junction(x_solid, y_solid, point, normal, up, *, label: str, wedge_deg: float, gap: float) -> dict:
    """A junction's row: wedge angle, the least gap and the share of y's face x touches (none
    when the plan leaves a gap there)."""
    area, face = _face_overlap(x_solid, y_solid, point, normal, up)
    return {"junction": label, "wedge_deg": wedge_deg, "gap_mm": round(float(x_solid.min_gap(y_solid, 5.0)), 3),
            "contact_pct": round(100 * area / face, 1) if face > 0 and gap == 0 else 0.0}


def _junctions(cut_: _Resection, segments: list, dirs: list, faces: list, up: np.ndarray, *, gap: float,
               stump_gap: float) -> list[dict]:
    """The junctions from stump A through the segments to stump B."""
    seg_solids = [to_manifold(s) for s in segments]
    stump_a = next(p for p in cut_.pieces if p.sides[cut_.pa.name] < 0)
    stump_b = next(p for p in cut_.pieces if p.sides[cut_.pb.name] < 0)
    fa, fb, n = cut_.face_a, cut_.face_b, len(segments)
    rows = [_junction(to_manifold(stump_a.mesh), seg_solids[0], fa.centre - 0.5 * stump_gap * fa.normal, fa.normal, up,
                      label="stump A - segment 1", wedge_deg=0.0, gap=stump_gap)]
    for k in range(n - 1):
        p, nrm = faces[k][1]
        rows.append(_junction(seg_solids[k], seg_solids[k + 1], p - 0.5 * gap * nrm, -nrm, up,
                              label=f"segment {k + 1} - segment {k + 2}",
                              wedge_deg=round(float(np.degrees(np.arccos(np.clip(dirs[k] @ dirs[k + 1], -1, 1)))), 2),
                              gap=gap))
    rows.append(_junction(to_manifold(stump_b.mesh), seg_solids[-1], fb.centre - 0.5 * stump_gap * fb.normal, fb.normal,
                          up, label=f"segment {n} - stump B", wedge_deg=0.0, gap=stump_gap))
    return rows


def _distances(mandible: SurfaceMesh, cut_: _Resection, segments: list, faces: list, kerf: float,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from the reconstruction's outer surface to the original mandible surface,
    and from the resected bone's outer surface to the reconstruction (cut faces left out)."""
    from .apply import merge_meshes

    recon = np.vstack([_outer_points(s, list(faces[k]), 3000, seed + k) for k, s in enumerate(segments)])
    d_recon = _surface_distance(recon, mandible, near=recon)
    pa, pb = cut_.pa, cut_.pb
    cut_faces = [(pa.centre + kerf / 2 * pa.normal, pa.normal), (pb.centre + kerf / 2 * pb.normal, pb.normal)]
    orig = _outer_points(cut_.resected, cut_faces, 6000, seed + 99)
    return d_recon, _surface_distance(orig, merge_meshes(segments, "reconstruction"))


def _plan_metrics(*, contour: str, alignment: str, line: np.ndarray, worst: float, distances, rows: list,
                  axis: FibulaAxis, resected_volume: float, mirror_info: dict) -> dict:
    d_recon, d_orig = distances
    return {"segments": len(rows), "contour": contour, "alignment": alignment,
            "defect_length_mm": round(float(np.sum(np.linalg.norm(np.diff(line, axis=0), axis=1))), 2),
            "chord_deviation_mm": round(worst, 3),
            "reconstruction_to_original_mean_mm": round(float(d_recon.mean()), 3),
            "reconstruction_to_original_p95_mm": round(float(np.percentile(d_recon, 95)), 3),
            "reconstruction_to_original_max_mm": round(float(d_recon.max()), 3),
            "original_to_reconstruction_mean_mm": round(float(d_orig.mean()), 3),
            "original_to_reconstruction_max_mm": round(float(d_orig.max()), 3),
            "fibula_used_mm": round(float(rows[-1]["fibula_to_mm"] - rows[0]["fibula_from_mm"]), 1),
            "fibula_usable_mm": round(float(axis.usable[1] - axis.usable[0]), 1),
            "resected_volume_mm3": round(float(resected_volume), 1),
            "reconstruction_volume_mm3": round(float(sum(r["volume_mm3"] for r in rows)), 1), **mirror_info}


def _flap_guides(mandible: SurfaceMesh, fibula: SurfaceMesh, cut_: _Resection, fibula_planes: list,
                 axis: FibulaAxis, centroid: np.ndarray, up: np.ndarray, params: dict) -> dict:
    """The mandible resection guide (slots on both planes, approached buccally) and the fibula
    guide (a slot on every fibula cut, approached laterally)."""
    from .guides import cutting_guide

    mid = 0.5 * (cut_.pa.centre + cut_.pb.centre)
    buccal = (mid - centroid) - ((mid - centroid) @ up) * up
    return {"mandible": cutting_guide(mandible, [cut_.pa, cut_.pb], buccal, name="guide_mandible_resection",
                                      bone_name="mandible", **params),
            "fibula": cutting_guide(fibula, fibula_planes, axis.lateral, name="guide_fibula", bone_name="fibula",
                                    **params)}


def plan_fibula(mandible: SurfaceMesh, planes, fibula: SurfaceMesh | None = None, *, landmarks=None,
                contour: str = "original", healthy_side: str | None = None, alignment: str = "inferior",
                min_segment_mm: float = MIN_SEGMENT_MM, max_segments: int = MAX_SEGMENTS,
                max_deviation_mm: float = MAX_DEVIATION_MM, gap_mm: float = 0.0, stump_gap_mm: float = 0.0,
                kerf_mm: float = 1.0, fibula_side: str = "left", roll_deg: float = 0.0,
                keep_distal_mm: float = KEEP_DISTAL_MM, keep_proximal_mm: float = KEEP_PROXIMAL_MM,
                spacing_mm: float = SPACING_MM, guides: bool = True, guide_params: dict | None = None,
                seed: int = 0) -> FibulaPlan:
    """Plan a fibula free flap for the defect between two resection ``planes`` (module notes).

    ``landmarks`` give the head frame (superior, the mid-sagittal plane for the mirror); without
    them +z is superior. ``contour``: ``"original"`` (the mandible before resection) or
    ``"mirror"`` (its healthy side mirrored; ``healthy_side`` defaults to the side away from the
    defect). ``fibula``: any closed fibula (proximal end superior); default the template.
    """
    from medface.phantom.fibula import template_fibula

    _check_choices(contour=contour, alignment=alignment, fibula_side=fibula_side)
    st = _flap_settings(min_segment_mm=min_segment_mm, max_segments=max_segments, max_deviation_mm=max_deviation_mm,
                        gap_mm=gap_mm, stump_gap_mm=stump_gap_mm, kerf_mm=kerf_mm, spacing_mm=spacing_mm)
    planes = list(planes)
    if len(planes) != 2:
        raise ParameterError(f"a segmental defect needs exactly two resection planes, got {len(planes)}",
                             parameter="planes")
    mandible = check_closed(mandible, "mandible")
    fibula = check_closed(fibula if fibula is not None else template_fibula(side=fibula_side), "fibula")
    points, up = _landmark_frame(landmarks)
    # 1. resection
    cut_ = _resect(mandible, planes, st.kerf, st.stump_gap)
    # 2. the contour
    axis = fibula_axis(fibula, side=fibula_side, keep_distal_mm=keep_distal_mm, keep_proximal_mm=keep_proximal_mm)
    source, mirror_info = _contour_source(mandible, points, cut_, contour, healthy_side)
    line = contour_between(source, cut_.face_a, cut_.face_b, up, alignment=alignment, half_height=axis.half_height)
    # 3. segments
    idx, worst, _, note = choose_segments(line, st.min_len, st.max_segments, st.max_dev)
    ends = line[idx]
    centroid = mandible.vertices.mean(axis=0)
    dirs, faces = _piece_faces(ends, cut_.face_a, cut_.face_b, st.gap)
    # 4-5. place the pieces and lay them out on the fibula
    placed = _place_segments(fibula, axis, ends, dirs, faces, up=up, centroid=centroid, roll_deg=roll_deg,
                             kerf=st.kerf, spacing=st.spacing)
    # 6. junctions, gaps, contact; distances to the original surface
    junctions = _junctions(cut_, placed.segments, dirs, faces, up, gap=st.gap, stump_gap=st.stump_gap)
    metrics = _plan_metrics(contour=contour, alignment=alignment, line=line, worst=worst,
                            distances=_distances(mandible, cut_, placed.segments, faces, st.kerf, seed),
                            rows=placed.rows, axis=axis, resected_volume=cut_.inside.volume, mirror_info=mirror_info)
    plan = FibulaPlan(placed.segments, placed.pieces, placed.fibula_planes, [p.mesh for p in cut_.stumps],
                      cut_.resected, (cut_.pa, cut_.pb), line, ends, placed.transforms, placed.rows, junctions,
                      metrics, [note] if note else [])
    # 7. guides
    if guides:
        plan.guides = _flap_guides(mandible, fibula, cut_, placed.fibula_planes, axis, centroid, up,
                                   {"kerf_mm": st.kerf, **(guide_params or {})})
    return plan


def plan_outputs(plan: FibulaPlan) -> list[tuple[str, str, object, str]]:
    """``(name, file name, value, kind)`` of a plan's parts to write: the segments placed and on
    the fibula, the stumps, the resected bone, the resection planes (3D Slicer markups) and the
    guides."""
    from .slicer_planes import plane_to_slicer

    out = [(f"fibula segment {k + 1} (placed)", f"fibula_segment_{k + 1}.stl", seg, "")
           for k, seg in enumerate(plan.segments)]
    out += [(f"fibula segment {k + 1} (on the fibula)", f"fibula_piece_{k + 1}.stl", piece, "")
            for k, piece in enumerate(plan.fibula_pieces)]
    out += [(f"mandible stump {k + 1}", f"mandible_stump_{k + 1}.stl", stump, "")
            for k, stump in enumerate(plan.stumps)]
    out.append(("resected bone", "resected.stl", plan.resected, ""))
    out += [(f"resection plane {p.name}", f"plane_{p.name}.mrk.json",
             plane_to_slicer({"name": p.name, "bone": "mandible", "centre": p.centre, "normal": p.normal,
                              "size_mm": list(p.size) if p.size else None, "u_axis": p.u_axis}), "json")
            for p in plan.planes]
    out += [(g.name, f"{g.name}.stl", g.mesh, "") for g in plan.guides.values()]
    return out


def plan_figure(mandible: SurfaceMesh, plan: FibulaPlan):
    """The mandible before, and the stumps with the fibula segments in the defect."""
    from medface.data.outputs import Figure

    def scenes() -> list:
        from medface.viz import Scene

        recon = Scene()
        for s in plan.stumps:
            recon.add_mesh(s, color="bone")
        for s in plan.segments:
            recon.add_mesh(s, color=(0.85, 0.35, 0.30))
        return [Scene().add_mesh(mandible, color="bone"), recon]

    return Figure(scenes, views="three_quarter_left", size=(420, 420),
                  titles=["before", "fibula segments in the defect"])


# ---------------------------------------------------------------------------------------------
def body_defect_planes(mandible: SurfaceMesh, landmarks, *, side: str = "left", start_mm: float = 15.0,
                       length_mm: float = 40.0, size_mm: tuple[float, float] = (60.0, 40.0)) -> tuple[CutPlane, CutPlane]:
    """Two resection planes ``length_mm`` apart along the mandible's body on one ``side``, the
    first ``start_mm`` from the midline (both measured along the body's centre line), each
    perpendicular to the body there: a segmental defect for planning and tests.

    The centre line is traced by vertical half-planes turning about a point inside the arch
    (midway between the gonia's midpoint and pogonion), one every 2 deg, through each section's
    centroid (smoothed over 5 sections; lengths measured in the horizontal plane). Needs landmarks ``pog``, ``go_l``, ``go_r`` and a head frame (porion, orbitale)."""
    from medface.anatomy.cephalometry import as_point_dict, head_frame

    if side not in ("left", "right"):
        raise ParameterError(f"side must be 'left' or 'right', got {side!r}", parameter="side")
    start = check_parameter(start_mm, "start_mm", 0.0, 120.0)
    length = check_parameter(length_mm, "length_mm", 5.0, 150.0)
    points = as_point_dict(landmarks)
    missing = [k for k in ("pog", "go_l", "go_r") if k not in points]
    if missing:
        raise InputError(f"a body defect is placed from landmarks {', '.join(missing)}, which are missing")
    frame = head_frame(points)
    up = frame.superior
    centre = 0.5 * (0.5 * (points["go_l"] + points["go_r"]) + points["pog"])
    lateral = frame.left if side == "left" else -frame.left
    solid = to_manifold(check_closed(mandible, "mandible"))
    go = points["go_l" if side == "left" else "go_r"] - centre
    end_angle = np.degrees(np.arctan2(go @ lateral, go @ frame.anterior))
    curve = []
    for phi in np.radians(np.arange(0.0, end_angle, 2.0)):
        r = np.cos(phi) * frame.anterior + np.sin(phi) * lateral
        normal = np.cross(up, r)
        polys, rows = section(solid, centre + 40.0 * r, normal, up)
        if polys is None:
            continue
        _, c = _polygon_stats(polys)
        curve.append(centre + 40.0 * r + c[0] * rows[0] + c[1] * rows[1])
    curve = np.asarray(curve)
    # the teeth make the centroids step up and down from one section to the next: smooth the
    # line (5 sections) and measure its length in the horizontal plane
    from scipy.ndimage import uniform_filter1d

    curve = uniform_filter1d(curve, size=5, axis=0, mode="nearest")
    flat = curve - np.outer(curve @ up, up)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(flat, axis=0), axis=1))])
    if arc[-1] < start + length + 5:
        raise ParameterError(f"the body is {arc[-1]:.0f} mm long on the {side} side: a defect from {start:g} to "
                             f"{start + length:g} mm does not fit", parameter="length_mm")
    out = []
    for name, s in (("resection_anterior", start), ("resection_posterior", start + length)):
        p = np.array([np.interp(s, arc, curve[:, i]) for i in range(3)])
        t = np.array([np.interp(s + 1.0, arc, curve[:, i]) - np.interp(s - 1.0, arc, curve[:, i]) for i in range(3)])
        t -= (t @ up) * up
        out.append(CutPlane(name, p, t / np.linalg.norm(t), size_mm, up))
    return out[0], out[1]
