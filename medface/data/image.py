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
