"""Register the phantom template skull (cranium + mandible) onto an input skull in any pose.

Four steps, all on subsampled points (a few thousand per side):

1. **Starts**: the principal axes of the template (cranium only, and cranium + mandible, since
   the input may lack its mandible) are matched to the input's in all 24 proper signed axis
   permutations, or, given 3+ user landmarks, a landmark similarity fit is the start; all starts
   run side by side (:func:`~medface.anatomy.registration.icp_batch`) through 4 coarse ICP steps,
   the best 16 through 12, and the best four (those within :data:`COARSE_MARGIN_MM` of the best)
   go on.
2. **Similarity ICP** (Besl & McKay 1992, with Umeyama's 1991 closed-form similarity): closest
   points in both directions, pairs with opposed normals dropped, the worst 15 % trimmed
   (robust to a missing mandible or extra debris); a start that falls clearly behind the best
   (or meets a better one of its variant) stops early (:data:`REFINE_CHECKS`). Then the
   mandible: present if a separate mandible component was found or 50 % of the template's
   mandible lies within 10 mm of input bone; if present, it gets its own rigid ICP (jaw
   opening, a loose mandible placed apart) onto that component, or onto the input bone within
   15 mm of the template mandible when it is fused (not the maxilla or a CT's cervical spine
   further away).
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

The geometry (Umeyama fits, trimmed ICP, the Gaussian field) is the core's
(:mod:`medface.anatomy.registration`); this module adds what is specific to skulls. In Python
the stages can be run one by one and each returns its residuals::

    reg = SkullRegistration(skull_mesh)             # a path, SurfaceMesh or SkullInput
    pose = reg.initial_pose()                       # InitialPose: ranked starts
    sim = reg.similarity(pose)                      # SimilarityFit: transform, mandible, shape check
    nonrigid = reg.fit_field(sim)                   # NonRigidFit: the displacement field
    registration = reg.registration(sim, nonrigid)  # Registration
    registration = SkullRegistration(skull_mesh).run()  # the same in one call (= register_skull)
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from medface.anatomy.registration import (DisplacementField, Pins, PointCloud, Similarity, fit_displacement_field,
                                          grid_sample, icp, icp_batch, umeyama)
from medface.data import Landmarks, SurfaceMesh
from medface.data.mesh import outward_normals, vertex_normals
from medface.errors import InputError

from .skull_input import SkullInput, load_skull, prepare_skull

__all__ = ["SkullRegistration", "InitialPose", "RankedStart", "SimilarityFit", "NonRigidFit", "Registration",
           "register_skull", "register_skin", "user_landmarks", "template", "Template"]

TEMPLATE_POINTS = 3000  # template points for the similarity stage
COARSE_POINTS = 800  # per side, for scoring the starts
# coarse ICP steps per start: every start gets the first COARSE_STEPS[0], the best COARSE_KEPT
# of them the rest, up to COARSE_STEPS[1] (on whole, holed and mandible-less phantom skulls the
# four best after 12 steps ranked 7th or better after 4; a fragment's search, where they ranked
# down to 31st, gives every start all 12)
COARSE_STEPS = (4, 12)
COARSE_KEPT = 16
REFINED_STARTS = 4  # the best starts that get the full similarity ICP
# ... unless their coarse score (mm) trails the best by more than this: on 16 phantom skulls the
# start that ended best trailed by at most 1.4 mm, the starts in a wrong pose by 2.7 mm or more
COARSE_MARGIN_MM = 2.5
REFINE_STEPS = 40
# (steps, margin mm): after that many steps a refined start whose score trails the best by more
# than the margin stops. On 16 phantom skulls (whole, holed, without mandible, anterior half) the
# starts in a wrong pose trailed by 1.8 mm or more after 5 steps, and the start that ended best
# after 40 steps trailed by at most 0.9 mm after 5, 0.6 mm after 10 and 0.3 mm after 20. Of two
# starts of one template variant that have met (their template points within SAME_POSE_MM, RMS)
# only the better one goes on.
REFINE_CHECKS = ((5, 1.5), (10, 1.0), (20, 0.75))
SAME_POSE_MM = 2.0
NONRIGID_POINTS = 8000  # template points for the non-rigid stage
INPUT_POINTS = 8000  # input points that find their closest template point
# 75th percentile of template-cranium-to-input distances after the similarity stage: phantom
# skulls about 2 mm, the stylised public skull_low_resolution.obj 7.5 mm, a skull-sized ellipsoid
# 12.7 mm, a sphere 16 mm, a box 16 mm
MAX_SHAPE_RESIDUAL_MM = 10.0
MANDIBLE_COVERAGE = 0.5  # fraction of template mandible points with input bone within 10 mm
MANDIBLE_BAND_MM = 15.0  # a fused mandible is fitted to the input bone this close to the template's
MIN_INSIDE = 0.25  # with a field of view: least share of the aligned template cranium inside it
# A fragment (a facial skeleton without its vault, a skull cut by a saw): after the similarity
# fit, template points within FRAGMENT_NEAR_MM of bone count as present. The input is taken as a
# fragment when at least MIN_FRAGMENT_SHARE of the template cranium is present and the template
# explains the input (FRAGMENT_EXPLAINED of its points within FRAGMENT_NEAR_MM of the template)
# and the facial skeleton is there (MIN_FACIAL_LANDMARKS);
# the present part then plays the role of a CT's field of view (the rest seeks no partner).
FRAGMENT_NEAR_MM = 8.0
# the template scaled by more than this factor (or less than its inverse) to fit: not an adult skull in mm
TEMPLATE_SCALE_LIMIT = 1.3
MIN_FRAGMENT_SHARE = 0.25
FRAGMENT_EXPLAINED = 0.7
# ... and a fragment worth reconstructing holds the facial skeleton: this share of the template's
# facial landmarks must lie within FRAGMENT_NEAR_MM of its bone (a ball or a vault alone does not)
FACIAL_LANDMARKS = ("n", "rhi", "ans", "pr", "or_l", "or_r", "zy_l", "zy_r", "fmo_l", "fmo_r")
MIN_FACIAL_LANDMARKS = 0.75
FRAGMENT_STARTS = 4
DENSE_POINTS = 25000  # input points that closest points are taken from
PIN_WEIGHT = 20.0  # a user landmark pulls on the field like this many closest-point pairs
LANDMARK_RADIUS_MM = 12.0  # the fit residual around a landmark enters its uncertainty


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
    """The template skull (cranium then mandible vertices), its craniometric landmarks and the
    point samples every registration starts from (computed once)."""

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

    @functools.cached_property
    def tree(self) -> cKDTree:
        return cKDTree(self.vertices)

    def _cloud(self, indices: np.ndarray) -> PointCloud:
        return PointCloud(self.vertices[indices], self.normals[indices])

    @functools.cached_property
    def cranium_cloud(self) -> PointCloud:
        """The cranium (every skull input has one): it measures the shape check."""
        return self._cloud(grid_sample(self.vertices[:self.n_cranium], TEMPLATE_POINTS))

    @functools.cached_property
    def skull_cloud(self) -> PointCloud:
        """Cranium and mandible: the other start, for inputs with their mandible."""
        return self._cloud(grid_sample(self.vertices, TEMPLATE_POINTS))

    @functools.cached_property
    def mandible_indices(self) -> np.ndarray:
        return self.n_cranium + grid_sample(self.vertices[self.n_cranium:], TEMPLATE_POINTS // 4)

    @functools.cached_property
    def nonrigid_indices(self) -> np.ndarray:
        return grid_sample(self.vertices @ _OBLIQUE, NONRIGID_POINTS)

    def on_mandible(self, points: np.ndarray) -> np.ndarray:
        """Whether each template-frame point lies nearest a mandible vertex."""
        return self.is_mandible[self.tree.query(np.asarray(points, float))[1]]


@functools.lru_cache(maxsize=1)
def template() -> Template:
    """The template skull of :func:`.template.template_head` with its craniometric landmarks."""
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
# stage results
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankedStart:
    """A start of the similarity stage after a few coarse ICP steps: its ``score`` (mm, target
    median + pair median), the template ``variant`` (0: cranium, 1: cranium + mandible) and the
    ``transform`` (template -> input)."""

    score: float
    variant: int
    transform: Similarity


@dataclass(frozen=True)
class InitialPose:
    """Stage 1: every start (24 principal-axis poses per template variant, or the landmark fit),
    best first."""

    starts: list[RankedStart]
    seconds: float

    @property
    def best(self) -> RankedStart:
        return self.starts[0]

    @property
    def residual_mm(self) -> dict:
        return {"coarse_score": self.best.score}


@dataclass(frozen=True)
class SimilarityFit:
    """Stage 2: the similarity transform (template -> input), the mandible's own rigid move
    after it (identity without a mandible), and ``residual_mm`` (``similarity_median``: input to
    template, ``shape_p75``: the shape check, ``mandible_coverage``)."""

    transform: Similarity
    mandible: Similarity
    mandible_present: bool
    residual_mm: dict
    warnings: list[str]
    seconds: float

    def place(self, points: np.ndarray, on_mandible: np.ndarray | None = None) -> np.ndarray:
        """Template-frame points in the input frame; those ``on_mandible`` follow the mandible."""
        s, r, t = self.transform
        out = np.asarray(points, float) @ (s * r).T + t
        if on_mandible is not None and on_mandible.any():
            out[on_mandible] = out[on_mandible] @ self.mandible.rotation.T + self.mandible.translation
        return out


@dataclass(frozen=True)
class NonRigidFit:
    """Stage 3: the smooth displacement field (input frame, after the similarity), the sampled
    template points it fitted, their distances to the input, and ``residual_mm``
    (``final_median``/``final_mean``/``final_p95``: input to fitted template,
    ``template_to_input_median``)."""

    field: DisplacementField
    fitted: np.ndarray
    to_input_mm: np.ndarray
    residual_mm: dict
    seconds: float


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

    @property
    def cranium(self) -> np.ndarray:
        """The registered template cranium's vertices (in correspondence with any model's)."""
        return self.vertices[: self.n_cranium]

    @property
    def mandible(self) -> np.ndarray | None:
        """The registered template mandible's vertices, None when the input has no mandible."""
        return self.vertices[self.n_cranium:] if self.mandible_present else None

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
# the registration in stages
# --------------------------------------------------------------------------------------------

