"""Photographs (PNG, JPEG) through Pillow, turned upright and into 8-bit RGB.

A photo is untrusted input. Its width x height, read from the header by Pillow's lazy
``Image.open``, is checked against ``budget().max_pixels`` (200 megapixels unless
``MEDFACE_MAX_PIXELS`` says otherwise) before any pixel is decoded, so a decompression bomb is
refused as "too large" without allocating its pixels. For the time of a read, Pillow's own
bomb limit (``Image.MAX_IMAGE_PIXELS``) is set to the same budget.
"""

from __future__ import annotations

import re
import struct
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..data.image import FaceImage
from ..errors import InputError
from ._files import atomic_output, output_suffix
from .limits import budget, check_count
from .sniff import describe, require_category

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

_EXIF_ORIENTATION = 0x0112  # tag 274
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
# what Pillow raises on a corrupt, truncated or hostile file (struct.error, IndexError and
# KeyError come from malformed EXIF, TIFF-style and Huffman tables)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)


def read_image(path) -> FaceImage:
    """Read a PNG or JPEG photograph as an upright (H, W, 3) uint8 RGB :class:`FaceImage`.

    The EXIF orientation is applied (and recorded in ``exif_orientation``); grey, palette,
    16-bit and CMYK images become RGB; transparency is composited over white. Truncated or
    corrupt files, and files declaring more than ``budget().max_pixels`` pixels, raise
    :class:`InputError`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    kind = require_category(path, "image")
    path = Path(path)
    limit = budget().max_pixels
    with _pillow_pixel_limit(Image, limit):
        try:
            with Image.open(path) as probe:  # lazy: reads the header only
                _check_pixels(probe.size, path)
                probe.verify()  # structural check; the probe cannot be used afterwards
            with Image.open(path) as image:
                image.load()
                orientation = _orientation(image)
                upright = ImageOps.exif_transpose(image)
                metadata = {"format": image.format, "mode": image.mode, "stored_size": list(image.size)}
                pixels = _rgb_pixels(upright)
        except Image.DecompressionBombError as exc:  # Pillow's own check, at twice the budget
            declared = re.search(r"\((\d+) pixels\)", str(exc))
            count = f"{int(declared.group(1)):,}" if declared else f"more than {2 * limit:,}"
            raise InputError(f"too large: the file declares {count} pixels, more than the budget of {limit:,}",
                             path=path, hint="set MEDFACE_MAX_PIXELS to allow more, if the file is genuine") from None
        except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
            raise InputError(f"cannot be read as {describe(kind)}: {exc}", path=path,
                             hint="the file may be truncated or corrupt") from exc
    return FaceImage(pixels, exif_orientation=orientation, metadata=metadata, source=str(path))


def _check_pixels(size, path: Path) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(f"declares an image of {width} x {height} pixels", path=path,
                         hint="the file may be truncated or corrupt")
    try:
        check_count(width * height, "max_pixels", "pixels", path)
    except InputError as exc:
        raise InputError(f"{exc.message} ({width} x {height})", path=path, hint=exc.hint) from None


@contextmanager
def _pillow_pixel_limit(image_module, limit: int):
    """Pillow's decompression-bomb limit set to medface's budget while a photo is read.

    Pillow warns above ``MAX_IMAGE_PIXELS`` and raises above twice that; medface refuses at
    the budget itself (:func:`_check_pixels`), so its warning would only repeat that."""
    previous = image_module.MAX_IMAGE_PIXELS
    image_module.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            yield
    finally:
        image_module.MAX_IMAGE_PIXELS = previous


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


#: zlib level of written PNGs: 1 (Pillow's default is 6). Measured on the screening outputs (the
#: 224 x 224 aligned face and attention overlay): 11 ms instead of 47 ms for the pair, files 17 %
#: larger; PNG is lossless at every level, only the size differs.
PNG_COMPRESS_LEVEL = 1


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
            pil.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            pil.save(tmp, format="JPEG", quality=int(quality))
    return path
