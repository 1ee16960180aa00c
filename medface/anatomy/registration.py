"""Registration geometry shared by every plugin: similarity fits, trimmed ICP, smooth deformations.

Three building blocks, each in one place:

- :func:`umeyama`: the weighted least-squares similarity (or rigid) transform between
  corresponding 2-D or 3-D point sets (Umeyama 1991, IEEE PAMI 13: 376-380), as a
  :class:`Similarity` ``(scale, rotation, translation)`` with ``dst ~ scale * R @ src + t``.
- :func:`icp`: trimmed bidirectional ICP (Besl & McKay 1992) of one :class:`PointCloud` onto
  another, with Umeyama's closed form in every step: closest points in both directions, pairs
  whose normals disagree dropped, the worst pairs trimmed, and optionally a field of view
  outside which source points look for no partner (a scan that cuts the surface). Returns an
  :class:`ICPResult` (transform and residuals); :func:`icp_batch` runs many starts side by side.
- :class:`DisplacementField` and :func:`fit_displacement_field`: a smooth non-rigid
  displacement, a sum of Gaussian kernels on control points with a kernel-norm penalty (the
  motion-coherence regulariser of coherent point drift, Myronenko & Song 2010, IEEE PAMI 32:
  2262-2275), fitted coarse to fine to bidirectional closest-point pairs; optional
  :class:`Pins` (e.g. user landmarks) pull chosen points onto given targets.

All of it works on plain arrays (millimetres in LPS for surfaces, pixels for 2-D landmarks),
draws no random numbers and reads no files.

::

    fit = umeyama(src, dst)                  # Similarity; fit.apply(src) ~ dst
    res = icp(PointCloud(p, n), PointCloud(q, m), fit)
    warp = fit_displacement_field(res.transform.apply(p), n, PointCloud(q, m))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ..errors import InputError
from ..threads import query_workers

__all__ = ["Similarity", "umeyama", "grid_sample", "PointCloud", "closest_pairs", "ICPResult", "icp", "icp_batch",
           "DisplacementField", "gaussian_kernel", "Pins", "FieldFit", "fit_displacement_field",
           "TRIM", "KERNEL_WIDTHS_MM", "CONTROL_POINTS", "SMOOTHNESS", "ITERATIONS_PER_LEVEL"]

TRIM = 0.85  # ICP keeps the closest 85 % of the normal-compatible pairs
MIN_SPREAD = 1e-9  # weighted mean squared distance to the centroid below which points coincide
KERNEL_WIDTHS_MM = (80.0, 50.0, 30.0, 18.0)  # coarse-to-fine Gaussian widths of the displacement field
CONTROL_POINTS = 300
SMOOTHNESS = 0.3  # kernel-norm weight per pair; 0.01 lets a field slide and fold
ITERATIONS_PER_LEVEL = 8
FIELD_TRIM = 0.9

FieldOfView = Callable[[np.ndarray], np.ndarray]  # points (n, d) -> inside (n,) bool


# --------------------------------------------------------------------------------------------
# similarity
# --------------------------------------------------------------------------------------------

class Similarity(NamedTuple):
    """``x -> scale * rotation @ x + translation`` in 2-D or 3-D; unpacks as ``(s, R, t)``."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls, dim: int = 3) -> Similarity:
        return cls(1.0, np.eye(dim), np.zeros(dim))

    @property
    def dim(self) -> int:
        return len(self.translation)

    @property
    def linear(self) -> np.ndarray:
        """``scale * rotation`` (d, d)."""
        return self.scale * self.rotation

    @property
    def affine(self) -> np.ndarray:
        """The (d, d + 1) matrix ``[s R | t]`` (for 2-D: OpenCV's ``warpAffine`` form)."""
        m = np.zeros((self.dim, self.dim + 1))
        m[:, :self.dim] = self.scale * self.rotation
        m[:, self.dim] = self.translation
        return m

    @property
    def matrix(self) -> np.ndarray:
        """The homogeneous (d + 1, d + 1) matrix."""
        m = np.eye(self.dim + 1)
        m[:self.dim] = self.affine
        return m

    def apply(self, points: np.ndarray) -> np.ndarray:
        """The transformed points (n, d)."""
        return np.asarray(points, float) @ (self.scale * self.rotation).T + self.translation

    def inverse(self) -> Similarity:
        r = self.rotation.T
        return Similarity(1.0 / self.scale, r, -(r @ self.translation) / self.scale)


