"""CT to surfaces: bone (skull, mandible) and skin meshes in LPS millimetres.

The steps, each a small function over plain arrays:

1. **Intensities** (:func:`calibrate_hu`): a CT in Hounsfield units is used as it is
   (:func:`~medface.anatomy.ct_intensity.judge_hu`). Data in scanner units are mapped linearly to
   HU from two histogram peaks, air/background -> -1000 HU and soft tissue -> 40 HU; when the
   histogram has no credible pair of peaks the CT is refused with an :class:`InputError`.
2. **Orientation** (:func:`detect_orientation`): a volume that stores none (identity direction,
   zero origin) gets its face direction found from the skin relief: seen from the face, the
   nose is a narrow peak standing well above its surroundings, and nothing comparable stands
   out from the back of the head; ears stand out on both sides alike. Superior is the side
   along which the nasal dorsum stays high (below the nose tip the profile drops to the lip).
   Left and right cannot be told from anatomy: the data are assumed not mirrored.
3. **Masks**: skin = the largest body above ``skin_hu`` with internal air (sinuses, airway,
   mouth) filled slice by slice and in 3D; bone = the large components above ``bone_hu``
   inside the skin, with their cavities filled.
4. **Mandible** (:func:`split_mandible`): a separate inferior-anterior bone component if there
   is one; otherwise the bone is eroded (distance transform thresholds) until an
   inferior-anterior piece comes loose, and both pieces regrow into the bone by a watershed on
   the distance map. If nothing comes loose the result says so.
5. **Meshing** (:func:`mesh_mask`): VTK flying edges on the CT values clamped to the mask
   (sub-voxel surfaces, the mask's topology, closed at the volume border), windowed-sinc
   smoothing and quadric decimation to a face budget; vertices in LPS mm via the volume's
   origin, spacing and direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.data import SurfaceMesh, Volume
from medface.data.mesh import orient_outward
from medface.errors import InputError, ParameterError

from medface.anatomy.ct_checks import (check_air_around, check_body_size, check_grid, cut_warnings, remove_table,
                                       soft_tissue_warning)
from medface.anatomy.ct_intensity import AIR_HU, check_content, judge_hu, looks_eight_bit

SOFT_TISSUE_HU = 40.0
DEFAULT_BONE_HU = 300.0
DEFAULT_SKIN_HU = -400.0
AXES = ("+x", "-x", "+y", "-y", "+z", "-z")
_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}  # index-space axis (i, j, k) of each letter
MIN_BONE_ML = 5.0  # less bone than this is "no bone"
KEEP_FRACTION = 0.02  # bone components smaller than this share of the largest are dropped
MANDIBLE_FRACTION = (0.03, 0.6)  # plausible mandible volume relative to the cranium
ERODE_MM = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
SPLIT_VOXEL_MM = 1.2  # the mandible split runs on a grid of about this size (speed)
# Where jaws touch only through partial-volume voxels (a joint space or a bite wafer thinner than
# about two voxels), the bone at these higher levels falls apart into cranium and mandible; they
# seed a regrowth into the bone that follows the lowest values between them (HU).
DENSE_HU = (500.0, 700.0, 900.0, 1200.0)
#: landmarks (the vocabulary's names, docs/landmarks.md) on the mandible and on the skull near the
#: jaws: the seeds of the landmark-assisted split
MANDIBLE_LANDMARKS = ("co_l", "co_r", "cor_l", "cor_r", "go_l", "go_r", "id", "b", "pog", "gn", "me")
SKULL_LANDMARKS = ("pr", "a", "ans", "zy_l", "zy_r", "po_l", "po_r", "ms_l", "ms_r", "zm_l", "zm_r", "or_l", "or_r",
                   "ft_l", "ft_r", "n")
SEED_REACH_MM = 4.0  # a landmark seeds the bone voxels within this distance of it


# ---------------------------------------------------------------------------------------------
# 1. intensities
@dataclass
class Calibration:
    """A linear map ``hu = slope * value + intercept`` and where it came from."""

    slope: float
    intercept: float
    method: str  # "none (values in HU)" or "histogram two-point"
    air_value: float | None = None
    soft_tissue_value: float | None = None
    reason: str = ""

    @property
    def identity(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0

    def apply(self, array: np.ndarray) -> np.ndarray:
        a = np.asarray(array, np.float32)
        return a if self.identity else a * np.float32(self.slope) + np.float32(self.intercept)

    def to_dict(self) -> dict:
        return {"slope": self.slope, "intercept": self.intercept, "method": self.method,
                "air_value": self.air_value, "soft_tissue_value": self.soft_tissue_value, "reason": self.reason}


def _sample(array: np.ndarray, n: int = 2_000_000) -> np.ndarray:
    flat = array.ravel()
    return flat[:: max(1, flat.size // n)].astype(np.float32)


def histogram_peaks(values: np.ndarray, bins: int = 512, integer: bool = False
                    ) -> tuple[list[float], list[float], float]:
    """Well separated peaks of the value histogram: (centres, shares of voxels, bin width).

    A peak counts when the histogram (smoothed) falls to half of it or lower on both sides
    before the next peak. ``integer`` data get integer bin widths (no comb from aliasing).
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    lo, hi = np.percentile(values, [0.05, 99.95])
    if not hi > lo:
        return [], [], 0.0
    if integer:
        width = max(1.0, float(np.ceil((hi - lo) / bins)))
        bins = int(np.ceil((hi - lo) / width)) + 1
        lo, hi = np.floor(lo) - 0.5, np.floor(lo) - 0.5 + bins * width
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    width = float(edges[1] - edges[0])
    pad = 12  # empty bins beyond both ends: a peak at the edge (clipped air) keeps its prominence
    counts = np.pad(counts, pad)
    edges = np.concatenate([edges[0] - width * np.arange(pad, 0, -1), edges, edges[-1] + width * np.arange(1, pad + 1)])
    smooth = gaussian_filter1d(counts.astype(float), 2.0)
    idx, props = find_peaks(smooth, prominence=1e-12, distance=8)
    prominent = props["prominences"] >= 0.5 * smooth[idx]  # half of the peak's own height
    prominent &= smooth[idx] >= 0.01 * smooth.max()
    centres, shares = [], []
    for i, left, right in zip(idx[prominent], props["left_bases"][prominent], props["right_bases"][prominent]):
        a, b = max(i - 4, left), min(i + 5, right + 1)  # centroid around the peak, inside its bases
        centres.append(float(np.average(0.5 * (edges[a:b] + edges[a + 1:b + 1]), weights=counts[a:b] + 1e-9)))
        shares.append(float(counts[left:right + 1].sum()) / values.size)
    return centres, shares, width


