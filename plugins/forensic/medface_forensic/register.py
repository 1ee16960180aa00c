"""Register the phantom template skull (cranium + mandible) onto an input skull in any pose.

Four steps, all on subsampled points (a few thousand per side):

1. **Starts**: the principal axes of the template (cranium only, and cranium + mandible, since
   the input may lack its mandible) are matched to the input's in all 24 proper signed axis
   permutations, or, given 3+ user landmarks, a landmark similarity fit is the start; each start
   gets a few coarse ICP steps and the best four go on.
2. **Similarity ICP** (Besl & McKay 1992, with Umeyama's 1991 closed-form similarity): closest
   points in both directions, pairs with opposed normals dropped, the worst 15 % trimmed
   (robust to a missing mandible or extra debris). Then the mandible: present if a separate
   mandible component was found or 50 % of the template's mandible lies within 10 mm of input
   bone; if present, it gets its own rigid ICP (jaw opening, a loose mandible placed apart) onto
   that component, or onto the input bone within 15 mm of the template mandible when it is fused
   (not the maxilla or a CT's cervical spine further away).
3. **Shape check**: the 75th percentile of the distances from the aligned template cranium to
   the input must stay under ``max_shape_residual_mm`` (10 mm; phantom skulls about 2 mm, the
   stylised public skull 7.5 mm, a skull-sized ellipsoid 12.7 mm, a sphere or box 16 mm), else
   :class:`InputError`.
4. **Non-rigid**: a smooth displacement field, a sum of Gaussian kernels on about 300 control
   points with a kernel-norm penalty (the motion-coherence regulariser of coherent point drift,
   Myronenko & Song 2010), fitted to bidirectional closest-point pairs over a coarse-to-fine
   schedule of kernel widths (80, 50, 30, 18 mm); user landmarks pin it.

A skull cut off by a CT's scan range (``field_of_view``): template points that fall outside the
scanned box look for no input partner in any step, the shape check and the mandible coverage
count only the template inside it, and :attr:`Registration.observed` flags the template vertices
inside it (the rest is extrapolated by the similarity transform and the smooth field).

The result gives the similarity transform (template -> input), the template's vertices deformed
onto the input (dense correspondence with every phantom subject and any model built on the
template), the craniometric landmarks transferred with an uncertainty in mm (user landmarks
override them), and the pose of the input in the template's Frankfurt-horizontal frame.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from medface.data import Landmarks, SurfaceMesh
from medface.data.mesh import vertex_normals
from medface.errors import InputError

from .rigid import similarity
from .skull_input import SkullInput, load_skull, prepare_skull

TEMPLATE_POINTS = 3000  # template points for the similarity stage
COARSE_POINTS = 800  # per side, for scoring the starts
NONRIGID_POINTS = 8000  # template points for the non-rigid stage
INPUT_POINTS = 8000  # input points that find their closest template point
TRIM = 0.85
# 75th percentile of template-cranium-to-input distances after the similarity stage: phantom
# skulls about 2 mm, the stylised public skull_low_resolution.obj 7.5 mm, a skull-sized ellipsoid
# 12.7 mm, a sphere 16 mm, a box 16 mm
MAX_SHAPE_RESIDUAL_MM = 10.0
MANDIBLE_COVERAGE = 0.5  # fraction of template mandible points with input bone within 10 mm
MANDIBLE_BAND_MM = 15.0  # a fused mandible is fitted to the input bone this close to the template's
MIN_INSIDE = 0.25  # with a field of view: least share of the aligned template cranium inside it
DENSE_POINTS = 25000  # input points that closest points are taken from
KERNEL_WIDTHS_MM = (80.0, 50.0, 30.0, 18.0)
CONTROL_POINTS = 300
SMOOTHNESS = 0.3  # kernel-norm weight per pair; 0.01 lets the field slide and fold
ITERATIONS_PER_LEVEL = 8


def _oblique() -> np.ndarray:
    """A fixed rotation (1 rad about (1, 2, 3)): the template's non-rigid sample is drawn on a
    grid turned by it, so that it never aliases with the input's axis-aligned sample (a phantom
    input in the template's pose would pick the very same vertices and bias the matching)."""
    k = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(1.0) * kx + (1 - np.cos(1.0)) * kx @ kx


