"""`Volume`: a 3D image with its geometry in the patient's LPS frame, in millimetres."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError


@dataclass(eq=False)
class Volume:
    """A scalar 3D image and the geometry that places it in the patient.

    ``array`` is indexed ``[k, j, i]`` (slice, row, column), the order SimpleITK and numpy
    agree on. ``spacing`` and ``origin`` are ``(x, y, z)`` in mm, in the order of the index
    ``(i, j, k)``; ``direction`` is a 3x3 matrix whose *columns* are the physical directions of
    the i, j and k axes in LPS. A voxel's centre ``(i, j, k)`` lies at
    ``origin + direction @ (spacing * (i, j, k))``.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    units: str = ""  # "HU" for CT in Hounsfield units, "" if unknown
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self):
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise InputError(f"a Volume needs a 3D array, got shape {self.array.shape}", path=self.source)
        if self.array.size == 0:
            raise InputError("the volume has no voxels", path=self.source)
        if self.array.dtype != bool and (not np.issubdtype(self.array.dtype, np.number)
                                         or np.issubdtype(self.array.dtype, np.complexfloating)):
            raise InputError(f"a Volume holds real scalar voxels, got {self.array.dtype} values", path=self.source,
                             hint="convert complex or structured images to one real value per voxel first")
        self.spacing = _checked_spacing(self.spacing, self.source)
        self.origin = _checked_vector(self.origin, "origin", self.source)
        if max(abs(o) for o in self.origin) > PLAUSIBLE_ORIGIN_MM:
            raise InputError(f"the origin {self.origin} mm lies more than {PLAUSIBLE_ORIGIN_MM:g} mm from the "
                             "scanner's origin: is the file in millimetres?", path=self.source,
                             hint="the file's geometry is corrupt or in another unit; fix or re-export it")
        self.direction = checked_direction(self.direction, self.source)

    # geometry ---------------------------------------------------------------------------
    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along i, j, k (x, y, z index order)."""
        nk, nj, ni = self.array.shape
        return (ni, nj, nk)

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous voxel indices (i, j, k, 1) to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction @ np.diag(self.spacing)
        a[:3, 3] = self.origin
        return a

    def index_to_physical(self, ijk) -> np.ndarray:
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def physical_to_index(self, points) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        m = self.direction @ np.diag(self.spacing)
        return (points - np.asarray(self.origin)) @ np.linalg.inv(m).T

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size along i, j, k in mm (voxel centres to voxel edges)."""
        return tuple(float(n * s) for n, s in zip(self.shape_ijk, self.spacing))

    def bounds(self) -> np.ndarray:
        """Axis-aligned LPS bounds ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of voxel centres."""
        ni, nj, nk = self.shape_ijk
        corners = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)], float)
        p = self.index_to_physical(corners)
        return np.stack([p.min(0), p.max(0)])

    def orientation_code(self) -> str:
        """Three letters naming the patient direction each index axis points to, e.g. 'LPS'."""
        letters = {0: "LR", 1: "PA", 2: "SI"}
        code = ""
        for axis in range(3):
            col = self.direction[:, axis]
            dominant = int(np.argmax(np.abs(col)))
            code += letters[dominant][0 if col[dominant] > 0 else 1]
        return code

    # conversions ------------------------------------------------------------------------
    def to_sitk(self):
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.ravel()))
        return img

    @classmethod
    def from_sitk(cls, image, *, units: str = "", source: str | None = None, metadata=None) -> "Volume":
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise InputError(f"expected a 3D image, got {image.GetDimension()}D", path=source)
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(
                f"expected a scalar image, got {image.GetNumberOfComponentsPerPixel()} components per voxel",
                path=source,
            )
        return cls(
            array=sitk.GetArrayFromImage(image),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=np.array(image.GetDirection()).reshape(3, 3),
            units=units,
            metadata=dict(metadata or {}),
            source=source,
        )

    def with_array(self, array: np.ndarray, **changes) -> "Volume":
        """A new volume on the same grid with other voxel values."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} differs from the grid {self.array.shape}")
        kw = dict(spacing=self.spacing, origin=self.origin, direction=self.direction.copy(), units=self.units,
                  metadata=dict(self.metadata), source=None)
        kw.update(changes)
        return Volume(array=array, **kw)

    def describe(self) -> dict:
        a = self.array
        return {
            "shape_ijk": list(self.shape_ijk),
            "spacing_mm": list(self.spacing),
            "origin_mm": list(self.origin),
            "direction": self.direction.round(6).tolist(),
            "orientation": self.orientation_code(),
            "extent_mm": [round(e, 3) for e in self.extent_mm],
            "dtype": str(a.dtype),
            "units": self.units or "unknown",
            "min": float(a.min()),
            "max": float(a.max()),
        }

    def __repr__(self) -> str:
        return (f"Volume(shape_ijk={self.shape_ijk}, spacing={self.spacing}, origin={self.origin}, "
                f"orientation={self.orientation_code()!r}, dtype={self.array.dtype}, units={self.units!r})")


#: voxel spacings outside these bounds (mm) are refused: they mean the file is not in millimetres
PLAUSIBLE_SPACING_MM = (1e-3, 50.0)
#: an origin farther than this from the scanner's origin (1 km) is refused
PLAUSIBLE_ORIGIN_MM = 1e6
_ORTHONORMAL_EXACT = 1e-6  # |D^T D - I| up to this is left as it is
#: up to this |D^T D - I| is rounding (float32 headers, short DICOM strings) and is re-orthonormalised
ORIENTATION_TOLERANCE = 1e-3


def _checked_vector(values, what: str, source) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"the {what} must be three numbers, got {values!r}", path=source) from None
    if len(out) != 3 or not all(np.isfinite(out)):
        raise InputError(f"the {what} must be three finite numbers (mm), got {out}", path=source,
                         hint="the file's geometry is corrupt; fix or re-export it")
    return out


def _checked_spacing(values, source) -> tuple[float, float, float]:
    try:
        spacing = tuple(float(s) for s in values)
    except (TypeError, ValueError):
        raise InputError(f"voxel spacing must be three positive numbers, got {values!r}", path=source) from None
    if len(spacing) != 3 or any(not np.isfinite(s) or s <= 0 for s in spacing):
        raise InputError(f"voxel spacing must be three positive numbers, got {spacing}", path=source)
    low, high = PLAUSIBLE_SPACING_MM
    if any(s < low or s > high for s in spacing):
        raise InputError(
            f"voxel spacing {tuple(round(s, 9) for s in spacing)} mm is implausible for a medical image "
            f"(medface expects {low:g} to {high:g} mm): is the file in millimetres?", path=source,
            hint="a spacing in metres, micrometres or another unit must be converted to mm; "
                 "fix the header or re-export the image")
    return spacing


def checked_direction(direction, source=None) -> np.ndarray:
    """``direction`` as a 3x3 orthonormal matrix (columns: the index axes in LPS).

    NaN or infinite entries, and matrices that are not a rotation (possibly with a flip) are
    refused; deviations up to 1e-3 (rounding in float32 headers or DICOM strings) are removed
    by taking the nearest orthonormal matrix (the polar factor of its SVD).
    """
    try:
        d = np.asarray(direction, dtype=float).reshape(3, 3)
    except (TypeError, ValueError):
        raise InputError(f"the direction must be a 3x3 matrix, got {direction!r}", path=source) from None
    if not np.all(np.isfinite(d)):
        raise InputError("the direction matrix has NaN or infinite entries, so the orientation is unknown",
                         path=source, hint="the file's orientation is corrupt; fix or re-export it")
    deviation = float(np.abs(d.T @ d - np.eye(3)).max())
    if deviation <= _ORTHONORMAL_EXACT:
        return d
    if deviation > ORIENTATION_TOLERANCE:
        lengths = ", ".join(f"{n:.4g}" for n in np.linalg.norm(d, axis=0))
        raise InputError(
            f"the direction matrix is not a rotation: its columns must be unit vectors at right angles "
            f"(their lengths are {lengths}; largest deviation from orthonormal {deviation:.3g})", path=source,
            hint="a scale or shear in the orientation (e.g. a sheared gantry-tilt matrix) cannot be a Volume's "
                 "direction; resample the image onto a regular grid first")
    u, _, vt = np.linalg.svd(d)
    return u @ vt