def single_blas_thread():
    """A context on one BLAS thread: small dense solves (ICP's 3x3 fits, the latent system of
    about 150 components) are fastest so, and on a busy two-core machine a second BLAS thread
    waiting for a core made them up to ten times slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def one_blas_thread(function):
    """``function`` run in :func:`single_blas_thread`."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return function(*args, **kwargs)

    return wrapper


def _as_skull_input(skull, scale: float) -> SkullInput:
    if isinstance(skull, SkullInput):
        return skull
    if isinstance(skull, SurfaceMesh):
        return prepare_skull(skull, scale)
    return load_skull(skull, scale)


def scale_warning(template_scale: float, input_scale: float) -> str:
    """What to say when the template had to be scaled far from 1 to fit: the skull is not adult-
    sized in mm at the ``input_scale`` used, and the scale that would make it so."""
    found = input_scale / template_scale
    return (f"the template had to be scaled by {template_scale:.3g} to fit: at --scale {input_scale:g} the skull is "
            f"{'smaller' if template_scale < 1 else 'larger'} than the adult template by that factor; the registration "
            f"finds about --scale {found:.3g} (check the file's units, or that the skull is an adult's)")


@dataclass(frozen=True)
class NearBone:
    """The field of view of a fragment: points within ``radius_mm`` of the input bone."""

    tree: object  # scipy.spatial.cKDTree of the input bone's points
    radius_mm: float

    def __call__(self, points: np.ndarray, margin_mm: float = 0.0) -> np.ndarray:
        return self.tree.query(np.asarray(points, float), workers=1)[0] < self.radius_mm - margin_mm


