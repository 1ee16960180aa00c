"""A synthetic CT of a phantom head, in Hounsfield units.

:func:`head_ct` voxelises a :class:`~medface.phantom.head.Head` from the template's tissue
fields (signed distances, ``medface.phantom.template``): air, skin and soft tissue, a
subcutaneous fat layer, brain in the cranial cavity, the eyes (vitreous), bone with a cortical
shell over cancellous bone, and teeth. Each voxel mixes the tissues by the fraction of it that
lies inside each one (partial volume), so the surfaces sit where the meshes are: the iso-level
midway between two adjacent tissues passes through their boundary. Gaussian noise from a seeded
generator makes the image look like a scan; the same seed gives the same array.

Speed. A subject point ``y`` lies in a bony tissue when the template field is negative at the
inverse of ``head.warp`` at ``y`` (of ``head.skin_forward`` for the skin). Inverting the warp
at millions of voxels would take minutes, so the two inverse maps are computed exactly (Newton's
method) on a coarse grid (``coarse_mm``, 5 mm by default) laid along the volume's own axes, and
interpolated to the voxels by separable cubic splines (three small matrix products). Then the
interpolation is checked against the exact maps at the centre of every coarse cell in and near
the head; the voxels of cells where it misses by more than ``map_tolerance_mm`` (0.1 mm; strong
local warps such as a shortened nose) are recomputed exactly. The template fields are then
sampled trilinearly, only where the voxel is inside the head. A 1.5 mm head CT takes a few
seconds on two cores.

Layers. From outside in, each painted over the last by its voxel fraction: soft tissue inside
the skin; subcutaneous fat from ``FAT_SKIN_GAP_MM`` under the skin down to
``FAT_DEPTH_FRACTION`` of the local soft-tissue depth (skin to the "support" field: bone,
muscles, eyes), at most ``FAT_MAX_MM`` (scaled by BMI / 24), none in the nose and ears; the eyes;
the brain; bone (cranium and mandible) as cortical bone with cancellous bone from
``CORTICAL_MM`` under its surface; the teeth. The iso-levels :data:`SKIN_THRESHOLD_HU` and
:data:`BONE_THRESHOLD_HU` give back the skin and the bone surfaces (inside the bone the bone
level also separates cortical from cancellous bone, as in a real CT).

:func:`write_ct` writes the volume as NIfTI and as a DICOM CT series, byte-identical for the
same inputs. Everything here is synthetic and labelled so in the metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.volume import Volume
from ..errors import ParameterError
from . import shape as SH

# Hounsfield units of the phantom's tissues (typical values of clinical head CT)
TISSUE_HU = {
    "air": -1000.0,
    "soft_tissue": 40.0,  # skin, muscle, connective tissue
    "fat": -90.0,  # subcutaneous fat
    "brain": 35.0,  # grey and white matter averaged
    "eye": 10.0,  # vitreous body
    "cortical_bone": 1600.0,
    "cancellous_bone": 350.0,
    "teeth": 2500.0,  # enamel and dentin as one value
}
CORTICAL_MM = 1.75  # cortical shell under the bone surface
FAT_SKIN_GAP_MM = 1.5  # dermis over the subcutaneous fat
FAT_DEPTH_FRACTION = 0.4  # fat reaches down this fraction of the local soft-tissue depth ...
FAT_MAX_MM = 10.0  # ... but no deeper than this (at BMI 24, scaled with BMI / 24)
FAT_FREE_MM = 5.0  # no fat in the nose and ears; full fat this far from them
COARSE_MM = 5.0
MAP_TOLERANCE_MM = 0.1
# The template's jaws touch (condyles in their fossae, teeth in occlusion). A planning CT is taken
# with the condyles seated and a wax bite between the arches, and the joint has a space: about
# 2.5 mm superior joint space in adults (Ikeda & Kawamura 2009, limited cone-beam CT of 22
# asymptomatic joints: anterior 1.3, superior 2.5, posterior 2.1 mm). Where cranium and mandible
# (or upper and lower teeth) come within this distance of each other, the CT shows soft tissue
# between them: each bone gives up half of it along the surface midway between the two.
# The same gap between the arches stands for the wax bite (assumption: 2-3 mm wafers are usual).
JAW_GAP_MM = 2.5
# iso-levels midway between adjacent tissues: where surfaces come back from the CT
SKIN_THRESHOLD_HU = 0.5 * (TISSUE_HU["air"] + TISSUE_HU["soft_tissue"])  # -480
BONE_THRESHOLD_HU = 0.5 * (TISSUE_HU["soft_tissue"] + TISSUE_HU["cortical_bone"])  # 820

_BONE_FIELDS = ("cranium", "mandible", "teeth", "brain", "eyes")
_FILL = 1e3  # signed distance outside a field's grid: far outside the tissue
_CHUNK_VOXELS = 600_000


def head_ct(head, *, spacing=1.0, direction=None, noise_hu: float = 10.0, seed: int = 0,
            margin_mm: float = 10.0, blur_mm: float = 0.0, coarse_mm: float = COARSE_MM,
            map_tolerance_mm: float = MAP_TOLERANCE_MM, tissue_hu: dict | None = None, template=None,
            jaw_gap_mm: float = JAW_GAP_MM) -> Volume:
    """A CT volume of ``head`` in HU (int16), covering its skin plus ``margin_mm``.

    ``spacing`` is one number or ``(sx, sy, sz)`` in mm along the index axes i, j, k.
    ``direction`` is a 3x3 orthonormal matrix whose columns are the i, j, k axes in LPS
    (identity by default); the grid is laid out along those axes, tight around the skin.
    ``noise_hu`` is the standard deviation of the Gaussian noise, drawn from
    ``numpy.random.default_rng(seed)``. ``blur_mm`` (sigma, default 0) applies a Gaussian
    point-spread function before the noise; it is symmetric, so flat surfaces stay in place.
    ``tissue_hu`` overrides entries of :data:`TISSUE_HU`. ``coarse_mm`` is the grid on which the
    subject's inverse warp is evaluated exactly; voxels where its interpolation misses by more
    than ``map_tolerance_mm`` are recomputed exactly (see the module notes). ``jaw_gap_mm`` is
    the soft tissue kept between mandible and cranium where they touch (:data:`JAW_GAP_MM`; 0
    gives the template's touching jaws).
    ``metadata`` records the tissue values, the seed, the noise and the accuracy of the maps.
    """
    from .template import get_template

    spacing = _check_spacing(spacing)
    direction = _check_direction(direction)
    _check_ct_numbers(noise_hu=noise_hu, margin_mm=margin_mm, blur_mm=blur_mm, seed=seed, coarse_mm=coarse_mm,
                      map_tolerance_mm=map_tolerance_mm, jaw_gap_mm=jaw_gap_mm)
    hu = _tissue_values(tissue_hu)
    template = template or get_template()
    origin, axes = _ct_grid(head, spacing, direction, margin_mm)
    maps = _InverseMaps(head, template, direction, axes, coarse_mm, map_tolerance_mm)
    fat_max = FAT_MAX_MM * float(np.clip(getattr(getattr(head, "subject", None), "bmi", 24.0) / 24.0, 0.5, 2.0))
    image = _composed_image(maps, template, [len(a) for a in axes], float(np.mean(spacing)), hu, fat_max,
                            jaw_gap_mm=float(jaw_gap_mm))
    if blur_mm > 0:
        from scipy.ndimage import gaussian_filter

        image = gaussian_filter(image, sigma=[blur_mm / s for s in spacing[::-1]], mode="nearest", truncate=3.0)
    rng = np.random.default_rng(seed)
    if noise_hu > 0:
        image += np.float32(noise_hu) * rng.standard_normal(image.shape, dtype=np.float32)
    array = np.clip(np.rint(image), -32768, 32767).astype(np.int16)
    metadata = _ct_metadata(head, maps, hu, fat_max, noise_hu=noise_hu, blur_mm=blur_mm, seed=seed,
                            coarse_mm=coarse_mm, map_tolerance_mm=map_tolerance_mm)
    metadata["jaw_gap_mm"] = float(jaw_gap_mm)
    return Volume(array, spacing=tuple(spacing), origin=tuple(origin), direction=direction, units="HU",
                  metadata=metadata)


def _check_ct_numbers(*, noise_hu, margin_mm, blur_mm, seed, coarse_mm, map_tolerance_mm, jaw_gap_mm=0.0) -> None:
    """Refuse negative noise, margin or blur, a bad seed and non-positive map settings."""
    for name, value in (("noise_hu", noise_hu), ("margin_mm", margin_mm), ("blur_mm", blur_mm),
                        ("jaw_gap_mm", jaw_gap_mm)):
        if not np.isfinite(value) or value < 0:
            raise ParameterError(f"must be a non-negative number, got {value!r}", parameter=name)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"must be a non-negative integer, got {seed!r}", parameter="seed")
    for name, value in (("coarse_mm", coarse_mm), ("map_tolerance_mm", map_tolerance_mm)):
        if not np.isfinite(value) or value <= 0:
            raise ParameterError(f"must be a positive number of mm, got {value!r}", parameter=name)


def _tissue_values(tissue_hu: dict | None) -> dict:
    """:data:`TISSUE_HU` with the caller's overrides (unknown tissues refused)."""
    hu = dict(TISSUE_HU)
    unknown = sorted(set(tissue_hu or {}) - set(hu))
    if unknown:
        raise ParameterError(f"unknown tissue(s) {', '.join(unknown)}; known: {', '.join(hu)}", parameter="tissue_hu")
    hu.update({k: float(v) for k, v in (tissue_hu or {}).items()})
    return hu


def _ct_grid(head, spacing: np.ndarray, direction: np.ndarray, margin_mm: float) -> tuple[np.ndarray, list]:
    """The voxel grid: the skin's bounding box along the index axes plus the margin. Returns the
    origin (LPS mm) and the index-frame coordinates (mm) of the voxels along i, j and k."""
    skin_v = np.asarray(head.meshes["skin"][0], float)
    q = skin_v @ direction  # coordinates along the index axes (mm)
    lo = np.floor((q.min(axis=0) - margin_mm) / spacing) * spacing
    n = (np.ceil((q.max(axis=0) + margin_mm - lo) / spacing) + 1).astype(int)
    origin = direction @ lo
    return origin, [lo[a] + spacing[a] * np.arange(n[a]) for a in range(3)]


def _composed_image(maps, template, n, h: float, hu: dict, fat_max: float, *, jaw_gap_mm: float = 0.0) -> np.ndarray:
    """The noiseless HU image (k, j, i) as float32, composed in chunks of slices."""
    image = np.empty((n[2], n[1], n[0]), np.float32)
    step = max(1, _CHUNK_VOXELS // (n[0] * n[1]))
    for k0 in range(0, n[2], step):
        k1 = min(n[2], k0 + step)
        image[k0:k1] = _compose(maps, template, k0, k1, h, hu, fat_max,
                                jaw_gap_mm=jaw_gap_mm).reshape(k1 - k0, n[1], n[0])
    return image


def _ct_metadata(head, maps, hu: dict, fat_max: float, *, noise_hu, blur_mm, seed, coarse_mm,
                 map_tolerance_mm) -> dict:
    """What a phantom CT records about how it was made."""
    subject = getattr(head, "subject", None)
    metadata = {
        "description": "synthetic phantom CT (medface.phantom); no real person, not for clinical use",
        "synthetic": True,
        "modality": "CT",
        "generator": "medface.phantom.ct.head_ct",
        "tissue_hu": hu,
        "cortical_mm": CORTICAL_MM,
        "fat_layer": {"skin_gap_mm": FAT_SKIN_GAP_MM, "depth_fraction": FAT_DEPTH_FRACTION, "max_mm": fat_max},
        "noise_hu": float(noise_hu),
        "blur_mm": float(blur_mm),
        "seed": int(seed),
        "coarse_mm": float(coarse_mm),
        "inverse_residual_mm": round(maps.residual_mm, 6),
        "map_probe_error_mm": round(maps.probe_error_mm, 4),
        "map_tolerance_mm": float(map_tolerance_mm),
        "map_repaired_cells": int(maps.flagged.sum()),
        "thresholds_hu": {"skin": 0.5 * (hu["air"] + hu["soft_tissue"]),
                          "bone": 0.5 * (hu["soft_tissue"] + hu["cortical_bone"])},
    }
    if subject is not None and hasattr(subject, "to_dict"):
        metadata["subject"] = subject.to_dict()
    return metadata


def write_ct(volume: Volume, folder, *, nifti: bool = True, dicom: bool = True, uid_seed: str | None = None,
             series_description: str = "medface synthetic phantom head CT", overwrite: bool = False) -> dict:
    """Write a phantom CT into ``folder``: ``ct.nii.gz`` and a DICOM CT series in ``dicom/``.

    The same volume and ``uid_seed`` give byte-identical files (``uid_seed`` defaults to a hash
    of the voxels and geometry). Returns ``{"nifti": path, "dicom": folder}`` for what was
    written. ``overwrite`` replaces an existing ``ct.nii.gz`` and the DICOM files in ``dicom/``.
    """
    from ..errors import OutputError
    from ..io import write_dicom_series, write_volume

    folder = Path(folder)
    path, series = folder / "ct.nii.gz", folder / "dicom"
    if not overwrite:  # check both before writing either
        if nifti and path.exists():
            raise OutputError("exists already", path=path, hint="pass overwrite=True to replace it")
        if dicom and series.is_dir() and any(series.iterdir()):
            raise OutputError("holds files already", path=series, hint="pass overwrite=True to replace them")
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    if nifti:
        out["nifti"] = write_volume(volume, path)
    if dicom:
        write_dicom_series(volume, series, modality="CT", patient_name="SYNTHETIC^PHANTOM", patient_id="SYNTHETIC",
                           series_description=series_description, uid_seed=uid_seed, overwrite=overwrite)
        out["dicom"] = series
    return out


# ---------------------------------------------------------------------------------------------
def _check_spacing(spacing) -> np.ndarray:
    s = np.atleast_1d(np.asarray(spacing, float))
    if s.size == 1:
        s = np.repeat(s, 3)
    if s.shape != (3,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ParameterError(f"must be a positive number or three positive numbers (mm), got {spacing!r}",
                             parameter="spacing")
    return s


def _check_direction(direction) -> np.ndarray:
    if direction is None:
        return np.eye(3)
    d = np.asarray(direction, float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)) or not np.allclose(d.T @ d, np.eye(3), atol=1e-6):
        raise ParameterError("must be a 3x3 orthonormal matrix (columns: the index axes in LPS)",
                             parameter="direction")
    return d


def _smoothstep(x, e0, e1):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _spline_matrix(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(x), len(nodes)) weights of cubic-spline interpolation from ``nodes`` to ``x``."""
    from scipy.interpolate import CubicSpline

    return CubicSpline(nodes, np.eye(len(nodes)), bc_type="not-a-knot")(x)


class _InverseMaps:
    """The subject's inverse maps (bone: ``warp.inverse``; skin: the inverse of ``skin_forward``)
    into the template's design frame, for the voxels of a volume.

    They are computed exactly on a coarse grid along the volume's axes and interpolated to the
    voxels by separable cubic splines, as displacements from the rigid part (head frame ->
    design frame), which are small and smooth. Then the interpolation is checked: the exact maps
    are evaluated at the centres of the coarse cells in and near the head, and voxels of every
    cell (and its neighbours) where the interpolation misses by more than ``tolerance_mm`` are
    recomputed exactly in :meth:`repair` (Newton from the interpolated value: a step or two).
    """

    def __init__(self, head, template, direction: np.ndarray, axes: list[np.ndarray], coarse_mm: float,
                 tolerance_mm: float):
        self.axes = axes
        self.forward = {"bone": head.warp.forward, "skin": getattr(head, "skin_forward", head.warp.forward)}
        inv = np.linalg.inv(np.asarray(template.frame, float))
        # head frame -> design frame; contiguous copies: numpy multiplies (N, 3) by a transposed
        # 3x3 view several times slower
        self.R, self.t = np.ascontiguousarray(inv[:3, :3]), inv[:3, 3].copy()
        self.RT = np.ascontiguousarray(self.R.T)
        self.DT = np.ascontiguousarray(direction.T)
        self.A = self.R @ direction  # index-frame mm -> design frame (linear part)
        nodes, self.steps = self._nodes(axes, coarse_mm)
        self.nodes = nodes
        self.W = [_spline_matrix(c, x).astype(np.float32) for c, x in zip(nodes, axes)]
        pc = self._points(nodes)
        shape = tuple(len(c) for c in nodes[::-1])
        xb, res_b = SH.invert(self.forward["bone"], pc, tol=1e-3)
        xs0 = xb - (self.forward["skin"](xb) - pc)  # one fixed-point step from the bone's inverse
        xs, res_s = SH.invert(self.forward["skin"], pc, xs0, tol=1e-3)
        rigid = self.to_design(pc)
        design_b, design_s = self.to_design(xb), self.to_design(xs)
        d_skin = template.fields["skin"].sample(design_s)
        in_head = d_skin < 10.0
        self.residual_mm = float(np.maximum(res_b, res_s)[in_head].max(initial=0.0))
        allow = np.ones(len(pc))
        near_skin = in_head & (d_skin > -40.0)
        allow[near_skin] = self._fat_allowance(design_s[near_skin])
        coarse = {"bone": (design_b - rigid).reshape(*shape, 3),
                  "skin": np.concatenate([design_s - rigid, allow[:, None]], axis=1).reshape(*shape, 4)}
        self.partial = {k: self._contract(v, self.W[0], self.W[1]) for k, v in coarse.items()}
        self._probe(template, coarse, tolerance_mm)

    # geometry helpers -------------------------------------------------------------------
    @staticmethod
    def _nodes(axes, step_mm: float):
        """Coarse nodes spanning each axis, one spare node beyond either end, and their steps."""
        nodes, steps = [], []
        for x in axes:
            length = x[-1] - x[0]
            m = max(2, int(np.ceil(length / step_mm)) + 1)
            step = length / (m - 1) if length > 0 else step_mm
            nodes.append(x[0] + step * np.arange(-1, m + 1))
            steps.append(step)
        return nodes, steps

    def _points(self, axes3) -> np.ndarray:
        """Head-frame (LPS) points of the grid ``axes3`` (index-frame mm along i, j, k), [k, j, i]."""
        ci, cj, ck = np.meshgrid(*axes3, indexing="ij")
        q = np.stack([ci, cj, ck], axis=-1).transpose(2, 1, 0, 3).reshape(-1, 3)
        return q @ self.DT

    def to_design(self, x: np.ndarray) -> np.ndarray:
        return x @ self.RT + self.t

    def to_head(self, design: np.ndarray) -> np.ndarray:
        return (np.asarray(design, float) - self.t) @ self.R

    @staticmethod
    def _contract(u: np.ndarray, wi: np.ndarray, wj: np.ndarray) -> np.ndarray:
        """(mk, mj, mi, c) coarse values -> (mk, nj, ni, c): interpolated along i and j."""
        v = np.einsum("kjmc,im->kjic", u.astype(np.float32), wi, optimize=True)
        return np.einsum("kjic,nj->knic", v, wj, optimize=True)

    @staticmethod
    def _fat_allowance(design: np.ndarray) -> np.ndarray:
        """1 where subcutaneous fat may lie, 0 in the nose and the ears (cartilage under skin)."""
        from . import skin as K

        d = np.full(len(design), np.inf)
        for name in ("nose", "ears"):
            f = getattr(K, name, None)
            if f is not None:
                d = np.minimum(d, f(design))
        return np.where(np.isfinite(d), _smoothstep(np.where(np.isfinite(d), d, 0.0), 0.0, FAT_FREE_MM), 1.0)

    # the check --------------------------------------------------------------------------
    def _probe(self, template, coarse: dict, tolerance_mm: float) -> None:
        from scipy.ndimage import binary_dilation

        centres = [c[:-1] + 0.5 * np.diff(c) for c in self.nodes]
        Wc = [_spline_matrix(n, c).astype(np.float32) for n, c in zip(self.nodes, centres)]
        cells = tuple(len(c) for c in centres[::-1])
        pc = self._points(centres)
        rigid = self.to_design(pc)
        interp = {k: np.tensordot(Wc[2], self._contract(v, Wc[0], Wc[1]), axes=(1, 0)).reshape(-1, v.shape[-1])[:, :3]
                  for k, v in coarse.items()}
        ds = rigid + interp["skin"]
        near = np.nonzero(template.fields["skin"].sample(ds) < 2.0 * max(self.steps) + 5.0)[0]
        error = np.zeros(len(pc))
        for which in ("skin", "bone"):
            approx = rigid[near] + interp[which][near]
            x, _ = SH.invert(self.forward[which], pc[near], self.to_head(approx), tol=1e-3)
            error[near] = np.maximum(error[near], np.linalg.norm(self.to_design(x) - approx, axis=1))
        self.probe_errors = error.reshape(cells)
        self.probe_error_mm = float(error.max(initial=0.0))
        bad = (error > tolerance_mm).reshape(cells)
        self.flagged = binary_dilation(bad, np.ones((3, 3, 3), bool)) if bad.any() else bad
        # the cell of every voxel along each axis
        self.cell = [np.clip(((x - n[0]) // s).astype(int), 0, len(n) - 2)
                     for x, n, s in zip(self.axes, self.nodes, self.steps)]

    def flagged_voxels(self, k0: int, k1: int) -> np.ndarray:
        if not self.flagged.any():
            return np.zeros((k1 - k0) * len(self.axes[1]) * len(self.axes[0]), bool)
        f = self.flagged[self.cell[2][k0:k1]][:, self.cell[1]][:, :, self.cell[0]]
        return f.reshape(-1)

    def repair(self, which: str, design: np.ndarray, rigid: np.ndarray) -> np.ndarray:
        """Exact design-frame positions for voxels whose interpolated ones are ``design``."""
        x, _ = SH.invert(self.forward[which], self.to_head(rigid), self.to_head(design), tol=1e-3)
        return self.to_design(x).astype(np.float32)

    # interpolation --------------------------------------------------------------------------
    def rigid(self, k0: int, k1: int) -> np.ndarray:
        """Design-frame positions of the voxel centres of slices k0..k1, flattened [k, j, i]."""
        qi, qj, qk = self.axes[0], self.axes[1], self.axes[2][k0:k1]
        p = (self.t + self.A[:, 2] * qk[:, None, None, None].astype(float)
             + self.A[:, 1] * qj[None, :, None, None] + self.A[:, 0] * qi[None, None, :, None])
        return p.reshape(-1, 3).astype(np.float32)

    def interpolate(self, which: str, k0: int, k1: int) -> np.ndarray:
        v = self.partial[which]
        out = np.tensordot(self.W[2][k0:k1], v, axes=(1, 0))
        return out.reshape(-1, v.shape[-1])


class _Sampler:
    """Trilinear interpolation of one or more fields on a common grid, at shared points."""

    def __init__(self, grid, design: np.ndarray):
        shape = np.array(grid.values.shape)  # (nz, ny, nx)
        c = (design - np.asarray(grid.origin, np.float32)) / np.float32(grid.spacing)  # (x, y, z) index
        c = c[:, ::-1]  # (z, y, x)
        f = np.floor(c)
        i0 = f.astype(np.int64)
        self.valid = np.all((i0 >= 0) & (i0 < shape - 1), axis=1)
        i0 = np.where(self.valid[:, None], i0, 0)
        fr = np.where(self.valid[:, None], c - f, 0).astype(np.float32)
        self.fz, self.fy, self.fx = fr[:, 0], fr[:, 1], fr[:, 2]
        ny, nx = int(shape[1]), int(shape[2])
        self.base = (i0[:, 0] * ny + i0[:, 1]) * nx + i0[:, 2]
        self.dy, self.dz = nx, ny * nx

    def sample(self, values: np.ndarray) -> np.ndarray:
        a = values.reshape(-1)
        b, dy, dz, fx, fy, fz = self.base, self.dy, self.dz, self.fx, self.fy, self.fz
        c00 = a[b] + fx * (a[b + 1] - a[b])
        c01 = a[b + dy] + fx * (a[b + dy + 1] - a[b + dy])
        c10 = a[b + dz] + fx * (a[b + dz + 1] - a[b + dz])
        c11 = a[b + dz + dy] + fx * (a[b + dz + dy + 1] - a[b + dz + dy])
        c0 = c00 + fy * (c01 - c00)
        c1 = c10 + fy * (c11 - c10)
        out = c0 + fz * (c1 - c0)
        out[~self.valid] = _FILL
        return out


def _occupancy(d: np.ndarray, h: float) -> np.ndarray:
    """Fraction of a voxel of size ``h`` inside a surface at signed distance ``d`` (linear ramp)."""
    return np.clip(np.float32(0.5) - d * np.float32(1.0 / h), 0.0, 1.0)


def _jaws_apart(d: dict, gap_mm: float) -> None:
    """Open a ``gap_mm`` layer between cranium and mandible where they touch (in place on the
    signed distances ``d``): half of it from each bone, about the surface midway between them
    (where their distances are equal); the teeth give way the same way."""
    if gap_mm <= 0:
        return
    half = np.float32(0.5 * gap_mm)
    midway = np.float32(0.5) * (d["mandible"] - d["cranium"])  # > 0 on the cranium's side
    d["cranium"] = np.maximum(d["cranium"], half - midway)
    d["mandible"] = np.maximum(d["mandible"], half + midway)
    d["teeth"] = np.maximum(d["teeth"], half - np.abs(midway))


def _compose(maps: _InverseMaps, template, k0: int, k1: int, h: float, hu: dict, fat_max: float, *,
             jaw_gap_mm: float = 0.0) -> np.ndarray:
    """HU values (float32, flat [k, j, i]) of slices k0..k1 without noise."""
    fields = template.fields
    rigid = maps.rigid(k0, k1)
    skin_map = maps.interpolate("skin", k0, k1)
    design_s = rigid + skin_map[:, :3]
    d_skin = _Sampler(fields["skin"], design_s).sample(fields["skin"].values)
    flagged = maps.flagged_voxels(k0, k1)
    fix = np.nonzero(flagged & (d_skin < 0.5 * h + 2.0 + 2.0 * maps.probe_error_mm))[0]
    if len(fix):
        exact = maps.repair("skin", design_s[fix], rigid[fix])
        d_skin[fix] = _Sampler(fields["skin"], exact).sample(fields["skin"].values)
    out = np.full(len(rigid), hu["air"], np.float32)
    inside = np.nonzero(d_skin < 0.5 * h)[0]
    if len(inside) == 0:
        return out
    d_skin = d_skin[inside]
    allow = np.clip(skin_map[inside, 3], 0.0, 1.0)
    design_b = rigid[inside] + maps.interpolate("bone", k0, k1)[inside, :3]
    fix = np.nonzero(flagged[inside])[0]
    if len(fix):
        design_b[fix] = maps.repair("bone", design_b[fix], rigid[inside][fix])
    d_sup = _Sampler(fields["support"], design_b).sample(fields["support"].values)
    bone = _Sampler(fields["cranium"], design_b)
    d = {name: (bone if _same_grid(fields[name], fields["cranium"]) else _Sampler(fields[name], design_b))
         .sample(fields[name].values) for name in _BONE_FIELDS}
    _jaws_apart(d, jaw_gap_mm)

    def paint(v, fraction, value):
        return v + fraction * (np.float32(value) - v)

    v = np.full(len(inside), hu["air"], np.float32)
    v = paint(v, _occupancy(d_skin, h), hu["soft_tissue"])
    # subcutaneous fat: from FAT_SKIN_GAP_MM under the skin down to a fraction of the local
    # soft-tissue depth (skin to support), capped; the max of the two bounds is its signed distance
    s, u = -d_skin, d_sup
    deep = np.minimum(np.float32(FAT_DEPTH_FRACTION) * (s + u), np.float32(fat_max))
    d_fat = np.maximum(np.float32(FAT_SKIN_GAP_MM) - s, s - deep)
    v = paint(v, allow * _occupancy(d_fat, h), hu["fat"])
    v = paint(v, _occupancy(d["eyes"], h), hu["eye"])
    v = paint(v, _occupancy(d["brain"], h), hu["brain"])
    d_bone = np.minimum(d["cranium"], d["mandible"])
    v = paint(v, _occupancy(d_bone, h), hu["cortical_bone"])
    v = paint(v, _occupancy(d_bone + np.float32(CORTICAL_MM), h), hu["cancellous_bone"])
    v = paint(v, _occupancy(d["teeth"], h), hu["teeth"])
    out[inside] = v
    return out


def _same_grid(a, b) -> bool:
    return (a.values.shape == b.values.shape and float(a.spacing) == float(b.spacing)
            and np.array_equal(np.asarray(a.origin), np.asarray(b.origin)))