def _checked_pair(src, dst, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    if src.ndim != 2 or src.shape != dst.shape or src.shape[1] not in (2, 3) or len(src) < 2:
        raise InputError(f"a similarity fit needs two matching point sets of shape (N >= 2, 2 or 3), got "
                         f"{src.shape} and {dst.shape}", hint="give corresponding points in the same order")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, float)
    if w.shape != (len(src),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError(f"similarity weights must be {len(src)} finite values >= 0 with a positive sum",
                         hint="give one weight per point pair")
    return src, dst, w / w.sum()


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None, *, scale: bool = True,
            allow_reflection: bool = False) -> Similarity:
    """The weighted least-squares ``dst ~ s R src + t`` between corresponding points (Umeyama 1991).

    ``src`` and ``dst`` are (N, 2) or (N, 3); ``weights`` (N,) need not be normalised. With
    ``scale=False`` the fit is rigid (Kabsch), ``s = 1``. ``R`` is a proper rotation
    (det +1) unless ``allow_reflection``: a mirrored point set gets the best rotation, never a
    mirror. Raises :class:`InputError` for mismatched shapes, bad weights or coincident points.
    """
    src, dst, w = _checked_pair(src, dst, weights)
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    spread = float(w @ (a * a).sum(1))
    if spread < MIN_SPREAD:
        raise InputError(f"the source points coincide (weighted spread {spread:.3g}): no transform is defined",
                         hint="give at least two distinct points (three, not on a line, in 3-D)")
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(src.shape[1])
    if not allow_reflection and np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / spread) if scale else 1.0
    return Similarity(s, r, md - s * r @ ms)


# --------------------------------------------------------------------------------------------
# point clouds and closest pairs
# --------------------------------------------------------------------------------------------

def grid_sample(points: np.ndarray, count: int) -> np.ndarray:
    """Sorted indices of about ``count`` of ``points`` (n, 3) spread evenly: the first point in
    each voxel of a grid whose spacing is tuned to give 0.8-1.25 x ``count`` (all when fewer)."""
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


@dataclass
class PointCloud:
    """Points (n, 3) with unit normals (n, 3) and a k-d tree built on first use. Without normals
    (None) closest pairs are not checked for facing each other."""

    points: np.ndarray
    normals: np.ndarray | None = None

    @functools.cached_property
    def tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(self.points)

    def subset(self, indices: np.ndarray) -> PointCloud:
        return PointCloud(self.points[indices], None if self.normals is None else self.normals[indices])

    def sampled(self, count: int) -> PointCloud:
        """About ``count`` evenly spread points of this cloud (:func:`grid_sample`)."""
        return self.subset(grid_sample(self.points, count))

    def moved(self, transform: Similarity) -> PointCloud:
        """This cloud under a similarity (normals rotated)."""
        s, r, t = transform
        return PointCloud(s * self.points @ r.T + t, None if self.normals is None else self.normals @ r.T)


def _trimmed_pairs(points: np.ndarray, normals: np.ndarray, target: PointCloud, trim: float):
    d, j = target.tree.query(points, workers=1)
    if normals is None or target.normals is None:
        ok = np.ones(len(d), bool)
    else:  # not facing away from each other
        ok = np.einsum("ij,ij->i", normals, target.normals[j]) > 0.2
    if ok.sum() < 10:
        ok[:] = True
    ok &= d <= np.quantile(d[ok], trim)
    i = np.nonzero(ok)[0]
    return i, j[i], d[i]