def _inside(fov, points: np.ndarray) -> np.ndarray:
    """Indices of ``points`` inside the field of view (all of them without one)."""
    return np.arange(len(points)) if fov is None else np.flatnonzero(fov(points))


@dataclass(frozen=True)
class _InputClouds:
    """The input skull as point samples: ``target`` (what the template is pulled onto) and
    ``dense`` (where closest points are taken from); ``used`` are the mesh vertices in a face."""

    target: PointCloud
    dense: PointCloud
    used: np.ndarray

    @classmethod
    def of(cls, mesh: SurfaceMesh) -> _InputClouds:
        normals = outward_normals(mesh)
        used = np.unique(mesh.faces)
        idx = used[grid_sample(mesh.vertices[used], INPUT_POINTS)]
        dense = used[grid_sample(mesh.vertices[used], DENSE_POINTS)]
        return cls(PointCloud(mesh.vertices[idx], normals[idx]), PointCloud(mesh.vertices[dense], normals[dense]), used)


def _axis_starts(var: PointCloud, dst: PointCloud) -> list[Similarity]:
    """The template's principal axes matched to the input's in the 24 proper signed axis
    permutations, scaled by the ratio of the RMS radii."""
    cs, cd = var.points.mean(0), dst.points.mean(0)
    ax_s = np.linalg.svd(var.points - cs, full_matrices=False)[2]
    ax_d = np.linalg.svd(dst.points - cd, full_matrices=False)[2]
    s0 = float(np.sqrt(((dst.points - cd) ** 2).sum(1).mean() / ((var.points - cs) ** 2).sum(1).mean()))
    starts = []
    for m in _signed_permutations():
        r = ax_d.T @ m @ ax_s
        starts.append(Similarity(s0, r, cd - s0 * r @ cs))
    return starts