def calibrate_hu(array: np.ndarray, units: str = "") -> Calibration:
    """Identity for a CT in HU, else a two-point map from the air and soft-tissue peaks.

    Credible means: an air/background peak holding >= 2 % of the voxels, a soft-tissue peak
    above it holding >= 5 %, separated by more than 20 bins of the histogram, and a slope
    between 0.05 and 20 HU per unit. Anything else raises :class:`InputError`.
    """
    verdict = judge_hu(array, units)
    if verdict.in_hu:
        return Calibration(1.0, 0.0, "none (values in HU)", reason=verdict.reason)
    values = _sample(array)
    padding = float(values.min())
    if (values == padding).mean() >= 0.01:  # a padding value (outside the field of view), not air
        values = values[values != padding]
    centres, shares, width = histogram_peaks(values, integer=np.issubdtype(np.asarray(array).dtype, np.integer))
    hint = "check that the file is a CT; give a CT in HU, or one whose air and soft tissue show as two histogram peaks"
    if len(centres) < 2:
        one = (f"; its one peak, at {centres[0]:.0f}, is one material only (such as bone or soft tissue, with no air "
               "around it)") if centres else ""
        raise InputError(f"the CT is not in HU ({verdict.reason}) and its histogram has no two distinct peaks "
                         f"(air and soft tissue) to calibrate from{one}", hint=hint)
    air = next((k for k, s in enumerate(shares) if s >= 0.02), None)
    soft = None
    if air is not None:
        above = [k for k in range(air + 1, len(centres)) if shares[k] >= 0.05 and centres[k] - centres[air] > 20 * width]
        soft = max(above, key=lambda k: shares[k]) if above else None
    if air is None or soft is None:
        found = ", ".join(f"{c:.0f} ({s:.0%})" for c, s in zip(centres, shares))
        raise InputError(f"the CT is not in HU ({verdict.reason}) and no credible air and soft-tissue peaks were "
                         f"found for a calibration (peaks at {found})", hint=hint)
    slope = (SOFT_TISSUE_HU - AIR_HU) / (centres[soft] - centres[air])
    if not 0.05 <= slope <= 20.0:
        raise InputError(f"calibration to HU is not credible: {slope:.3g} HU per unit from peaks at "
                         f"{centres[air]:.0f} and {centres[soft]:.0f}", hint=hint)
    intercept = AIR_HU - slope * centres[air]
    return Calibration(float(slope), float(intercept), "histogram two-point", float(centres[air]),
                       float(centres[soft]), reason=verdict.reason)


# ---------------------------------------------------------------------------------------------
# 2. orientation
def has_orientation(volume: Volume) -> bool:
    """False when the file stores none: identity direction and zero origin."""
    return not (np.allclose(volume.direction, np.eye(3)) and np.allclose(volume.origin, 0.0))


def axis_vector(name: str) -> np.ndarray:
    """Index-space unit vector (i, j, k) of an axis name such as ``"-y"``."""
    if name not in AXES:
        raise ParameterError(f"must be 'auto' or one of {', '.join(AXES)}, got {name!r}", parameter="face_direction")
    v = np.zeros(3)
    v[_AXIS_INDEX[name[1]]] = 1.0 if name[0] == "+" else -1.0
    return v


def axis_name(vector) -> str:
    v = np.asarray(vector, float)
    a = int(np.argmax(np.abs(v)))
    return ("+" if v[a] > 0 else "-") + "xyz"[a]


def _coarse(array: np.ndarray, spacing, step_mm: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """Every n-th voxel so the grid is about ``step_mm`` (array [k, j, i]) and its spacing (i, j, k)."""
    steps = [max(1, round(step_mm / s)) for s in spacing]  # along i, j, k
    return array[:: steps[2], :: steps[1], :: steps[0]], np.asarray(spacing, float) * steps


def mirror_scores(mask: np.ndarray) -> dict[str, float]:
    """Dice of the mask with its mirror image across each index axis (about its centroid):
    the head is mirror-symmetric across its left-right axis only."""
    centre = np.argwhere(mask).mean(0)
    out = {}
    for np_axis in range(3):
        flipped = np.roll(np.flip(mask, np_axis), round(2 * centre[np_axis] - (mask.shape[np_axis] - 1)), np_axis)
        out["xyz"[2 - np_axis]] = float(2 * (flipped & mask).sum() / (flipped.sum() + mask.sum()))
    return out


def height_map(mask: np.ndarray, spacing, view: str, values: np.ndarray | None = None,
               level: float | None = None) -> tuple[np.ndarray, float, float]:
    """Seen from ``view`` (the side the viewer is on): how far the first mask voxel along each
    ray stands out towards the viewer, in mm (NaN where the ray misses), and the map's pixel
    sizes (mm) along its rows and columns. With ``values`` and ``level`` the crossing is
    interpolated between the two voxels around it (sub-voxel heights)."""
    axis = _AXIS_INDEX[view[1]]
    np_axis = 2 - axis  # numpy axis of that index axis
    m = np.moveaxis(mask, np_axis, 0)
    vals = np.moveaxis(values, np_axis, 0) if values is not None else None
    if view[0] == "+":  # the viewer sits beyond the high end of the axis
        m = m[::-1]
        vals = vals[::-1] if vals is not None else None
    hit = m.any(axis=0)
    first = np.argmax(m, axis=0)
    depth = first.astype(float)
    if vals is not None:
        rows, cols = np.indices(first.shape)
        b = vals[first, rows, cols].astype(float)
        a = vals[np.maximum(first - 1, 0), rows, cols].astype(float)
        with np.errstate(all="ignore"):
            frac = np.clip((level - a) / (b - a), 0.0, 1.0)
        depth = np.where((first > 0) & (b > a), first - 1 + frac, depth)
    h = -depth * spacing[axis]
    h[~hit] = np.nan
    others = [a for a in range(3) if a != axis]  # index axes left; numpy order is reversed
    return h, float(spacing[others[1]]), float(spacing[others[0]])


def _ring_offsets(radius_mm: float, pix: tuple[float, float], n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.round(radius_mm * np.sin(t) / pix[0]), np.round(radius_mm * np.cos(t) / pix[1])], 1).astype(int)


