"""Photographs (PNG, JPEG) through Pillow, turned upright and into 8-bit RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.image import FaceImage
from ..errors import InputError
from ._files import atomic_output, output_suffix
from .sniff import describe, require_category

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

_EXIF_ORIENTATION = 0x0112  # tag 274
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def read_image(path) -> FaceImage:
    """Read a PNG or JPEG photograph as an upright (H, W, 3) uint8 RGB :class:`FaceImage`.

    The EXIF orientation is applied (and recorded in ``exif_orientation``); grey, palette,
    16-bit and CMYK images become RGB; transparency is composited over white. Truncated or
    corrupt files raise :class:`InputError`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    kind = require_category(path, "image")
    path = Path(path)
    try:
        with Image.open(path) as probe:
            probe.verify()  # structural check; the probe cannot be used afterwards
        with Image.open(path) as image:
            image.load()
            orientation = _orientation(image)
            upright = ImageOps.exif_transpose(image)
            metadata = {"format": image.format, "mode": image.mode, "stored_size": list(image.size)}
            pixels = _rgb_pixels(upright)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot be read as {describe(kind)}: {exc}", path=path,
                         hint="the file may be truncated or corrupt") from exc
    return FaceImage(pixels, exif_orientation=orientation, metadata=metadata, source=str(path))


def _orientation(image) -> int:
    value = image.getexif().get(_EXIF_ORIENTATION, 1)
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def _rgb_pixels(image) -> np.ndarray:
    """(H, W, 3) uint8 from any Pillow mode."""
    from PIL import Image

    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image).astype(np.float64)
        grey = np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8)  # 0..65535 -> 0..255
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        span = float(np.ptp(grey)) or 1.0
        grey = np.round(255.0 * (grey - grey.min()) / span).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def write_image(image: FaceImage, path, *, quality: int = 95) -> Path:
    """Write ``image`` as PNG or JPEG (by extension; ``quality`` for JPEG), without EXIF rotation.

    The pixels are already upright, so no orientation tag is written. The file appears only
    once complete.
    """
    path = Path(path)
    suffix = output_suffix(path, IMAGE_SUFFIXES, "image")
    pil = image.to_pil()
    with atomic_output(path, "image") as tmp:
        if suffix == ".png":
            pil.save(tmp, format="PNG")
        else:
            pil.save(tmp, format="JPEG", quality=int(quality))
    return path