def _pose_gap(points: np.ndarray, a: Similarity, b: Similarity) -> float:
    """The RMS distance (mm) between ``points`` placed by two similarity transforms."""
    return float(np.sqrt(((a.apply(points) - b.apply(points)) ** 2).sum(1).mean()))


def _signed_permutations() -> list[np.ndarray]:
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                mats.append(m)
    return mats


class SkullRegistration:
    """The template skull registered onto one input skull, stage by stage (module docstring).

    ``skull`` is a path, :class:`SurfaceMesh` or :class:`SkullInput`; ``scale`` converts its
    units to mm; ``landmarks`` (dict, Landmarks or markups path, in the skull's units) start the
    alignment when 3+ are given, pin the non-rigid fit and override the transferred landmarks;
    ``field_of_view`` (``inside(points (n, 3) mm) -> bool (n,)``) marks a scan's range. The
    input is read and checked here; each stage method returns a typed result with residuals."""

    def __init__(self, skull, scale: float = 1.0, landmarks=None, *, field_of_view=None,
                 max_shape_residual_mm: float = MAX_SHAPE_RESIDUAL_MM):
        t0 = time.perf_counter()
        self.skull = _as_skull_input(skull, scale)
        self.user = user_landmarks(landmarks, self.skull.scale)
        self.template = template()
        self.field_of_view = field_of_view
        self.fragment_warning = None
        self.max_shape_residual_mm = float(max_shape_residual_mm)
        self.clouds = _InputClouds.of(self.skull.mesh)
        self.shared = [k for k in self.user if k in self.template.landmarks]
        self.input_seconds = time.perf_counter() - t0

    # ---- stage 1
    @one_blas_thread
    def initial_pose(self) -> InitialPose:
        """Every start after coarse ICP steps on about 800 points per side (all starts side by
        side, :func:`icp_batch`): 4 steps each, 12 for the best :data:`COARSE_KEPT`; best first."""
        return self._initial_pose(COARSE_KEPT)

    def _initial_pose(self, kept: int | None) -> InitialPose:
        """:meth:`initial_pose`; ``kept`` None: every start gets all 12 coarse steps."""
        t0 = time.perf_counter()
        coarse_dst = self.clouds.target.sampled(COARSE_POINTS)
        sources = [var.sampled(COARSE_POINTS) for var in (self.template.cranium_cloud, self.template.skull_cloud)]
        starts = [(vi, start) for vi, var in enumerate((self.template.cranium_cloud, self.template.skull_cloud))
                  for start in self._starts(var)]
        fits = [None] * len(starts)
        todo, done = list(range(len(starts))), 0
        for steps in (COARSE_STEPS if kept is not None else COARSE_STEPS[-1:]):
            for vi, src in enumerate(sources):
                mine = [k for k in todo if starts[k][0] == vi]
                begin = [fits[k].transform if fits[k] is not None else starts[k][1] for k in mine]
                for k, fit in zip(mine, icp_batch(src, coarse_dst, begin, iterations=steps - done,
                                                  field_of_view=self.field_of_view)):
                    fits[k] = fit
            done = steps
            todo = sorted(todo, key=lambda k: fits[k].score)[:kept]
        ranked = sorted((RankedStart(fit.score, starts[k][0], fit.transform) for k, fit in enumerate(fits)),
                        key=lambda x: x.score)
        return InitialPose(ranked, time.perf_counter() - t0)

    def _starts(self, var: PointCloud) -> list[Similarity]:
        if len(self.shared) >= 3:
            a = np.array([self.template.landmarks[k] for k in self.shared])
            b = np.array([self.user[k] for k in self.shared])
            return [umeyama(a, b)]
        return _axis_starts(var, self.clouds.target)

    # ---- stage 2
    @one_blas_thread
    def similarity(self, pose: InitialPose | None = None) -> SimilarityFit:
        """Similarity ICP from the best starts, the shape check (:class:`InputError` for a
        surface that is no skull) and the mandible's presence and own rigid fit."""
        pose = pose if pose is not None else self.initial_pose()
        t0 = time.perf_counter()
        best = self._refine(pose)
        try:
            shape_p75 = self._shape_check(best.transform)
        except InputError as error:
            if self.field_of_view is not None:
                raise
            best = self._fit_as_fragment(error, best)
            shape_p75 = self._shape_check(best.transform)
        present, coverage, mandible = self._fit_mandible(best.transform)
        warnings = list(self.skull.warnings) + ([self.fragment_warning] if self.fragment_warning else [])
        if not present:
            warnings.append(f"no mandible found (only {coverage:.0%} of the template's mandible meets input bone): "
                            f"mandibular landmarks are extrapolated")
        if abs(np.log(best.transform.scale)) > np.log(TEMPLATE_SCALE_LIMIT):
            warnings.append(scale_warning(best.transform.scale, self.skull.scale))
        residual = {"similarity_median": best.target_median, "shape_p75": shape_p75, "mandible_coverage": coverage}
        return SimilarityFit(best.transform, mandible, present, residual, warnings, time.perf_counter() - t0)

    def _refine(self, pose: InitialPose):
        """The best similarity ICP result from the best starts, each run for
        :data:`REFINE_STEPS` steps unless it falls behind at a check (:data:`REFINE_CHECKS`)."""
        variants = (self.template.cranium_cloud, self.template.skull_cloud)
        lead = pose.starts[0].score
        runs = [(start.variant, start.transform) for start in pose.starts[:REFINED_STARTS]
                if start.score <= lead + COARSE_MARGIN_MM]
        done, fits = 0, []
        for steps, margin in REFINE_CHECKS + ((REFINE_STEPS, None),):
            fits = []
            for vi, var in enumerate(variants):  # the runs of one template variant side by side
                mine = [transform for variant, transform in runs if variant == vi]
                fits += [(vi, fit) for fit in icp_batch(var, self.clouds.target, mine, iterations=steps - done,
                                                        field_of_view=self.field_of_view)]
            done = steps
            if margin is None:
                break
            lead = min(fit.score for _, fit in fits)
            runs = []
            for variant, fit in sorted(fits, key=lambda run: run[1].score):
                if fit.score > lead + margin or any(
                        v == variant and _pose_gap(variants[variant].points, fit.transform, t) < SAME_POSE_MM
                        for v, t in runs):
                    continue
                runs.append((variant, fit.transform))
        return min((fit for _, fit in fits), key=lambda fit: fit.score)

    def _fragment_shares(self, transform: Similarity) -> tuple[float, float]:
        """(share of the input within FRAGMENT_NEAR_MM of the aligned template skull, share of the
        template cranium within it of the input)."""
        s, r, t = transform
        skull = s * self.template.skull_cloud.points @ r.T + t
        cranium = s * self.template.cranium_cloud.points @ r.T + t
        explained = cKDTree(skull).query(self.clouds.target.points, workers=1)[0] < FRAGMENT_NEAR_MM
        return float(explained.mean()), float(self.field_of_view(cranium).mean())

    def _facial_share(self, transform: Similarity) -> float:
        """The share of the template's facial landmarks that lie within FRAGMENT_NEAR_MM of the bone."""
        ids = [k for k in FACIAL_LANDMARKS if k in self.template.landmarks]
        s, r, t = transform
        at = s * np.array([self.template.landmarks[k] for k in ids]) @ r.T + t
        return float((self.clouds.dense.tree.query(at, workers=1)[0] < FRAGMENT_NEAR_MM).mean()) if ids else 0.0

    def _fit_as_fragment(self, error: InputError, whole):
        """The similarity fit of a fragment (see FRAGMENT_NEAR_MM): the search is run again with
        only template points near the bone seeking partners; ``error`` (the whole-skull shape
        check's) is raised again when the input is no fragment of a skull either."""
        self.field_of_view = NearBone(self.clouds.dense.tree, FRAGMENT_NEAR_MM)
        variants = (self.template.cranium_cloud, self.template.skull_cloud)
        best, explained, present = None, -1.0, None
        # a part's principal axes say little about the whole: the best coarse starts by score and
        # by how much of the input the template explains under them are refined, and the winner
        # is the pose that explains most (every coarse start gets all its steps here: the ranking
        # by share looks at all of them)
        ranked = self._initial_pose(None).starts  # best coarse score first
        by_share = sorted(ranked, key=lambda st: -self._fragment_shares(st.transform)[0])
        starts = [(1, whole.transform)] + [(st.variant, st.transform) for st in
                                           {id(st): st for st in ranked[:FRAGMENT_STARTS] + by_share[:FRAGMENT_STARTS]}.values()]
        fits = [None] * len(starts)
        for vi, var in enumerate(variants):  # the starts of one template variant side by side
            mine = [k for k, (variant, _) in enumerate(starts) if variant == vi]
            for k, fit in zip(mine, icp_batch(var, self.clouds.target, [starts[k][1] for k in mine], iterations=40,
                                              field_of_view=self.field_of_view)):
                fits[k] = fit
        for fit in fits:
            share, seen = self._fragment_shares(fit.transform)
            if share > explained:
                best, explained, present = fit, share, seen
        if present < MIN_FRAGMENT_SHARE or explained < FRAGMENT_EXPLAINED or \
                self._facial_share(best.transform) < MIN_FACIAL_LANDMARKS:
            self.field_of_view = None
            raise InputError(error.message, path=error.path,
                             hint=f"{error.hint}; if it is a fragment of a skull (no vault, a facial skeleton), place "
                                  "3 or more craniometric landmarks on it (--landmarks) to start the alignment "
                                  f"(without them the template explained at most {explained:.0%} of it)") from None
        self.fragment_warning = (f"the input covers only {present:.0%} of the template cranium: it is treated as a "
                                 "fragment, the skull is fitted to the part that is there and the rest (and the face over "
                                 "it) is extrapolated by the model, with a growing uncertainty")
        return best

    def _shape_check(self, transform: Similarity) -> float:
        """The 75th percentile of the distances from the aligned template cranium (inside the
        field of view) to the input; InputError above ``max_shape_residual_mm``."""
        s, r, t = transform
        aligned = s * self.template.cranium_cloud.points @ r.T + t
        inside = _inside(self.field_of_view, aligned)
        inside_share = len(inside) / len(aligned)
        source = self.skull.mesh.source
        if inside_share < MIN_INSIDE:
            raise InputError(
                f"only {inside_share:.0%} of the aligned template skull lies inside the scanned field of view "
                f"(at least {MIN_INSIDE:.0%} is needed to register it)", path=source,
                hint="give a scan that covers the face and the skull base")
        shape_p75 = float(np.quantile(self.clouds.dense.tree.query(aligned[inside], workers=1)[0], 0.75))
        if shape_p75 > self.max_shape_residual_mm:
            raise InputError(
                f"the surface does not look like a skull: after aligning the template skull (rotation, "
                f"translation, scale {s:.3g}) a quarter of the template cranium lies more than {shape_p75:.1f} mm "
                f"from the input surface, above the {self.max_shape_residual_mm:g} mm a skull stays within "
                f"(shape check by registration residual)", path=source,
                hint="check that the file is a whole skull surface and the --scale is right"
                if self.field_of_view is None else
                "check the bone threshold (--bone-hu) and that the CT shows the skull (not a limb or a phantom "
                "without bone)")
        return shape_p75

    def _fit_mandible(self, transform: Similarity) -> tuple[bool, float, Similarity]:
        """Whether the input has a mandible (a separate component, or half of the template's
        within 10 mm of input bone) and, if so, the template mandible's own rigid ICP onto the
        input bone near it (jaw opening, a loose mandible placed differently)."""
        s, r, t = transform
        tpl, dense, fov = self.template, self.clouds.dense, self.field_of_view
        m_idx = tpl.mandible_indices
        moved_m = s * tpl.vertices[m_idx] @ r.T + t
        m_in = _inside(fov, moved_m)
        coverage = float((dense.tree.query(moved_m[m_in], workers=1)[0] < 10.0).mean()) if len(m_in) >= 10 else 0.0
        present = self.skull.mandible_present or coverage >= MANDIBLE_COVERAGE
        if not present:
            return False, coverage, Similarity.identity()
        if self.skull.mandible is not None:
            mandible = self.skull.mandible
            pick = grid_sample(mandible.vertices, INPUT_POINTS)
            local = PointCloud(mandible.vertices[pick], outward_normals(mandible)[pick])
        else:  # fused: the input bone near the template mandible as placed by the similarity stage
            # (not the maxilla, the cervical spine or the hyoid further away)
            local = dense.subset(cKDTree(moved_m).query(dense.points, workers=1)[0] < MANDIBLE_BAND_MM)
        fit = icp(PointCloud(moved_m, tpl.normals[m_idx] @ r.T), local, Similarity.identity(), iterations=30,
                  scale=False, trim=0.8, field_of_view=fov)
        return True, coverage, fit.transform

    # ---- stage 3
    @one_blas_thread
    def fit_field(self, sim: SimilarityFit) -> NonRigidFit:
        """The coarse-to-fine Gaussian displacement field on about 8000 template points (the
        mandible's only when present), pinned by the user landmarks."""
        t0 = time.perf_counter()
        tpl = self.template
        idx = tpl.nonrigid_indices
        on_mandible = tpl.is_mandible[idx]
        if not sim.mandible_present:
            idx, on_mandible = idx[~on_mandible], on_mandible[~on_mandible]
        points = sim.place(tpl.vertices[idx], on_mandible)
        normals = tpl.normals[idx] @ sim.transform.rotation.T
        normals[on_mandible] = normals[on_mandible] @ sim.mandible.rotation.T
        fit = fit_displacement_field(points, normals, self.clouds.target, self.clouds.dense, pins=self._pins(sim),
                                     field_of_view=self.field_of_view)
        d_in = cKDTree(fit.moved).query(self.clouds.target.points, workers=1)[0]
        d_t = self.clouds.dense.tree.query(fit.moved, workers=1)[0]
        residual = {"final_median": float(np.median(d_in)), "final_mean": float(d_in.mean()),
                    "final_p95": float(np.quantile(d_in, 0.95)),
                    "template_to_input_median": float(np.median(d_t[_inside(self.field_of_view, fit.moved)]))}
        return NonRigidFit(fit.field, fit.moved, d_t, residual, time.perf_counter() - t0)

    def _pins(self, sim: SimilarityFit) -> Pins | None:
        if not self.shared:
            return None
        tpl_points = np.array([self.template.landmarks[k] for k in self.shared])
        s, r, t = sim.transform
        source = np.array([s * r @ self.template.landmarks[k] + t for k in self.shared])
        mand = self.template.on_mandible(tpl_points)
        source[mand] = source[mand] @ sim.mandible.rotation.T + sim.mandible.translation
        return Pins(source, np.array([self.user[k] for k in self.shared]), PIN_WEIGHT)

    # ---- result
    @one_blas_thread
    def registration(self, sim: SimilarityFit, nonrigid: NonRigidFit, *, seconds: dict | None = None) -> Registration:
        """The template's vertices and landmarks carried onto the input, with their uncertainty."""
        t0 = time.perf_counter()
        tpl, fov = self.template, self.field_of_view
        moved = sim.place(tpl.vertices, tpl.is_mandible)
        vertices = moved + nonrigid.field(moved)
        residual = {"similarity_median": sim.residual_mm["similarity_median"], "shape_p75": sim.residual_mm["shape_p75"],
                    **nonrigid.residual_mm, "mandible_coverage": sim.residual_mm["mandible_coverage"]}
        warnings, observed = list(sim.warnings), None
        if fov is not None:
            observed = np.asarray(fov(vertices), bool)
            residual["template_inside_fov"] = float(observed[:tpl.n_cranium].mean())
            if not observed.all() and not isinstance(fov, NearBone):  # a fragment has its own warning
                warnings.append(f"the scan cuts the skull: {1 - observed[:tpl.n_cranium].mean():.0%} of the template "
                                "cranium lies outside the scanned field of view and is extrapolated, not observed")
        points, unc, source = self._landmarks(sim, nonrigid)
        conf = {k: float(np.exp(-unc[k] / 2.0)) if np.isfinite(unc[k]) else 0.0 for k in points}
        landmarks = Landmarks(list(points), np.array(list(points.values())), confidence=conf, name="registered",
                              source=self.skull.mesh.source)
        times = dict(seconds or {}, outputs=time.perf_counter() - t0)
        times["total"] = sum(times.values())
        return Registration(sim.transform.matrix, float(sim.transform.scale), nonrigid.field, vertices, tpl.n_cranium,
                            landmarks, unc, source, bool(sim.mandible_present), self.skull.mandible_present, residual,
                            times, warnings, observed)

    def _landmarks(self, sim: SimilarityFit, nonrigid: NonRigidFit) -> tuple[dict, dict, dict]:
        """Landmark positions, uncertainty (mm) and source: the template's transferred (the fit
        residual around each and its distance to the input; infinite where extrapolated), then
        the user's (exact)."""
        tpl = self.template
        ids = list(tpl.landmarks)
        at = np.array([tpl.landmarks[k] for k in ids])
        on_mandible = tpl.on_mandible(at)
        placed = sim.place(at, on_mandible)
        lm = placed + nonrigid.field(placed)
        tree_fit = cKDTree(nonrigid.fitted)
        tree_in = cKDTree(self.skull.mesh.vertices[self.clouds.used], balanced_tree=False, compact_nodes=False)
        seen = np.ones(len(ids), bool) if self.field_of_view is None else np.asarray(self.field_of_view(lm), bool)
        unc = {}
        for k, p, mand, inside in zip(ids, lm, on_mandible, seen):
            near = tree_fit.query_ball_point(p, LANDMARK_RADIUS_MM)
            local = nonrigid.to_input_mm[near] if near else np.array([np.inf])
            u = float(np.sqrt(np.mean(local ** 2) + tree_in.query(p)[0] ** 2) + 0.5)
            unc[k] = float("inf") if (mand and not sim.mandible_present) or not inside else u
        points, source = dict(zip(ids, lm)), dict.fromkeys(ids, "transferred")
        for k, p in self.user.items():
            points[k], unc[k], source[k] = p, 0.0, "user"
        return points, unc, source

    def run(self, progress: Callable[[str], None] | None = None) -> Registration:
        """All stages in order (what :func:`register_skull` does); ``progress`` gets a line per stage."""
        say = progress or (lambda text: None)
        say("registering the template skull: starts")
        pose = self.initial_pose()
        say("registering the template skull: similarity and mandible")
        sim = self.similarity(pose)
        say("registering the template skull: non-rigid field")
        nonrigid = self.fit_field(sim)
        seconds = {"input": self.input_seconds, "similarity": pose.seconds + sim.seconds, "nonrigid": nonrigid.seconds}
        return self.registration(sim, nonrigid, seconds=seconds)