def _shift(h: np.ndarray, dr: int, dc: int) -> np.ndarray:
    out = np.full_like(h, np.nan)
    r0, r1 = max(0, dr), h.shape[0] + min(0, dr)
    c0, c1 = max(0, dc), h.shape[1] + min(0, dc)
    out[r0 - dr:r1 - dr, c0 - dc:c1 - dc] = h[r0:r1, c0:c1]
    return out


def protrusion(h: np.ndarray, pix: tuple[float, float], radius_mm: float = 20.0) -> np.ndarray:
    """How far each point stands above the 75th percentile of a ring of ``radius_mm`` around it
    (NaN where fewer than 12 of the 16 ring points hit the body): high for a nose, low for a
    dome, a plateau edge or a ridge."""
    ring = np.stack([_shift(h, int(dr), int(dc)) for dr, dc in _ring_offsets(radius_mm, pix)])
    valid = np.isfinite(ring).sum(0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanpercentile(ring, 75, axis=0)
    p = h - q
    p[(valid < 12) | ~np.isfinite(h)] = np.nan
    return p


@dataclass
class Orientation:
    """Where the face and the top of the head point in index space, and the resulting frame."""

    face: str  # index-space axis the face points to, e.g. "-y"
    superior: str
    direction: np.ndarray  # 3x3: columns are the LPS directions of the i, j, k axes
    estimated: bool
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"face_direction": self.face, "superior_direction": self.superior, "estimated": self.estimated,
                "direction": self.direction.round(6).tolist(), **self.evidence}


def nose_score(h: np.ndarray, pix: tuple[float, float], radius_mm: float = 15.0) -> float:
    """How much a narrow peak stands out of a height map (mm): the best point's height above
    the highest and above the 75th percentile of a ring of ``radius_mm`` around it, summed."""
    ring = np.stack([_shift(h, int(dr), int(dc)) for dr, dc in _ring_offsets(radius_mm, pix)])
    valid = np.isfinite(ring).sum(0) >= 14
    top = np.where(np.isfinite(ring), ring, -np.inf).max(0)
    p = protrusion(h, pix, radius_mm)
    score = np.where(valid & np.isfinite(h), (h - top) + p, np.nan)
    return float(np.nanmax(score)) if np.isfinite(score).any() else 0.0


def detect_face(mask: np.ndarray, spacing, values: np.ndarray | None = None, level: float | None = None
                ) -> tuple[str, dict]:
    """Index-space axis the face points to, from the body mask (and the CT values for
    sub-voxel heights). Left-right is the axis of mirror symmetry; of the other two, the face
    is the side whose relief has a narrow peak (the nose) that the opposite side lacks.
    Raises :class:`InputError` when the evidence is not clear."""
    small, sp = _coarse(mask, spacing)
    vals = _coarse(values, spacing)[0] if values is not None else None
    hint = "give face_direction (+x, -x, +y, -y, +z or -z in index space)"
    mirror = mirror_scores(small)
    ranked = sorted(mirror, key=mirror.get, reverse=True)
    lr = ranked[0]
    scores = {}
    for a in ranked[1:]:
        for sign in "+-":
            h, pr, pc = height_map(small, sp, sign + a, vals, level)
            scores[sign + a] = nose_score(h, (pr, pc))
    contrast = {a: scores["+" + a] - scores["-" + a] for a in ranked[1:]}
    best, other = sorted(contrast, key=lambda a: abs(contrast[a]), reverse=True)
    face = ("+" if contrast[best] > 0 else "-") + best
    evidence = {"mirror_symmetry": {k: round(v, 3) for k, v in mirror.items()}, "left_right_axis": lr,
                "nose_score_mm": {k: round(v, 1) for k, v in scores.items()},
                "face_contrast_mm": round(abs(contrast[best]), 1), "runner_up_contrast_mm": round(abs(contrast[other]), 1)}
    if mirror[lr] - mirror[ranked[1]] < 0.03:
        raise InputError(f"cannot find the head's left-right axis: mirror symmetry {evidence['mirror_symmetry']}",
                         hint=hint)
    if abs(contrast[best]) < 3.0 or abs(contrast[best]) < 1.5 * abs(contrast[other]):
        raise InputError(f"cannot tell which way the face points (nose relief seen from each side, mm: "
                         f"{evidence['nose_score_mm']})", hint=hint)
    return face, evidence


# Least difference (mm) between the skin heights above and below the nose tip for a verdict: a
# real nose gives 10-20 mm (headsq: 16), the sample phantom 3; below 2 mm the sign was wrong on
# a phantom head (1.1 and 1.7 mm at 2 and 1.5 mm voxels), and a wrong guess turns the head upside
# down without a word, so the volume is refused instead (give it an orientation).
MIN_NOSE_ASYMMETRY_MM = 2.0


def detect_superior(mask: np.ndarray, spacing, face: str, values: np.ndarray | None = None,
                    level: float | None = None) -> tuple[str, dict]:
    """Index-space axis towards the top of the head. The up-down axis is the one that is
    neither the face's nor the mirror-symmetry (left-right) axis; up is the side along which
    the nasal dorsum stays high above the nose tip (below it the profile drops to the lip)."""
    small, sp = _coarse(mask, spacing)
    vals = _coarse(values, spacing)[0] if values is not None else None
    axis = _AXIS_INDEX[face[1]]
    mirror = mirror_scores(small)
    others = [a for a in range(3) if a != axis]  # map rows follow others[1], columns others[0]
    lr = max(others, key=lambda a: mirror["xyz"[a]])
    up = others[0] if lr == others[1] else others[1]
    h, pr, pc = height_map(small, sp, face, vals, level)
    p = protrusion(h, (pr, pc))
    if not np.isfinite(p).any():
        raise InputError("no skin relief found to place the nose", hint="give the volume an orientation")
    r, c = np.unravel_index(np.nanargmax(p), p.shape)
    step, pix = ((1, 0), pr) if up == others[1] else ((0, 1), pc)
    side = {}
    for sign in (1, -1):
        vals_ = []
        for d in np.arange(8.0, 26.0, 2.0):
            rr, cc = r + sign * step[0] * round(d / pix), c + sign * step[1] * round(d / pix)
            if 0 <= rr < h.shape[0] and 0 <= cc < h.shape[1] and np.isfinite(h[rr, cc]):
                vals_.append(h[rr, cc])
        side[sign] = float(np.mean(vals_)) if vals_ else np.nan
    asym = side[1] - side[-1]
    evidence = {"nose_profile_mm": {("+" if s > 0 else "-") + "xyz"[up]: round(v, 1) for s, v in side.items()}}
    if not np.isfinite(asym) or abs(asym) < MIN_NOSE_ASYMMETRY_MM:
        raise InputError(f"cannot tell the top of the head from the bottom along the nose ({evidence})",
                         hint="give the volume an orientation")
    return ("+" if asym > 0 else "-") + "xyz"[up], evidence