_OBLIQUE = _oblique()


# --------------------------------------------------------------------------------------------
# template
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """The phantom mean skull (cranium then mandible vertices) and its craniometric landmarks."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    n_cranium: int
    landmarks: dict

    @property
    def is_mandible(self) -> np.ndarray:
        flag = np.zeros(len(self.vertices), bool)
        flag[self.n_cranium:] = True
        return flag


@functools.lru_cache(maxsize=1)
def template() -> Template:
    from medface.anatomy.landmarks import craniometric_ids

    from .template import template_head

    head = template_head()
    cr, md = head.cranium, head.mandible
    vertices = np.concatenate([cr.vertices, md.vertices])
    faces = np.concatenate([cr.faces, md.faces + cr.n_vertices])
    bony = set(craniometric_ids())
    lms = {k: np.asarray(v, float) for k, v in head.landmarks.items() if k in bony}
    return Template(vertices, faces, vertex_normals(vertices, faces), cr.n_vertices, lms)


# --------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------

def grid_sample(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of about ``count`` points spread evenly (one per voxel of a fitted grid)."""
    if len(points) <= count:
        return np.arange(len(points))
    lo = points.min(0)
    spacing = np.cbrt(np.prod(np.ptp(points, 0) + 1e-9) / count) * 0.35
    for _ in range(12):
        cells = np.floor((points - lo) / spacing).astype(np.int64)
        dims = cells.max(0) + 1
        keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
        _, first = np.unique(keys, return_index=True)
        if 0.8 * count <= len(first) <= 1.25 * count:
            break
        spacing *= np.sqrt(len(first) / count)
    return np.sort(first)


def _signed_permutations() -> list[np.ndarray]:
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                mats.append(m)
    return mats


def _pairs(moved, moved_n, target, target_n, target_tree, trim):
    """Closest points of ``moved`` on ``target``; keep normal-compatible pairs within the
    ``trim`` quantile. Returns (source index, target index, distance)."""
    d, j = target_tree.query(moved, workers=1)
    ok = np.einsum("ij,ij->i", moved_n, target_n[j]) > 0.2
    if ok.sum() < 10:
        ok[:] = True
    cut = np.quantile(d[ok], trim)
    ok &= d <= cut
    i = np.nonzero(ok)[0]
    return i, j[i], d[i]


@dataclass
class _Cloud:
    points: np.ndarray
    normals: np.ndarray

    @functools.cached_property
    def tree(self) -> cKDTree:
        return cKDTree(self.points)


def _inside(fov, points: np.ndarray) -> np.ndarray:
    """Indices of ``points`` inside the field of view (all of them without one)."""
    return np.arange(len(points)) if fov is None else np.flatnonzero(fov(points))


def _pairs_inside(fov, moved, moved_n, target, target_n, target_tree, trim):
    """:func:`_pairs` for the points of ``moved`` inside the field of view only."""
    sel = _inside(fov, moved)
    if len(sel) < 10:  # (nearly) all outside: no pairs from this side
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    i, j, d = _pairs(moved[sel], moved_n[sel], target, target_n, target_tree, trim)
    return sel[i], j, d