def register_skull(skull, scale: float = 1.0, landmarks=None, *, max_shape_residual_mm: float = MAX_SHAPE_RESIDUAL_MM,
                   seed: int = 0, field_of_view=None) -> Registration:
    """Register the template skull onto ``skull`` (path, :class:`SurfaceMesh` or
    :class:`SkullInput`) in any pose; see the module docstring and :class:`SkullRegistration`.

    ``seed`` is accepted for the determinism convention (the method itself draws no random
    numbers). With a ``field_of_view`` the input mesh should carry no caps where the scan cut
    the bone."""
    return SkullRegistration(skull, scale, landmarks, field_of_view=field_of_view,
                             max_shape_residual_mm=max_shape_residual_mm).run()


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
    cloud = PointCloud(sv, vertex_normals(sv, skin.faces))
    dense, dst = cloud.sampled(DENSE_POINTS), cloud.sampled(SKIN_POINTS)
    sub = grid_sample(x0, SKIN_POINTS)
    with single_blas_thread():
        fit = fit_displacement_field(x0[sub], n0[sub], dst, dense)
        out = x0 + fit.field(x0)
    d = dense.tree.query(out, workers=1)[0]
    return out, {"median_mm": float(np.median(d)), "p95_mm": float(np.percentile(d, 95))}