def closest_pairs(source: PointCloud, target: PointCloud, trim: float = TRIM,
                  field_of_view: FieldOfView | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each source point's closest target point; pairs whose normals disagree are dropped and
    only the ``trim`` quantile of the distances is kept. With a ``field_of_view``, only source
    points inside it take part (none when fewer than 10 are). Returns (source index, target
    index, distance)."""
    if field_of_view is None:
        return _trimmed_pairs(source.points, source.normals, target, trim)
    sel = np.flatnonzero(field_of_view(source.points))
    if len(sel) < 10:  # (nearly) all outside: no pairs from this side
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    normals = None if source.normals is None else source.normals[sel]
    i, j, d = _trimmed_pairs(source.points[sel], normals, target, trim)
    return sel[i], j, d


# --------------------------------------------------------------------------------------------
# trimmed ICP
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ICPResult:
    """The transform (source -> target) ICP converged to, and its residuals in the points' unit.

    ``target_median`` is the median distance from the target points to the moved source (how
    well the source covers the target), ``pair_median`` the median distance of the last step's
    kept pairs (both directions)."""

    transform: Similarity
    target_median: float
    pair_median: float
    iterations: int

    @property
    def score(self) -> float:
        """``target_median + pair_median``: lower is a better fit (for ranking starts)."""
        return self.target_median + self.pair_median


def icp(source: PointCloud, target: PointCloud, start: Similarity | None = None, *, iterations: int = 40,
        trim: float = TRIM, scale: bool = True, field_of_view: FieldOfView | None = None) -> ICPResult:
    """Trimmed bidirectional similarity (``scale=True``) or rigid ICP of ``source`` onto
    ``target`` from ``start`` (identity by default); see the module docstring. Source points
    outside ``field_of_view`` (a function of the moved points) look for no partner."""
    start = start if start is not None else Similarity.identity(source.points.shape[1])
    return icp_batch(source, target, [start], iterations=iterations, trim=trim, scale=scale,
                     field_of_view=field_of_view)[0]


def icp_batch(source: PointCloud, target: PointCloud, starts, *, iterations: int = 40, trim: float = TRIM,
              scale: bool = True, field_of_view: FieldOfView | None = None) -> list[ICPResult]:
    """:func:`icp` of one ``source`` onto one ``target`` from each of ``starts`` (Similarity),
    run side by side: every step makes one closest-point query per direction for all starts
    together, which is what makes a search over many starting poses cheap. Each start's result
    is that of :func:`icp` from it (up to rounding), and since a run's state is its transform,
    ``icp_batch(..., [r.transform for r in results], ...)`` continues runs where they stopped.

    The target's closest source points are found in the source's own frame (the target moved
    by the inverse similarity; distances scaled back): one k-d tree of the source serves every
    step and every start."""
    starts = list(starts)
    if not starts:
        return []
    p, q = np.asarray(source.points, float), np.asarray(target.points, float)
    dim = p.shape[1]
    s = np.array([float(st[0]) for st in starts])
    r = np.array([np.asarray(st[1], float) for st in starts]).reshape(-1, dim, dim)
    t = np.array([np.asarray(st[2], float) for st in starts]).reshape(-1, dim)
    med, done = np.full(len(starts), np.inf), np.zeros(len(starts), int)
    active = np.arange(len(starts))
    for step in range(1, iterations + 1):
        if not len(active):
            break
        sa, ra, ta = s[active], r[active], t[active]
        j1, d1, ok1 = _forward_pairs(source, target, sa, ra, ta, trim, field_of_view)
        j2, d2, ok2 = _reverse_pairs(source, target, sa, ra, ta, trim)
        s_new, r_new, t_new = _umeyama_batch(p, q, j1, ok1, j2, ok2, scale)
        change = np.abs(s_new - sa) + np.abs(r_new - ra).max(axis=(1, 2)) + np.abs(t_new - ta).max(axis=1) / 100
        s[active], r[active], t[active], done[active] = s_new, r_new, t_new, step
        final = (change < 1e-5) | (step == iterations)
        if final.any():
            med[active[final]] = _masked_median(np.concatenate([d1[final], d2[final]], axis=1),
                                                np.concatenate([ok1[final], ok2[final]], axis=1))
        active = active[~(change < 1e-5)]
    d_in = _reverse_distances(source, target, s, r, t)[1]
    return [ICPResult(Similarity(float(s[k]), r[k], t[k]), float(np.median(d_in[k])), float(med[k]), int(done[k]))
            for k in range(len(starts))]


#: closest-point queries of at least this many points use every core, or the OMP_NUM_THREADS set
#: (:func:`medface.threads.query_workers`); smaller ones lose more to starting threads than they gain
PARALLEL_QUERY = 16384


def _workers(n: int) -> int:
    return query_workers() if n >= PARALLEL_QUERY else 1


def _moved_points(points: np.ndarray, s: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``s * points @ r.T + t`` for each of a batch of similarities: (b, n, d)."""
    return np.matmul(s[:, None, None] * points[None], np.swapaxes(r, 1, 2)) + t[:, None, :]


def _masked_quantile(values: np.ndarray, mask: np.ndarray, q: float) -> np.ndarray:
    """Per row, the ``q`` quantile of ``values`` where ``mask`` (numpy's default linear method);
    nan for a row without any."""
    v = np.sort(np.where(mask, values, np.inf), axis=1)
    n = mask.sum(axis=1)
    pos = (n - 1) * q
    lo = np.clip(np.floor(pos).astype(np.int64), 0, None)
    hi = np.clip(lo + 1, None, np.maximum(n - 1, 0))
    rows = np.arange(len(v))
    a, b = v[rows, lo], v[rows, hi]
    g = pos - lo
    with np.errstate(invalid="ignore"):
        out = np.where(g >= 0.5, b - (b - a) * (1 - g), a + (b - a) * g)
    return np.where(n > 0, out, np.nan)


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row, the median of ``values`` where ``mask`` (nan for a row without any)."""
    v = np.sort(np.where(mask, values, np.inf), axis=1)
    n = mask.sum(axis=1)
    rows = np.arange(len(v))
    a, b = v[rows, np.maximum((n - 1) // 2, 0)], v[rows, np.maximum(n // 2, 0)]
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, (a + b) / 2, np.nan)


def _trim(d: np.ndarray, ok: np.ndarray, valid: np.ndarray, trim: float) -> np.ndarray:
    """:func:`closest_pairs`'s selection per row: the normal-compatible pairs (all valid ones
    where fewer than 10 are), then only the ``trim`` quantile of their distances."""
    few = ok.sum(axis=1) < 10
    if few.any():
        ok[few] = valid[few]
    with np.errstate(invalid="ignore"):
        return ok & (d <= _masked_quantile(d, ok, trim)[:, None])


def _forward_pairs(source, target, s, r, t, trim, field_of_view):
    """Each moved source point's closest target point, per start: (index, distance, kept), (b, n)."""
    b, n = len(s), len(source.points)
    moved = _moved_points(source.points, s, r, t).reshape(b * n, -1)
    d, j = target.tree.query(moved, workers=_workers(len(moved)))
    d, j = d.reshape(b, n), j.reshape(b, n)
    valid = np.ones((b, n), bool) if field_of_view is None else \
        np.asarray(field_of_view(moved), bool).reshape(b, n)
    if source.normals is None or target.normals is None:
        ok = valid.copy()
    else:  # not facing away from each other
        normals = np.matmul(source.normals[None], np.swapaxes(r, 1, 2))
        ok = (np.einsum("bij,bij->bi", normals, target.normals[j]) > 0.2) & valid
    ok = _trim(d, ok, valid, trim)
    if field_of_view is not None:  # (nearly) all outside: no pairs from this side
        ok[valid.sum(axis=1) < 10] = False
    return j, d, ok