def _icp(src: _Cloud, dst: _Cloud, s, r, t, iterations: int, trim: float = TRIM, scale: bool = True, fov=None):
    """Trimmed bidirectional similarity ICP of ``src`` onto ``dst``; returns (s, R, t, median d).
    With a field of view ``fov``, source points outside it look for no partner."""
    med = np.inf
    for _ in range(iterations):
        moved = s * src.points @ r.T + t
        moved_n = src.normals @ r.T
        i1, j1, d1 = _pairs_inside(fov, moved, moved_n, dst.points, dst.normals, dst.tree, trim)
        i2, j2, d2 = _pairs(dst.points, dst.normals, moved, moved_n, cKDTree(moved), trim)
        a = np.concatenate([src.points[i1], src.points[j2]])
        b = np.concatenate([dst.points[j1], dst.points[i2]])
        s_new, r_new, t_new = similarity(a, b, scale=scale)
        change = np.abs(s_new - s) + np.abs(r_new - r).max() + np.abs(t_new - t).max() / 100
        s, r, t = s_new, r_new, t_new
        med = float(np.median(np.concatenate([d1, d2])))
        if change < 1e-5:
            break
    moved = s * src.points @ r.T + t
    d_in = cKDTree(moved).query(dst.points, workers=1)[0]
    return s, r, t, float(np.median(d_in)), med


# --------------------------------------------------------------------------------------------
# non-rigid field
# --------------------------------------------------------------------------------------------

@dataclass
class DisplacementField:
    """A sum of Gaussian kernel fields ``d(x) = sum_levels sum_k exp(-|x-c_k|^2 / 2b^2) w_k``
    (points in the input frame, after the similarity transform)."""

    levels: list = field(default_factory=list)  # (centres (K,3), width, weights (K,3))

    def __call__(self, points: np.ndarray, chunk: int = 20000) -> np.ndarray:
        points = np.asarray(points, float)
        out = np.zeros_like(points)
        for centres, width, weights in self.levels:
            origin = centres.mean(0)  # float32 kernels, centred to keep precision
            c = (centres - origin).astype(np.float32)
            w = weights.astype(np.float32)
            for a in range(0, len(points), chunk):
                x = (points[a:a + chunk] - origin).astype(np.float32)
                out[a:a + chunk] += _kernel(x, c, width) @ w
        return out


def _kernel(x, c, width):
    d2 = (x * x).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2.0 * (x @ c.T)
    np.maximum(d2, 0.0, out=d2)
    d2 *= -1.0 / (2.0 * width * width)
    return np.exp(d2, out=d2)


def _fit_field(x0, x0_n, dst: _Cloud, dense: _Cloud, extra, iterations_per_level=None, smoothness=None, fov=None):
    """Fit a coarse-to-fine Gaussian displacement field moving points ``x0`` onto ``dst``.

    ``extra`` = (source points, target points, weight) pins, e.g. user landmarks; points of
    ``x0`` outside the field of view ``fov`` look for no partner (the field carries them)."""
    iterations_per_level = iterations_per_level or ITERATIONS_PER_LEVEL
    smoothness = SMOOTHNESS if smoothness is None else smoothness
    field_ = DisplacementField()
    control = x0[grid_sample(x0, CONTROL_POINTS)]
    current = x0.copy()
    n = len(x0)
    for width in KERNEL_WIDTHS_MM:
        phi = _kernel(x0, control, width).astype(np.float32)
        gram = _kernel(control, control, width)
        base = current - x0
        ex_phi = _kernel(extra[0], control, width) if len(extra[0]) else np.zeros((0, len(control)))
        ex_base = field_(extra[0]) if len(extra[0]) else np.zeros((0, 3))
        weights = np.zeros((len(control), 3))
        for _ in range(iterations_per_level):
            tree = cKDTree(current)
            i1, j1, _ = _pairs_inside(fov, current, x0_n, dense.points, dense.normals, dense.tree, 0.9)
            i2, j2, _ = _pairs(dst.points, dst.normals, current, x0_n, tree, 0.9)
            rows = np.concatenate([i1, j2])
            target = np.concatenate([dense.points[j1], dst.points[i2]])
            # normal equations of sum ||phi_row W - (target - x0 - base)||^2, with rows grouped
            counts = np.bincount(rows, minlength=n).astype(np.float32)
            sums = np.zeros((n, 3))
            np.add.at(sums, rows, target)
            rhs_t = sums - counts[:, None] * (x0 + base)
            lhs = (phi.T @ (counts[:, None] * phi)).astype(float)
            rhs = (phi.T @ rhs_t.astype(np.float32)).astype(float)
            if len(extra[0]):
                we = extra[2]
                lhs = lhs + we * ex_phi.T @ ex_phi
                rhs = rhs + we * ex_phi.T @ (extra[1] - extra[0] - ex_base)
            lam = smoothness * len(rows) / len(control)
            weights = np.linalg.solve(lhs + lam * gram + 1e-9 * np.eye(len(control)), rhs)
            current = x0 + base + phi @ weights.astype(np.float32)
        field_.levels.append((control, width, weights))
    return field_, current


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------

