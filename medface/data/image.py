"""`FaceImage`: a colour photograph, upright (EXIF orientation applied)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


@dataclass(eq=False)
class FaceImage:
    """An RGB photograph as an (H, W, 3) uint8 array, already rotated upright.

    ``exif_orientation`` records the EXIF orientation tag that was applied on reading (1 =
    none). ``landmarks_2d`` optionally maps soft-tissue landmark ids to (x, y) pixel positions
    (x to the right, y down, origin at the top-left pixel's corner).
    """

    pixels: np.ndarray
    exif_orientation: int = 1
    landmarks_2d: dict[str, tuple[float, float]] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self):
        px = np.asarray(self.pixels)
        if px.ndim == 2:
            px = np.repeat(px[:, :, None], 3, axis=2)
        if px.ndim != 3 or px.shape[2] not in (3, 4):
            raise InputError(f"an image must be (H, W, 3) RGB, got shape {px.shape}", path=self.source)
        if px.shape[2] == 4:
            px = px[:, :, :3]
        if px.shape[0] == 0 or px.shape[1] == 0:
            raise InputError("the image has no pixels", path=self.source)
        if px.dtype != np.uint8:
            if np.issubdtype(px.dtype, np.floating) and px.max() <= 1.0:
                px = px * 255.0
            px = np.clip(np.round(px), 0, 255).astype(np.uint8)
        self.pixels = np.ascontiguousarray(px)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def to_pil(self):
        from PIL import Image

        return Image.fromarray(self.pixels, mode="RGB")

    def gray(self) -> np.ndarray:
        """Luma (ITU-R BT.601) as float32 in [0, 255]."""
        p = self.pixels.astype(np.float32)
        return 0.299 * p[..., 0] + 0.587 * p[..., 1] + 0.114 * p[..., 2]

    def describe(self) -> dict:
        return {"width": self.width, "height": self.height, "exif_orientation": self.exif_orientation,
                "landmarks_2d": sorted(self.landmarks_2d)}

    def __repr__(self) -> str:
        return f"FaceImage({self.width}x{self.height}, exif_orientation={self.exif_orientation})"


# ------------------------------------------------------------------ a photo in a 3D scene
def photo_ijk_to_lps(width: int, height: int) -> np.ndarray:
    """Where a photo stands in a 3D scene (the workstation's slice views): in the coronal plane.

    1 mm per pixel; the column index runs to the patient's left (+x, as a face photo shows the
    patient's left on the picture's right), the row index downwards (-z, inferior), the single
    slice's k axis into the face (+y, posterior); the picture's centre is at the LPS origin.
    Slicer's coronal view then shows the photo as it was taken.
    """
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # columns: i, j, k in LPS
    affine = np.eye(4)
    affine[:3, :3] = direction
    affine[:3, 3] = -direction @ np.array([(width - 1) / 2.0, (height - 1) / 2.0, 0.0])
    return affine


def photo_points_to_lps(points_xy, width: int, height: int) -> np.ndarray:
    """Pixel positions on a ``width`` x ``height`` photo (x to the right, y down, origin at the
    top-left pixel's corner, as :attr:`FaceImage.landmarks_2d`) as LPS mm on the photo's plane
    (:func:`photo_ijk_to_lps`), (N, 3)."""
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2) - 0.5  # corner -> the pixel centres' index
    ijk = np.column_stack([xy, np.zeros(len(xy)), np.ones(len(xy))])
    return (ijk @ photo_ijk_to_lps(width, height).T)[:, :3]


def photo_plane_volume(values: np.ndarray, *, units: str = "", source: str | None = None):
    """An (H, W) map over a photo's pixels (an attention map, a mask) as a one-slice
    :class:`~medface.data.Volume` on the photo's own grid (:func:`photo_ijk_to_lps`), so a viewer
    shows it over the photo."""
    from .volume import Volume

    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"a map over a photo is (H, W), not {values.shape}")
    height, width = values.shape
    affine = photo_ijk_to_lps(width, height)
    return Volume(values[None, :, :], spacing=(1.0, 1.0, 1.0), origin=tuple(float(v) for v in affine[:3, 3]),
                  direction=affine[:3, :3].copy(), units=units, source=source)