def _reverse_distances(source, target, s, r, t):
    """Each target point's closest moved source point, per start, found in the source's frame:
    (index, distance), (b, m)."""
    b, m = len(s), len(target.points)
    back = np.matmul(target.points[None] - t[:, None, :], r) / np.maximum(s, 1e-300)[:, None, None]
    d, j = source.tree.query(back.reshape(b * m, -1), workers=_workers(b * m))
    return j.reshape(b, m), d.reshape(b, m) * s[:, None]


def _reverse_pairs(source, target, s, r, t, trim):
    """Each target point's closest moved source point, per start: (index, distance, kept), (b, m)."""
    j, d = _reverse_distances(source, target, s, r, t)
    valid = np.ones(d.shape, bool)
    if source.normals is None or target.normals is None:
        ok = valid.copy()
    else:  # the target normal against the moved source normal R n: (n_target R) . n
        ok = np.einsum("bij,bij->bi", np.matmul(target.normals[None], r), source.normals[j]) > 0.2
    return j, d, _trim(d, ok, valid, trim)


def _umeyama_batch(p, q, j1, ok1, j2, ok2, scale: bool):
    """:func:`umeyama` of each start's kept pairs (source points ``p`` with their closest target
    points ``q[j1]``, target points with their closest source points ``p[j2]``), all starts at
    once; the sums are taken about the two clouds' centroids (accurate without re-centring)."""
    b = len(j1)
    pc, qc = p.mean(0), q.mean(0)
    p0, q0 = p - pc, q - qc
    total = ok1.sum(axis=1) + ok2.sum(axis=1)
    if np.any(total <= 0):
        raise InputError("similarity weights must be finite values >= 0 with a positive sum: ICP found no point "
                         "pairs", hint="check that the two point sets overlap")
    w1, w2 = ok1 / total[:, None], ok2 / total[:, None]
    a2, c1 = p0[j2], q0[j1]  # the partners, (b, m, d) and (b, n, d)
    ms = w1 @ p0 + np.einsum("bm,bmd->bd", w2, a2)
    md = np.einsum("bn,bnd->bd", w1, c1) + w2 @ q0
    sq = (p0 * p0).sum(1)
    spread = w1 @ sq + (w2 * sq[j2]).sum(1) - (ms * ms).sum(1)
    if np.any(spread < MIN_SPREAD):
        raise InputError(f"the source points coincide (weighted spread {spread.min():.3g}): no transform is defined",
                         hint="give at least two distinct points (three, not on a line, in 3-D)")
    cov = (np.matmul(np.swapaxes(c1 * w1[:, :, None], 1, 2), p0) + np.matmul((q0[None] * w2[:, :, None]).swapaxes(1, 2), a2)
           - md[:, :, None] * ms[:, None, :])
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones((b, p.shape[1]))
    d[np.linalg.det(u) * np.linalg.det(vt) < 0, -1] = -1.0
    r = np.matmul(u * d[:, None, :], vt)
    s = (sig * d).sum(axis=1) / spread if scale else np.ones(b)
    t = (md + qc) - s[:, None] * np.einsum("bij,bj->bi", r, ms + pc)
    return s, r, t