def frame_from(face: str, superior: str) -> np.ndarray:
    """The rotation (columns: LPS directions of i, j, k) that sends the face to -y (anterior)
    and the top of the head to +z; proper (no mirroring)."""
    f, s = axis_vector(face), axis_vector(superior)
    if abs(f @ s) > 0.5:
        raise ParameterError(f"face {face} and superior {superior} directions are not perpendicular",
                             parameter="face_direction")
    m_idx = np.stack([f, s, np.cross(f, s)], 1)
    m_lps = np.stack([np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([-1.0, 0.0, 0.0])], 1)
    return m_lps @ m_idx.T


# ---------------------------------------------------------------------------------------------
# 3. masks
def _largest(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return sizes, np.argsort(sizes)[::-1]


def fill_slices(mask: np.ndarray, np_axis: int) -> np.ndarray:
    """Fill the holes of every 2D slice across ``np_axis`` (air enclosed in a slice)."""
    from scipy.ndimage import binary_fill_holes

    out = np.moveaxis(mask.copy(), np_axis, 0)
    for k in range(out.shape[0]):
        if out[k].any():
            out[k] = binary_fill_holes(out[k])
    return np.moveaxis(out, 0, np_axis)


def skin_mask(hu: np.ndarray, skin_hu: float, axial_np_axis: int | None = None) -> np.ndarray:
    """The body: the largest component above ``skin_hu``, holes filled in 3D and in axial
    slices (``axial_np_axis``; the airway is open in 3D but closed in an axial slice)."""
    from scipy.ndimage import binary_fill_holes, binary_opening, label

    above = hu >= skin_hu
    body = binary_opening(above, iterations=1)  # detach noise specks and thin table/sheet contacts
    labels, n = label(body)
    if n == 0 and above.any():
        raise InputError(f"the voxels above the skin threshold {skin_hu:.0f} HU ({above.mean():.1%} of the CT) are "
                         "only specks or sheets under 3 voxels thick: no body", hint="check skin_hu and that the file "
                         "is a head CT volume")
    if n == 0:
        raise InputError(f"nothing in the CT is above the skin threshold {skin_hu:.0f} HU",
                         hint="check skin_hu and that the file is a CT")
    _sizes, order = _largest(labels, n)
    body = labels == order[0]
    body = binary_fill_holes(body)
    if axial_np_axis is not None:
        body = fill_slices(body, axial_np_axis)
    return body


def bone_components(hu: np.ndarray, bone_hu: float, body: np.ndarray, voxel_ml: float
                    ) -> tuple[np.ndarray, list[int], dict]:
    """Labels of the bone above ``bone_hu`` inside the body and the labels kept (largest first):
    components of at least :data:`KEEP_FRACTION` of the largest and 0.5 ml."""
    from scipy.ndimage import label

    bone = (hu >= bone_hu) & body
    labels, n = label(bone)
    sizes, order = _largest(labels, n)
    total_ml = float(sizes.sum()) * voxel_ml
    if n == 0 or total_ml < MIN_BONE_ML:
        densest = float(hu[body].max()) if body.any() else float("nan")
        raise InputError(f"no bone found: {total_ml:.1f} ml above {bone_hu:.0f} HU inside the body "
                         f"(at least {MIN_BONE_ML:.0f} ml expected in a head CT; the densest voxel of the body is "
                         f"{densest:.0f} HU)", hint="check that the CT shows bone, or lower bone_hu")
    keep = [int(l) for l in order if sizes[l] > 0 and sizes[l] >= max(KEEP_FRACTION * sizes[order[0]], 0.5 / voxel_ml)]
    stats = {"bone_components": int(n), "bone_components_kept": len(keep),
             "bone_dropped_ml": round(total_ml - float(sizes[keep].sum()) * voxel_ml, 2)}
    return labels, keep, stats


# ---------------------------------------------------------------------------------------------
# 4. mandible
def mask_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The slices of the smallest box holding every voxel of a non-empty ``mask``."""
    from scipy.ndimage import find_objects

    return find_objects(mask.astype(np.uint8, copy=False))[0]


def _centroid_mm(mask: np.ndarray, spacing) -> np.ndarray:
    kji = np.argwhere(mask).mean(0)
    return kji[::-1] * np.asarray(spacing)


def _is_mandible(piece: np.ndarray, cranium_centre, cranium_size: int, spacing, anterior, superior, *,
                 size: int | None = None, min_width_mm: float = 50.0) -> bool:
    """An inferior, anterior body of plausible size (``size`` voxels, default the piece's own)
    whose left-right extent is wide (a U)."""
    if not piece.any():
        return False
    size = int(piece.sum()) if size is None else int(size)
    if not MANDIBLE_FRACTION[0] * cranium_size <= size <= MANDIBLE_FRACTION[1] * cranium_size:
        return False
    d = _centroid_mm(piece, spacing) - cranium_centre
    if d @ superior > -10.0 or d @ anterior < 0.0:
        return False
    lateral = np.cross(anterior, superior)
    pts = np.argwhere(piece)[:, ::-1] * np.asarray(spacing)
    return float(np.ptp(pts @ lateral)) >= min_width_mm


def split_mandible(bone: np.ndarray, others: list[np.ndarray], spacing, anterior, superior, *,
                   hu: np.ndarray | None = None, seeds=None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(cranium, mandible or None, how): the mandible as a separate component; else, given the
    CT values ``hu`` and ``seeds`` (``(landmarks, to_index)``), by a watershed seeded at the
    landmarks over the bone and the ``others`` (:func:`landmark_split`); else, given ``hu``, as a
    separate component of the denser bone (:data:`DENSE_HU`) regrown into the bone across the
    lowest values; else eroded loose from the largest bone and regrown by a watershed on bone
    depth. ``anterior``/``superior`` are unit vectors in index space (i, j, k order). Fine grids
    are split on every n-th voxel (about :data:`SPLIT_VOXEL_MM`) and the labels brought back by
    nearest neighbour."""
    anterior, superior = np.asarray(anterior, float), np.asarray(superior, float)
    centre = _centroid_mm(bone, spacing)
    size = int(bone.sum())
    for piece in others:
        if _is_mandible(piece, centre, size, spacing, anterior, superior):
            return bone, piece, "separate component"
    if hu is not None and seeds is not None:
        whole = np.logical_or.reduce([bone, *others])
        found = landmark_split(whole, hu, *seeds)
        if found is not None:
            mandible, how = found
            return whole & ~mandible, mandible, how
    if hu is not None:
        found = _dense_split(bone, hu, spacing, anterior, superior)
        if found is not None:
            mandible, level = found
            return bone & ~mandible, mandible, f"separate above {level:g} HU and regrown across the lowest values"
    box = mask_box(bone)
    sub = bone[box]
    steps = tuple(max(1, int(SPLIT_VOXEL_MM // s)) for s in spacing[::-1])  # numpy order k, j, i
    coarse = sub[tuple(slice(None, None, n) for n in steps)]
    found = _erode_split(coarse, np.asarray(spacing, float) * steps[::-1], anterior, superior)
    if found is None:
        return bone, None, "not separated"
    labels, radius = found
    for axis, n in enumerate(steps):  # back to the full grid (nearest coarse voxel)
        labels = np.repeat(labels, n, axis=axis)
    labels = labels[tuple(slice(0, m) for m in sub.shape)]
    mandible = np.zeros_like(bone)
    mandible[box] = sub & (labels == 2)
    return bone & ~mandible, mandible, f"eroded by {radius:g} mm and regrown (watershed)"


def _dense_split(bone: np.ndarray, hu: np.ndarray, spacing, anterior, superior) -> tuple[np.ndarray, float] | None:
    """(mandible, level) where the bone above a :data:`DENSE_HU` level holds a mandible as its
    own component, regrown into ``bone`` from the highest values down (a watershed on the CT
    values, so the seam follows the joint space and the gap between the arches); or None."""
    from scipy.ndimage import label
    from skimage.segmentation import watershed

    box = mask_box(bone)
    sub, values = bone[box], hu[box]
    size = int(sub.sum())
    for level in DENSE_HU:
        labels, n = label(sub & (values >= level))
        if n < 2:
            continue
        sizes, order = _largest(labels, n)
        cranium_centre = _centroid_mm(labels == order[0], spacing)
        for lab in order[1:8]:
            piece = labels == lab
            if sizes[lab] == 0 or not _is_mandible(piece, cranium_centre, size, spacing, anterior, superior,
                                                   size=int(sizes[lab] * size / max(1, int(sizes.sum())))):
                continue
            markers = np.where(piece, 2, np.where(labels > 0, 1, 0)).astype(np.int32)
            split = watershed(-values.astype(np.float32), markers, mask=sub)
            if _holds_chin(split, spacing, anterior, superior):
                mandible = np.zeros_like(bone)
                mandible[box] = split == 2
                return mandible, level
    return None


def landmark_seeds(bone: np.ndarray, landmarks: dict, to_index) -> tuple[np.ndarray, list[str], list[str]]:
    """Watershed markers (1 skull, 2 mandible) in ``bone`` from the landmarks of
    :data:`SKULL_LANDMARKS` and :data:`MANDIBLE_LANDMARKS`: the bone voxels within
    :data:`SEED_REACH_MM` of each (``to_index`` maps points to fractional voxel indices, numpy
    order k, j, i, and gives the voxel size in mm). Returns the markers and the names used on
    each bone (a landmark with no bone near it is left out)."""
    markers = np.zeros(bone.shape, np.int32)
    used: dict[int, list[str]] = {1: [], 2: []}
    for label, names in ((1, SKULL_LANDMARKS), (2, MANDIBLE_LANDMARKS)):
        for name in names:
            if name not in landmarks:
                continue
            centre, voxel_mm = to_index(np.asarray(landmarks[name], float))
            reach = np.ceil(SEED_REACH_MM / voxel_mm).astype(int)
            lo = np.maximum(np.floor(centre).astype(int) - reach, 0)
            hi = np.minimum(np.ceil(centre).astype(int) + reach + 1, bone.shape)
            if np.any(hi <= lo):
                continue
            grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1)
            near = np.linalg.norm((grid - centre) * voxel_mm, axis=-1) <= SEED_REACH_MM
            box = tuple(slice(a, b) for a, b in zip(lo, hi))
            seed = near & bone[box] & (markers[box] == 0)
            if seed.any():
                markers[box][seed] = label
                used[label].append(name)
    return markers, used[1], used[2]


def landmark_split(bone: np.ndarray, hu: np.ndarray, landmarks: dict, to_index) -> tuple[np.ndarray, str] | None:
    """(mandible, how) from a watershed on the CT values seeded at the landmarks
    (:func:`landmark_seeds`), so the seam runs along the lowest values between them (the joint
    spaces, the gap between the teeth) wherever the seeds put it; or None with fewer than two
    seeds on either bone or a mandible of implausible size (:data:`MANDIBLE_FRACTION`)."""
    from skimage.segmentation import watershed

    markers, skull_names, mandible_names = landmark_seeds(bone, landmarks, to_index)
    if len(skull_names) < 2 or len(mandible_names) < 2:
        return None
    box = mask_box(bone)
    split = watershed(-hu[box].astype(np.float32), markers[box], mask=bone[box])
    mandible = np.zeros_like(bone)
    mandible[box] = split == 2
    size, whole = int(mandible.sum()), int(bone.sum())
    if not MANDIBLE_FRACTION[0] * whole <= size <= MANDIBLE_FRACTION[1] * whole:
        return None
    return mandible, (f"seeded at {len(mandible_names)} mandible and {len(skull_names)} skull landmarks and "
                      "regrown across the lowest values")


def _erode_split(bone: np.ndarray, spacing, anterior, superior) -> tuple[np.ndarray, float] | None:
    """Labels (1 cranium, 2 mandible) of ``bone`` and the erosion radius, or None."""
    from scipy.ndimage import distance_transform_edt, label
    from skimage.segmentation import watershed

    size = int(bone.sum())
    dist = distance_transform_edt(bone, sampling=tuple(spacing[::-1]))
    for r in ERODE_MM:
        core = dist > r
        labels, n = label(core)
        if n < 2:
            continue
        sizes, order = _largest(labels, n)
        cranium_centre = _centroid_mm(labels == order[0], spacing)
        shrink = size / max(1, int(core.sum()))
        for lab in order[1:8]:
            if sizes[lab] == 0:
                break
            piece = labels == lab
            # an eroded piece is judged at its regrown size and is narrower by the erosion
            if not _is_mandible(piece, cranium_centre, size, spacing, anterior, superior,
                                size=int(sizes[lab] * shrink), min_width_mm=40.0):
                continue
            markers = np.where(piece, 2, np.where(core, 1, 0)).astype(np.int32)
            split = watershed(-dist, markers, mask=bone)  # not into `labels`: the next candidates read it
            if _holds_chin(split, spacing, anterior, superior):
                return split, r  # the first (least eroded) candidate
    return None


def _holds_chin(labels: np.ndarray, spacing, anterior, superior) -> bool:
    """Does label 2 hold the chin: the lowest bone in the front third of the bone's depth?
    (An upper jaw eroded loose from the skull is also an inferior, anterior U of bone; only the
    mandible reaches down to menton.)"""
    kji = np.argwhere(labels > 0)
    xyz = kji[:, ::-1] * np.asarray(spacing, float)
    forward, up = xyz @ np.asarray(anterior, float), xyz @ np.asarray(superior, float)
    front = forward >= np.percentile(forward, 67)
    lowest = np.argsort(up[front])[: max(1, int(0.02 * front.sum()))]  # the lowest 2 % of the front
    chosen = kji[front][lowest]
    return bool(np.mean(labels[tuple(chosen.T)] == 2) > 0.5)


# ---------------------------------------------------------------------------------------------
# 5. meshing
MAX_MESH_VOXEL_MM = 1.5  # never mesh on a grid coarser than this (unless the CT is)


def mesh_steps(mask: np.ndarray, spacing, target_faces: int) -> tuple[int, int, int]:
    """Block sizes (numpy order k, j, i) for meshing: 1 (full resolution) unless the
    full-resolution surface would have over 4x ``target_faces`` faces; then blocks of about
    the voxel size that brings it there, at most :data:`MAX_MESH_VOXEL_MM` and 3 voxels."""
    crossings = sum(int(np.count_nonzero(np.diff(mask, axis=a))) for a in range(3))
    estimate = 2 * crossings  # flying edges makes about two triangles per crossing
    mean = float(np.mean(spacing))
    size = min(MAX_MESH_VOXEL_MM, mean * np.sqrt(max(1.0, estimate / (4.0 * target_faces))))
    return tuple(int(max(1, min(3, round(size / s)))) for s in spacing[::-1])


def _closed(poly) -> bool:
    """Whether every edge of a triangle surface is shared by exactly two triangles."""
    return _faces_closed(np.asarray(poly.faces).reshape(-1, 4)[:, 1:])


def _faces_closed(faces: np.ndarray) -> bool:
    faces = np.asarray(faces, np.int64)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys = np.sort(edges[:, 0] * (int(faces.max()) + 1) + edges[:, 1])  # one integer per edge
    if len(keys) % 2:
        return False
    pairs_equal = np.array_equal(keys[0::2], keys[1::2])
    return bool(pairs_equal and np.all(keys[2::2] > keys[1:-1:2]))  # each edge exactly twice


def _decimate(surf, target_faces: int):
    """Quadric decimation to ``target_faces`` (fast-simplification's quadric-error collapse, a
    third of VTK's time); where it opens or pinches a closed surface (thin bone at coarse
    voxels), VTK's quadric decimation, then its topology-preserving decimation; if that fails
    too, no decimation."""
    import fast_simplification
    import pyvista as pv

    reduction = 1.0 - target_faces / surf.n_cells
    was_closed = _closed(surf)
    points, faces = fast_simplification.simplify(np.asarray(surf.points, np.float32),
                                                 np.asarray(surf.faces).reshape(-1, 4)[:, 1:].astype(np.int32),
                                                 reduction)
    if len(faces) and (not was_closed or _faces_closed(faces)):
        return pv.PolyData.from_regular_faces(np.asarray(points, float), np.asarray(faces, np.int64))
    out = surf.decimate(reduction, volume_preservation=True)
    if not was_closed or _closed(out):
        return out
    out = surf.decimate_pro(reduction, preserve_topology=True, feature_angle=60.0, splitting=False)
    return out if _closed(out) else surf


def mesh_mask(hu: np.ndarray, mask: np.ndarray, level: float, volume: Volume, direction: np.ndarray, *,
              target_faces: int = 100_000, smooth_iterations: int = 15, name: str = "") -> SurfaceMesh:
    """A closed surface of ``mask`` through the CT values: flying edges at ``level`` on the
    values clamped above ``level`` inside the mask and below it outside (so the surface keeps
    the mask's topology and the CT's sub-voxel position), padded so it closes at the volume
    border; windowed-sinc smoothing, quadric decimation to ``target_faces``; LPS mm with
    ``direction`` (columns: LPS directions of i, j, k) and the volume's origin and spacing."""
    import pyvista as pv

    box = tuple(slice(max(0, int(a.min()) - 1), int(a.max()) + 2) for a in np.nonzero(mask))
    m = mask[box]
    f = np.where(m, np.maximum(hu[box], level + 1.0), np.minimum(hu[box], level - 1.0)).astype(np.float32)
    steps = mesh_steps(m, volume.spacing, target_faces)
    if max(steps) > 1:  # block means: a coarser grid for a face budget far below the full-resolution surface
        f = np.pad(f, [(0, (-n) % b) for n, b in zip(f.shape, steps)], mode="edge")
        (a, b, c), (sa, sb, sc) = f.shape, steps
        f = f.reshape(a // sa, sa, b // sb, sb, c // sc, sc).mean((1, 3, 5))
    f = np.pad(f, 1, constant_values=np.float32(level - 1000.0))
    grid = pv.ImageData(dimensions=f.shape[::-1])
    grid.point_data["v"] = f.ravel()
    surf = grid.contour([level], scalars="v", method="flying_edges", compute_normals=False,
                        compute_gradients=False, compute_scalars=False)
    if surf.n_cells == 0:
        raise InputError(f"the {name or 'mask'} gave an empty surface")
    if smooth_iterations > 0:
        surf = surf.smooth_taubin(n_iter=smooth_iterations, pass_band=0.1, normalize_coordinates=True,
                                  boundary_smoothing=False, feature_smoothing=False)
    if target_faces and surf.n_cells > target_faces:
        surf = _decimate(surf, target_faces)
    step = np.asarray(steps[::-1], float)  # i, j, k
    ijk = (np.asarray(surf.points, float) - 1.0) * step + (step - 1) / 2.0  # undo pad and block means
    ijk += np.array([s.start for s in box])[::-1]  # undo the crop (vtk points are i, j, k)
    faces = np.asarray(surf.faces).reshape(-1, 4)[:, 1:]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    m3 = direction @ np.diag(volume.spacing)
    verts = ijk @ m3.T + np.asarray(volume.origin)
    if np.linalg.det(m3) < 0:  # a mirroring frame flips the winding: keep faces pointing outward
        faces = faces[:, ::-1]
    return orient_outward(SurfaceMesh(verts, faces, name=name))


# ---------------------------------------------------------------------------------------------
# the whole pipeline
@dataclass
class Segmentation:
    """Meshes (LPS mm) and what was found on the way."""

    meshes: dict[str, SurfaceMesh]
    calibration: Calibration
    orientation: Orientation
    volumes_ml: dict[str, float]
    mandible_method: str
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


def _check_parameters(bone_hu, skin_hu, target_faces, face_direction) -> None:
    for name, value, lo, hi in (("bone_hu", bone_hu, 0.0, 3000.0), ("skin_hu", skin_hu, -900.0, -100.0)):
        if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and lo <= value <= hi):
            raise ParameterError(f"must be a number of HU in [{lo:g}, {hi:g}], got {value!r}", parameter=name)
    if isinstance(target_faces, bool) or not isinstance(target_faces, (int, np.integer)) or not 1000 <= target_faces <= 5_000_000:
        raise ParameterError(f"must be an integer in [1000, 5000000], got {target_faces!r}", parameter="target_faces")
    if face_direction != "auto":
        axis_vector(face_direction)


def orient(volume: Volume, body: np.ndarray, face_direction: str, hu: np.ndarray | None = None,
           level: float | None = None) -> Orientation:
    """The file's frame when it has one; otherwise face (given or detected) and top detected."""
    if has_orientation(volume):
        d = np.asarray(volume.direction, float)
        face = axis_name(d.T @ np.array([0.0, -1.0, 0.0]))
        superior = axis_name(d.T @ np.array([0.0, 0.0, 1.0]))
        return Orientation(face, superior, d, estimated=False, evidence={"source": "file"})
    evidence = {}
    if face_direction == "auto":
        face, evidence = detect_face(body, volume.spacing, hu, level)
        evidence["source"] = "estimated from the skin relief (nose)"
    else:
        face = face_direction
        evidence["source"] = "face_direction parameter"
    superior, ev2 = detect_superior(body, volume.spacing, face, hu, level)
    evidence.update(ev2)
    return Orientation(face, superior, frame_from(face, superior), estimated=True, evidence=evidence)


def _finite(array: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The values with NaN or infinite voxels (a field of view padded with NaN) set to the lowest
    finite value, and a warning saying so."""
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.floating):
        return a, []
    bad = ~np.isfinite(a)
    if not bad.any():
        return a, []
    if bad.all():
        raise InputError("every voxel of the CT is NaN or infinite: the image holds no values",
                         hint="check the file; re-export the CT")
    low = float(a[~bad].min())
    return np.where(bad, a.dtype.type(low), a), [f"{bad.mean():.1%} of the voxels are NaN or infinite (outside the "
                                                 f"reconstructed field of view?): treated as the lowest value, {low:g}"]


def _calibrate(array: np.ndarray, units: str, bone_hu: float, skin_hu: float, given: bool
               ) -> tuple[Calibration, list[str]]:
    """The map to HU and its warnings. An 8-bit export (integer values 0-255) is windowed, so
    its bone and skin values cannot be known from the histogram alone: it is segmented only
    with thresholds the user gave (``given``), on the HU scale its histogram peaks map it to."""
    check_content(array)
    eight_bit = looks_eight_bit(array)
    try:
        calib = calibrate_hu(array, units)
    except InputError as exc:
        if not eight_bit:
            raise
        raise InputError("values 0-255 look like an 8-bit export, not Hounsfield units, and their histogram has no "
                         f"credible air and soft-tissue peaks to map them to HU ({exc.message})",
                         hint="export the CT in HU, as a 16-bit DICOM series or NIfTI") from None
    if calib.identity:
        return calib, []
    scale = f"hu = {calib.slope:.4g} * value {calib.intercept:+.4g}"
    mapping = (f"{scale} (air peak {calib.air_value:.0f} -> -1000, soft-tissue peak {calib.soft_tissue_value:.0f} "
               "-> 40)")
    if not eight_bit:
        return calib, [f"values are not in HU ({calib.reason}); mapped to HU by {mapping}"]
    if not given:
        raise InputError("values 0-255 look like an 8-bit export, not Hounsfield units: an 8-bit export is windowed, "
                         "so which values are bone and skin cannot be told from the values alone",
                         hint=f"give --bone-hu and --skin-hu: they apply on the HU scale {scale} estimated from the "
                              "air and soft-tissue histogram peaks; or export the CT in HU, as a 16-bit DICOM series "
                              "or NIfTI")
    value = lambda hu: (hu - calib.intercept) / calib.slope  # noqa: E731 - the file's value of an HU level
    return calib, [f"values 0-255 look like an 8-bit export, not Hounsfield units: mapped to HU by {mapping}; the "
                   f"thresholds bone_hu {bone_hu:g} and skin_hu {skin_hu:g} are applied on that scale (file values "
                   f"{value(bone_hu):.0f} and {value(skin_hu):.0f}): check the surfaces against the images"]


def _body(hu: np.ndarray, skin_hu: float, volume: Volume) -> tuple[np.ndarray, list[str]]:
    """The body (largest component above ``skin_hu``, holes filled) without a scanner table,
    checked for air around it and a human size."""
    body = skin_mask(hu, skin_hu)
    check_air_around(body, skin_hu)
    check_body_size(body, volume.spacing)
    body, table_ml = remove_table(body, volume.spacing)
    if table_ml <= 0:
        return body, []
    from scipy.ndimage import binary_fill_holes, label

    labels, n = label(body)
    body = binary_fill_holes(labels == _largest(labels, n)[1][0])
    return body, [f"a scanner table (a flat slab of {table_ml:.0f} ml touching the head) was removed from the body"]


def _bone(hu: np.ndarray, bone_hu: float, body: np.ndarray, spacing, orientation: Orientation, seeds=None
          ) -> tuple[np.ndarray, np.ndarray | None, str, dict, list[str]]:
    """(cranium, mandible or None, how the mandible was split, component stats, warnings);
    ``seeds``: ``(landmarks, to_index)`` for the landmark-assisted split."""
    from scipy.ndimage import binary_fill_holes

    voxel_ml = float(np.prod(spacing)) / 1000.0
    labels, keep, stats = bone_components(hu, bone_hu, body, voxel_ml)
    cranium = binary_fill_holes(labels == keep[0])
    others = [binary_fill_holes(labels == l) for l in keep[1:]]
    cranium, mandible, how = split_mandible(cranium, others, spacing, axis_vector(orientation.face),
                                            axis_vector(orientation.superior), hu=hu, seeds=seeds)
    for o in others:
        if o is not mandible:
            cranium = cranium | (o if mandible is None else o & ~mandible)
    warnings = []
    if seeds is not None and how != "separate component" and not how.startswith("seeded"):
        warnings.append(
            "the landmarks were not used for the mandible split: fewer than two of the skull's or the mandible's "
            f"({', '.join(MANDIBLE_LANDMARKS)}) lie within {SEED_REACH_MM:g} mm of bone in this CT, or the part they "
            "seeded is not of a mandible's size; check that they are in the CT's frame (LPS mm)")
    if how.startswith("eroded"):
        warnings.append("the mandible touches the skull in the CT (jaws closed, or the joint space and the gap "
                        "between the teeth finer than the voxels): it was cut loose by erosion and regrowth, so "
                        "teeth or condyles in contact may stay with the skull; check the meshes before occlusal "
                        "planning (a CT with a bite wafer and voxels of about 1 mm separates them)")
    if mandible is None:
        warnings.append("the mandible could not be separated from the skull (erosion up to 4 mm freed no "
                        "inferior-anterior bone reaching down to the chin; the jaws may be closed or fused by "
                        "the scan's resolution): the skull mesh includes it")
    bare = soft_tissue_warning(body, hu, bone_hu)
    warnings += [bare] if bare else []
    kept = cranium if mandible is None else cranium | mandible
    warnings += cut_warnings(body, kept, orientation.direction, spacing)
    return cranium, mandible, how, stats, warnings


def _orientation_warnings(orientation: Orientation, face_direction: str) -> list[str]:
    if orientation.estimated:
        return [f"the file stores no orientation: the face was {'found' if face_direction == 'auto' else 'given'}"
                f" to point to {orientation.face} and the top of the head to {orientation.superior} in index "
                "space (estimated from the skin relief); the meshes are rotated into LPS with the face "
                "towards -y (anterior) and the top towards +z; left and right are assumed not mirrored"]
    if face_direction != "auto":
        return [f"face_direction={face_direction} ignored: the file stores an orientation"]
    return []


def _to_index(volume: Volume, direction: np.ndarray):
    """``point -> (fractional index in numpy order k, j, i, voxel size in that order)`` for points
    in the meshes' frame (``direction`` and the volume's origin and spacing, as :func:`mesh_mask`)."""
    inverse = np.linalg.inv(np.asarray(direction, float) @ np.diag(volume.spacing))
    origin, voxel_mm = np.asarray(volume.origin, float), np.asarray(volume.spacing, float)[::-1]

    def to_index(point: np.ndarray):
        return ((point - origin) @ inverse.T)[::-1], voxel_mm

    return to_index


def segment_ct(volume: Volume, *, bone_hu: float | None = None, skin_hu: float | None = None,
               target_faces: int = 100_000, face_direction: str = "auto", smooth_iterations: int = 15,
               landmarks: dict | None = None) -> Segmentation:
    """Skin, skull and mandible surfaces of a head CT (see the module notes for the steps).

    ``bone_hu`` and ``skin_hu`` default to :data:`DEFAULT_BONE_HU` and :data:`DEFAULT_SKIN_HU`;
    an 8-bit export (values 0-255) is segmented only when at least one of them is given. Any CT
    gives a :class:`Segmentation` (with warnings for what it lacks: a cut head, no soft tissue,
    coarse voxels, a removed table) or an :class:`InputError` that says what is wrong (one or
    two slices, one value, only air, no air around the body, a spacing not in mm, no bone).
    ``landmarks`` (name -> LPS mm point in the meshes' frame, e.g. a plan's): where the jaws touch
    in the CT, the mandible is split by a watershed seeded at them (:func:`landmark_split`)."""
    import time

    given = bone_hu is not None or skin_hu is not None
    bone_hu = DEFAULT_BONE_HU if bone_hu is None else bone_hu
    skin_hu = DEFAULT_SKIN_HU if skin_hu is None else skin_hu
    _check_parameters(bone_hu, skin_hu, target_faces, face_direction)
    t = {"start": time.perf_counter()}
    warnings = check_grid(volume)
    array, more = _finite(volume.array)
    warnings += more
    calib, more = _calibrate(array, volume.units, bone_hu, skin_hu, given)
    warnings += more
    hu = calib.apply(array)
    t["calibrate"] = time.perf_counter()

    body0, more = _body(hu, skin_hu, volume)
    orientation = orient(volume, body0, face_direction, hu, skin_hu)
    warnings += more + _orientation_warnings(orientation, face_direction)
    axial_np_axis = 2 - int(np.argmax(np.abs(axis_vector(orientation.superior))))
    body = fill_slices(body0, axial_np_axis)
    t["skin"] = time.perf_counter()

    seeds = (landmarks, _to_index(volume, orientation.direction)) if landmarks else None
    cranium, mandible, how, stats, more = _bone(hu, bone_hu, body, volume.spacing, orientation, seeds)
    warnings += more
    t["bone"] = time.perf_counter()

    mesh = lambda mask, level, name, faces: mesh_mask(  # noqa: E731
        hu, mask, level, volume, orientation.direction, target_faces=faces, smooth_iterations=smooth_iterations,
        name=name)
    meshes = {"skin": mesh(body, skin_hu, "skin", target_faces), "skull": mesh(cranium, bone_hu, "skull", target_faces)}
    if mandible is not None:
        meshes["mandible"] = mesh(mandible, bone_hu, "mandible", max(1000, target_faces // 2))
    t["mesh"] = time.perf_counter()
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    volumes_ml = {name: float(m.sum()) * voxel_ml for name, m in
                  (("skin", body), ("skull", cranium), ("mandible", mandible)) if m is not None}
    names = list(t)
    timings = {names[k]: round(t[names[k]] - t[names[k - 1]], 3) for k in range(1, len(names))}
    timings["total"] = round(t[names[-1]] - t["start"], 3)
    return Segmentation(meshes, calib, orientation, volumes_ml, how, stats, warnings, timings)