@dataclass
class Registration:
    """Template -> input registration.

    ``matrix`` (4x4) maps template (Frankfurt-horizontal) coordinates to the input frame:
    ``x_in = scale * R @ x_t + t``. ``to_frankfurt`` (4x4, rigid, mm kept) moves the input into
    the template's orientation and origin. ``vertices`` are the template's vertices deformed onto
    the input (cranium first, ``n_cranium`` of them, then mandible); ``landmarks`` the
    craniometric landmarks on the input, user ones overriding transferred ones, with
    ``uncertainty_mm`` per id and ``landmark_source`` ("transferred" or "user").
    """

    matrix: np.ndarray
    scale: float
    field: DisplacementField
    vertices: np.ndarray
    n_cranium: int
    landmarks: Landmarks
    uncertainty_mm: dict
    landmark_source: dict
    mandible_present: bool
    mandible_component: bool
    residual_mm: dict
    timings_s: dict
    warnings: list = field(default_factory=list)
    observed: np.ndarray | None = None  # per vertex: inside the input's field of view (None: all)

    @property
    def rotation(self) -> np.ndarray:
        return self.matrix[:3, :3] / self.scale

    @property
    def to_frankfurt(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation.T
        m[:3, 3] = -self.rotation.T @ self.matrix[:3, 3]
        return m

    def warp(self, template_points: np.ndarray) -> np.ndarray:
        """Map any points given in the template frame (e.g. a model's mean) into the input frame."""
        p = np.asarray(template_points, float) @ self.matrix[:3, :3].T + self.matrix[:3, 3]
        return p + self.field(p)

    def pose_angles_deg(self) -> dict:
        """The input's orientation relative to Frankfurt horizontal: rotations about the
        L (pitch), P (roll) and S (yaw) axes in degrees (R = Rz(yaw) Ry(roll) Rx(pitch))."""
        r = self.rotation
        return {"pitch": float(np.degrees(np.arctan2(r[2, 1], r[2, 2]))),
                "roll": float(np.degrees(-np.arcsin(np.clip(r[2, 0], -1, 1)))),
                "yaw": float(np.degrees(np.arctan2(r[1, 0], r[0, 0])))}

    def summary(self) -> dict:
        return {"scale": self.scale, "mandible_present": self.mandible_present,
                "residual_mm": self.residual_mm, "pose_deg": self.pose_angles_deg(),
                "timings_s": self.timings_s, "landmarks": len(self.landmarks)}


# --------------------------------------------------------------------------------------------
# user landmarks
# --------------------------------------------------------------------------------------------

def user_landmarks(source, scale: float = 1.0) -> dict:
    """User landmarks from a dict id -> (3,), a :class:`Landmarks` or a .mrk.json / CSV path,
    scaled like the skull. Unknown ids raise :class:`InputError` with suggestions."""
    from medface.anatomy.landmarks import get, is_known

    if source is None:
        return {}
    if isinstance(source, (str, os.PathLike)):
        from medface.io import read_landmarks

        source = read_landmarks(source)
    points = source.to_dict() if isinstance(source, Landmarks) else dict(source)
    bad = [k for k in points if not is_known(k)]
    if bad:
        message = f"unknown landmark id {bad[0]!r}"
        try:
            get(bad[0])
        except KeyError as err:
            message = str(err)
        raise InputError(f"user landmarks: {message}", hint="use ids of medface.anatomy.landmarks")
    out = {}
    for k, v in points.items():
        p = np.asarray(v, float).reshape(-1)
        if p.shape != (3,) or not np.isfinite(p).all():
            raise InputError(f"user landmark {k!r} must be 3 finite coordinates, got {v!r}")
        out[k] = p * scale
    return out


# --------------------------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------------------------

def _blas_single_thread():
    """Small dense solves run fastest (and steadiest on a busy machine) on one BLAS thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only speed depends on it
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def register_skull(skull, scale: float = 1.0, landmarks=None, *, max_shape_residual_mm: float = MAX_SHAPE_RESIDUAL_MM,
                   seed: int = 0, field_of_view=None) -> Registration:
    """Register the template skull onto ``skull`` (path, :class:`SurfaceMesh` or
    :class:`SkullInput`) in any pose; see the module docstring.

    ``scale`` converts the skull's units to mm; ``landmarks`` (dict, Landmarks or markups path,
    in the skull's units) start the alignment when 3+ are given, pin the non-rigid fit and
    override the transferred landmarks. ``seed`` is accepted for the determinism convention
    (the method itself draws no random numbers). ``field_of_view``, for a skull cut off by a
    scan's range: a function ``inside(points (n, 3) in mm) -> bool (n,)`` (see the module notes);
    the input mesh should then carry no caps where the scan cut the bone.
    """
    with _blas_single_thread():
        return _register(skull, scale, landmarks, max_shape_residual_mm, field_of_view)


def _register(skull, scale, landmarks, max_shape_residual_mm, fov=None) -> Registration:
    times = {}
    t0 = time.perf_counter()
    if isinstance(skull, SkullInput):
        sk = skull
    elif isinstance(skull, SurfaceMesh):
        sk = prepare_skull(skull, scale)
    else:
        sk = load_skull(skull, scale)
    user = user_landmarks(landmarks, sk.scale)
    tpl = template()
    times["input"] = time.perf_counter() - t0

    # point clouds --------------------------------------------------------------------------
    t1 = time.perf_counter()
    mesh = sk.mesh
    normals_in = vertex_normals(mesh.vertices, mesh.faces)
    if mesh.is_watertight() and mesh.signed_volume() < 0:
        normals_in = -normals_in
    used = np.unique(mesh.faces)
    idx = used[grid_sample(mesh.vertices[used], INPUT_POINTS)]
    dst = _Cloud(mesh.vertices[idx], normals_in[idx])
    dense_idx = used[grid_sample(mesh.vertices[used], DENSE_POINTS)]
    dense = _Cloud(mesh.vertices[dense_idx], normals_in[dense_idx])
    # the template cranium (every skull input has one) measures the shape check; the mandible
    # may be missing, loose or posed differently (it gets its own rigid step below)
    t_idx = grid_sample(tpl.vertices[:tpl.n_cranium], TEMPLATE_POINTS)
    src = _Cloud(tpl.vertices[t_idx], tpl.normals[t_idx])
    m_idx = tpl.n_cranium + grid_sample(tpl.vertices[tpl.n_cranium:], TEMPLATE_POINTS // 4)

    # starts: both the cranium-only and the whole template skull, since the input may or may
    # not have a mandible ------------------------------------------------------------------------
    s_idx = grid_sample(tpl.vertices, TEMPLATE_POINTS)
    variants = [src, _Cloud(tpl.vertices[s_idx], tpl.normals[s_idx])]
    shared = [k for k in user if k in tpl.landmarks]
    cj = grid_sample(dst.points, COARSE_POINTS)
    coarse_dst = _Cloud(dst.points[cj], dst.normals[cj])
    scored = []
    for vi, var in enumerate(variants):
        starts = []
        if len(shared) >= 3:
            a = np.array([tpl.landmarks[k] for k in shared])
            b = np.array([user[k] for k in shared])
            starts.append(similarity(a, b))
        else:
            cs, cd = var.points.mean(0), dst.points.mean(0)
            ax_s = np.linalg.svd(var.points - cs, full_matrices=False)[2]
            ax_d = np.linalg.svd(dst.points - cd, full_matrices=False)[2]
            s0 = float(np.sqrt(((dst.points - cd) ** 2).sum(1).mean() / ((var.points - cs) ** 2).sum(1).mean()))
            for m in _signed_permutations():
                r = ax_d.T @ m @ ax_s
                starts.append((s0, r, cd - s0 * r @ cs))
        ci = grid_sample(var.points, COARSE_POINTS)
        coarse_src = _Cloud(var.points[ci], var.normals[ci])
        for s, r, t in starts:
            s, r, t, med_in, med = _icp(coarse_src, coarse_dst, s, r, t, iterations=12, fov=fov)
            scored.append((med_in + med, vi, s, r, t))
    scored.sort(key=lambda x: x[0])
    best = None
    for _, vi, s, r, t in scored[:4]:
        fit = _icp(variants[vi], dst, s, r, t, iterations=40, fov=fov)
        if best is None or fit[3] + fit[4] < best[3] + best[4]:
            best = fit
    s, r, t, med_in, _ = best
    times["similarity"] = time.perf_counter() - t1

    # shape check: how far the aligned template cranium (inside the field of view) lies from the
    # input surface
    aligned = s * src.points @ r.T + t
    inside = _inside(fov, aligned)
    inside_share = len(inside) / len(aligned)
    if inside_share < MIN_INSIDE:
        raise InputError(
            f"only {inside_share:.0%} of the aligned template skull lies inside the scanned field of view "
            f"(at least {MIN_INSIDE:.0%} is needed to register it)", path=mesh.source,
            hint="give a scan that covers the face and the skull base")
    d_cr = dense.tree.query(aligned[inside], workers=1)[0]
    shape_p75 = float(np.quantile(d_cr, 0.75))
    if shape_p75 > max_shape_residual_mm:
        raise InputError(
            f"the surface does not look like a skull: after aligning the template skull (rotation, "
            f"translation, scale {s:.3g}) a quarter of the template cranium lies more than {shape_p75:.1f} mm "
            f"from the input surface, above the {max_shape_residual_mm:g} mm a skull stays within "
            f"(shape check by registration residual)",
            path=mesh.source,
            hint="check that the file is a whole skull surface and the --scale is right" if fov is None else
                 "check the bone threshold (--bone-hu) and that the CT shows the skull (not a limb or a phantom "
                 "without bone)")

    # mandible presence ---------------------------------------------------------------------
    moved_m = s * tpl.vertices[m_idx] @ r.T + t
    m_in = _inside(fov, moved_m)
    coverage = float((dense.tree.query(moved_m[m_in], workers=1)[0] < 10.0).mean()) if len(m_in) >= 10 else 0.0
    mandible_present = sk.mandible_present or coverage >= MANDIBLE_COVERAGE
    # the mandible's own pose (jaw opening, a loose mandible placed differently): a rigid ICP of
    # the template mandible onto the input bone near it
    mand_matrix = np.eye(4)
    if mandible_present:
        if sk.mandible is not None:
            pick = grid_sample(sk.mandible.vertices, INPUT_POINTS)
            normals_m = vertex_normals(sk.mandible.vertices, sk.mandible.faces)
            if sk.mandible.is_watertight() and sk.mandible.signed_volume() < 0:
                normals_m = -normals_m
            local = _Cloud(sk.mandible.vertices[pick], normals_m[pick])
        else:  # fused: the input bone near the template mandible as placed by the similarity stage
            # (not the maxilla, the cervical spine or the hyoid further away)
            near = cKDTree(moved_m).query(dense.points, workers=1)[0] < MANDIBLE_BAND_MM
            local = _Cloud(dense.points[near], dense.normals[near])
        mand_src = _Cloud(moved_m, tpl.normals[m_idx] @ r.T)
        _, mr, mt, _, _ = _icp(mand_src, local, 1.0, np.eye(3), np.zeros(3), iterations=30, scale=False,
                                trim=0.8, fov=fov)
        mand_matrix[:3, :3], mand_matrix[:3, 3] = mr, mt
    warnings = list(sk.warnings)
    if not mandible_present:
        warnings.append(f"no mandible found (only {coverage:.0%} of the template's mandible meets input bone): "
                        f"mandibular landmarks are extrapolated")
    if abs(np.log(s)) > np.log(1.3):
        warnings.append(f"the template had to be scaled by {s:.3g} to fit: check --scale")

    # non-rigid -----------------------------------------------------------------------------
    t2 = time.perf_counter()
    nr_idx = grid_sample(tpl.vertices @ _OBLIQUE, NONRIGID_POINTS)
    nr_mand = tpl.is_mandible[nr_idx]
    if not mandible_present:
        nr_idx, nr_mand = nr_idx[~nr_mand], nr_mand[~nr_mand]
    nr_src = tpl.vertices[nr_idx] @ (s * r).T + t
    nr_n = tpl.normals[nr_idx] @ r.T
    nr_src[nr_mand] = nr_src[nr_mand] @ mand_matrix[:3, :3].T + mand_matrix[:3, 3]
    nr_n[nr_mand] = nr_n[nr_mand] @ mand_matrix[:3, :3].T
    pins = (np.zeros((0, 3)), np.zeros((0, 3)), 0.0)
    if shared:
        pin_src = np.array([s * r @ tpl.landmarks[k] + t for k in shared])
        tpl_tree = cKDTree(tpl.vertices)
        pin_mand = tpl.is_mandible[tpl_tree.query(np.array([tpl.landmarks[k] for k in shared]))[1]]
        pin_src[pin_mand] = pin_src[pin_mand] @ mand_matrix[:3, :3].T + mand_matrix[:3, 3]
        pins = (pin_src, np.array([user[k] for k in shared]), 20.0)
    field_, fitted = _fit_field(nr_src, nr_n, dst, dense, pins, fov=fov)
    times["nonrigid"] = time.perf_counter() - t2

    # outputs -------------------------------------------------------------------------------
    t3 = time.perf_counter()
    all_moved = tpl.vertices @ (s * r).T + t
    all_moved[tpl.n_cranium:] = all_moved[tpl.n_cranium:] @ mand_matrix[:3, :3].T + mand_matrix[:3, 3]
    vertices = all_moved + field_(all_moved)
    tree_in = cKDTree(mesh.vertices[used])
    d_final_in = cKDTree(fitted).query(dst.points, workers=1)[0]
    d_final_t = dense.tree.query(fitted, workers=1)[0]
    fitted_in = _inside(fov, fitted)
    residual = {"similarity_median": med_in, "shape_p75": shape_p75, "final_median": float(np.median(d_final_in)),
                "final_mean": float(d_final_in.mean()), "final_p95": float(np.quantile(d_final_in, 0.95)),
                "template_to_input_median": float(np.median(d_final_t[fitted_in])), "mandible_coverage": coverage}
    observed = None
    if fov is not None:
        observed = np.asarray(fov(vertices), bool)
        residual["template_inside_fov"] = float(observed[:tpl.n_cranium].mean())
        if not observed.all():
            warnings.append(f"the scan cuts the skull: {1 - observed[:tpl.n_cranium].mean():.0%} of the template "
                            "cranium lies outside the scanned field of view and is extrapolated, not observed")

    ids = list(tpl.landmarks)
    tpl_tree = cKDTree(tpl.vertices)
    on_mandible = tpl.is_mandible[tpl_tree.query(np.array([tpl.landmarks[k] for k in ids]))[1]]
    lm_t = np.array([tpl.landmarks[k] for k in ids]) @ (s * r).T + t
    lm_t[on_mandible] = lm_t[on_mandible] @ mand_matrix[:3, :3].T + mand_matrix[:3, 3]
    lm = lm_t + field_(lm_t)
    tree_fit = cKDTree(fitted)
    unc = {}
    source = {}
    lm_inside = np.ones(len(ids), bool) if fov is None else np.asarray(fov(lm), bool)
    for k, p, mand, seen in zip(ids, lm, on_mandible, lm_inside):
        near = tree_fit.query_ball_point(p, 12.0)
        local = d_final_t[near] if near else np.array([np.inf])
        self_d = tree_in.query(p)[0]
        u = float(np.sqrt(np.mean(local ** 2) + self_d ** 2) + 0.5)
        if (mand and not mandible_present) or not seen:
            u = float("inf")
        unc[k] = u
        source[k] = "transferred"
    points = dict(zip(ids, lm))
    for k, p in user.items():
        points[k] = p
        unc[k] = 0.0
        source[k] = "user"
    conf = {k: float(np.exp(-unc[k] / 2.0)) if np.isfinite(unc[k]) else 0.0 for k in points}
    landmarks_out = Landmarks(list(points), np.array(list(points.values())), confidence=conf,
                              name="registered", source=mesh.source)
    matrix = np.eye(4)
    matrix[:3, :3] = s * r
    matrix[:3, 3] = t
    times["outputs"] = time.perf_counter() - t3
    times["total"] = time.perf_counter() - t0
    return Registration(matrix, float(s), field_, vertices, tpl.n_cranium, landmarks_out, unc, source,
                        bool(mandible_present), sk.mandible_present, residual, times, warnings, observed)


# --------------------------------------------------------------------------------------------
# skin in correspondence (for training on a lab's own CT pairs)
# --------------------------------------------------------------------------------------------

SKIN_POINTS = 6000  # template skin points that steer the skin's field


def register_skin(reg: Registration, skin) -> tuple[np.ndarray, dict]:
    """The template skin brought onto a subject's skin surface, in dense correspondence.

    ``reg`` is the registration of the template skull onto the same subject's skull (same frame
    and units, mm); ``skin`` a SurfaceMesh of the subject's skin in any topology. The template
    skin first follows the skull (similarity and the skull's smooth field), then its own
    coarse-to-fine Gaussian field pulls it onto the subject's skin (trimmed bidirectional
    closest points, as for the skull). Returns (vertices (n_template_skin, 3), residuals:
    median and 95th-percentile distance of the result to the subject's skin, mm)."""
    sv = np.asarray(skin.vertices, float)
    if len(sv) < 100 or len(skin.faces) < 100:
        raise InputError(f"the skin surface has only {len(sv)} vertices and {len(skin.faces)} triangles",
                         path=getattr(skin, "source", None), hint="give the whole skin surface of the head")
    from .template import template_head

    tmpl = template_head().skin
    x0 = reg.warp(tmpl.vertices)
    n0 = vertex_normals(x0, tmpl.faces)
    sn = vertex_normals(sv, skin.faces)
    dense_idx = grid_sample(sv, DENSE_POINTS)
    dense = _Cloud(sv[dense_idx], sn[dense_idx])
    dst_idx = grid_sample(sv, SKIN_POINTS)
    dst = _Cloud(sv[dst_idx], sn[dst_idx])
    sub = grid_sample(x0, SKIN_POINTS)
    empty = (np.zeros((0, 3)), np.zeros((0, 3)), 0.0)
    with _blas_single_thread():
        field_, _ = _fit_field(x0[sub], n0[sub], dst, dense, empty)
        out = x0 + field_(x0)
    d = dense.tree.query(out, workers=1)[0]
    return out, {"median_mm": float(np.median(d)), "p95_mm": float(np.percentile(d, 95))}