# --------------------------------------------------------------------------------------------
# Gaussian displacement field
# --------------------------------------------------------------------------------------------

def gaussian_kernel(x: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """``exp(-|x_i - c_k|^2 / (2 width^2))``, (n, k), in the dtype of the inputs."""
    return _kernel_of(_squared_distances(x, centres), width)


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``|x_i - c_k|^2`` (n, k), in the dtype of the inputs."""
    d2 = (x * x).sum(1)[:, None] + (centres * centres).sum(1)[None, :] - 2.0 * (x @ centres.T)
    return np.maximum(d2, 0.0, out=d2)


def _kernel_of(d2: np.ndarray, width: float, out: np.ndarray | None = None) -> np.ndarray:
    """The Gaussian kernel of squared distances ``d2`` (into ``out``, default in place)."""
    out = d2 if out is None else out
    np.multiply(d2, d2.dtype.type(-1.0 / (2.0 * width * width)), out=out)
    return np.exp(out, out=out)


@dataclass
class DisplacementField:
    """A sum of Gaussian kernel fields ``d(x) = sum_levels sum_k exp(-|x-c_k|^2 / 2b^2) w_k``.

    ``levels`` holds (centres (K, 3), width b, weights (K, 3)) per level; calling the field on
    points (n, 3) gives their displacements (n, 3) (float32 kernels, centred for precision)."""

    levels: list = field(default_factory=list)

    def __call__(self, points: np.ndarray, chunk: int = 4096) -> np.ndarray:
        points = np.asarray(points, float)
        out = np.zeros_like(points)
        groups: list = []  # levels on the same centres share the squared distances
        for centres, width, weights in self.levels:
            if groups and groups[-1][0].shape == centres.shape and np.array_equal(groups[-1][0], centres):
                groups[-1][1].append((width, weights.astype(np.float32)))
            else:
                groups.append((centres, [(width, weights.astype(np.float32))]))
        for centres, kernels in groups:
            origin = centres.mean(0)
            c = (centres - origin).astype(np.float32)
            cc = (c * c).sum(1)
            # scratch for one chunk, reused: the same arithmetic as gaussian_kernel, in place
            d2_buf, k_buf = np.empty((2, min(chunk, len(points)), len(c)), np.float32)
            for a in range(0, len(points), chunk):
                x = (points[a:a + chunk] - origin).astype(np.float32)
                d2, k = d2_buf[:len(x)], k_buf[:len(x)]
                np.add((x * x).sum(1)[:, None], cc[None, :], out=d2)
                np.matmul(x, c.T, out=k)
                k *= 2.0
                np.subtract(d2, k, out=d2)
                np.maximum(d2, 0.0, out=d2)
                for width, w in kernels:
                    out[a:a + chunk] += _kernel_of(d2, width, out=k) @ w
        return out


@dataclass(frozen=True)
class Pins:
    """Points ``source`` (n, 3) that the field should carry onto ``target`` (n, 3), with a
    weight per pin relative to one closest-point pair (e.g. user landmarks, weight 20)."""

    source: np.ndarray
    target: np.ndarray
    weight: float = 20.0


@dataclass(frozen=True)
class FieldFit:
    """A fitted :class:`DisplacementField` and the fitted points ``moved`` (= points + field)."""

    field: DisplacementField
    moved: np.ndarray


@dataclass
class _Level:
    """The fixed matrices of one kernel width: kernel of the points and of the pins on the
    control points, the control points' Gram matrix, the displacement of the coarser levels."""

    x0: np.ndarray
    phi: np.ndarray
    gram: np.ndarray
    base: np.ndarray
    pin_phi: np.ndarray | None
    pin_base: np.ndarray | None
    scratch: np.ndarray | None = None  # for ``counts * phi``, reused by every solve of the level

    @classmethod
    def of(cls, x0, current, control, width, pins: Pins | None, coarser: DisplacementField,
           d2: np.ndarray | None = None, work: dict | None = None) -> _Level:
        """``d2``: the squared distances of ``x0`` to ``control`` when known (shared by the
        levels); ``work``: arrays of the previous level to reuse (big fresh arrays are slow to
        fault in on some virtual machines: 20 MB cost up to 0.1 s)."""
        work = {} if work is None else work
        if d2 is None:
            kernel = gaussian_kernel(x0, control, width)
        else:
            kernel = _kernel_of(d2, width, out=work.setdefault("kernel", np.empty_like(d2)))
        phi = work.setdefault("phi", np.empty(kernel.shape, np.float32))
        np.copyto(phi, kernel, casting="same_kind")  # = kernel.astype(np.float32)
        gram = gaussian_kernel(control, control, width)
        scratch = work.setdefault("scratch", np.empty_like(phi))
        if pins is None:
            return cls(x0, phi, gram, current - x0, None, None, scratch)
        return cls(x0, phi, gram, current - x0, gaussian_kernel(pins.source, control, width), coarser(pins.source),
                   scratch)

    def solve(self, rows: np.ndarray, targets: np.ndarray, pins: Pins | None, smoothness: float) -> np.ndarray:
        """Kernel weights (K, 3) minimising the pairs' squared distances (``rows`` of the points
        paired with ``targets``) plus the pins' and the kernel-norm penalty."""
        n, k = len(self.x0), self.phi.shape[1]
        counts = np.bincount(rows, minlength=n).astype(np.float32)  # normal equations, rows grouped
        sums = np.stack([np.bincount(rows, targets[:, d], minlength=n) for d in range(targets.shape[1])], axis=1)
        rhs_t = sums - counts[:, None] * (self.x0 + self.base)
        # the normal matrix in full each step, in float32 as always: updating it by the rows whose
        # count changed (a few per cent) was five times faster, but its other rounding moved some
        # fits by millimetres (a glabella 10 mm off in tests/forensic/test_register.py)
        if self.scratch is None:
            self.scratch = np.empty_like(self.phi)
        lhs = (self.phi.T @ np.multiply(counts[:, None], self.phi, out=self.scratch)).astype(float)
        rhs = (self.phi.T @ rhs_t.astype(np.float32)).astype(float)
        if pins is not None:
            lhs = lhs + pins.weight * self.pin_phi.T @ self.pin_phi
            rhs = rhs + pins.weight * self.pin_phi.T @ (pins.target - pins.source - self.pin_base)
        lam = smoothness * len(rows) / k
        return np.linalg.solve(lhs + lam * self.gram + 1e-9 * np.eye(k), rhs)


def fit_displacement_field(points: np.ndarray, normals: np.ndarray, target: PointCloud,
                           dense: PointCloud | None = None, *, pins: Pins | None = None,
                           widths=KERNEL_WIDTHS_MM, control_points: int = CONTROL_POINTS,
                           iterations_per_level: int = ITERATIONS_PER_LEVEL, smoothness: float = SMOOTHNESS,
                           trim: float = FIELD_TRIM, field_of_view: FieldOfView | None = None) -> FieldFit:
    """Fit a coarse-to-fine Gaussian displacement field moving ``points`` (n, 3, with their
    ``normals``) onto a surface.

    In each iteration the moved points find their closest points in ``dense`` (default
    ``target``) and the points of ``target`` find their closest moved point; both sets of pairs
    (trimmed to the ``trim`` quantile, normals compatible) pull on the field, and the kernel
    norm, weighted by ``smoothness`` per pair, keeps it smooth. Control points: about
    ``control_points`` of ``points`` (:func:`grid_sample`). Points outside ``field_of_view``
    look for no partner (the field carries them along)."""
    x0 = np.asarray(points, float)
    dense = target if dense is None else dense
    pins = pins if pins is not None and len(pins.source) else None
    result = DisplacementField()
    control = x0[grid_sample(x0, control_points)]
    d2, work = _squared_distances(x0, control), {}
    current = x0.copy()
    for width in widths:
        level = _Level.of(x0, current, control, width, pins, result, d2, work)
        weights = np.zeros((len(control), 3))
        for _ in range(iterations_per_level):
            moved = PointCloud(current, normals)
            i1, j1, _ = closest_pairs(moved, dense, trim, field_of_view)
            i2, j2, _ = closest_pairs(target, moved, trim)
            rows = np.concatenate([i1, j2])
            goal = np.concatenate([dense.points[j1], target.points[i2]])
            weights = level.solve(rows, goal, pins, smoothness)
            current = x0 + level.base + level.phi @ weights.astype(np.float32)
        result.levels.append((control, width, weights))
    return FieldFit(result, current)
