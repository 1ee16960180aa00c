"""Image-level quality measures of a photo: exposure and sharpness (pure functions on arrays)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Whole-frame thresholds on 8-bit luma: a photo whose mean luma lies outside 50..205, or with
# more than a third of its pixels clipped, is poorly exposed for any face model. (Dark or
# white backgrounds are common in clinical photos, so the clipped share must be large; the
# face-region checks come with face detection.)
DARK_MEAN, BRIGHT_MEAN, CLIPPED_FRACTION = 50.0, 205.0, 0.33
# Variance of the Laplacian on a 256-px-wide luma image; below this the photo reads as blurred
# (Pech-Pacheco et al. 2000, "Diatom autofocusing in brightfield microscopy").
BLUR_VARIANCE = 60.0


@dataclass
class PhotoQuality:
    width: int
    height: int
    mean_luma: float
    p01_luma: float
    p99_luma: float
    clipped_dark: float
    clipped_bright: float
    sharpness: float
    verdicts: list[str]

    @property
    def acceptable(self) -> bool:
        return not self.verdicts

    def to_dict(self) -> dict:
        return asdict(self)


def _resize_luma(luma: np.ndarray, width: int = 256) -> np.ndarray:
    from PIL import Image

    h, w = luma.shape
    if w == width:
        return luma
    height = max(1, round(h * width / w))
    img = Image.fromarray(np.clip(luma, 0, 255).astype(np.uint8), mode="L")
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: high for sharp detail, low for blur."""
    g = luma.astype(np.float32)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def assess(pixels: np.ndarray, min_size: int = 112) -> PhotoQuality:
    """Exposure and sharpness of an (H, W, 3) uint8 photo, with a verdict for each failed check."""
    p = pixels.astype(np.float32)
    luma = 0.299 * p[..., 0] + 0.587 * p[..., 1] + 0.114 * p[..., 2]
    h, w = luma.shape
    verdicts = []
    if min(h, w) < min_size:
        verdicts.append(f"too small: {w}x{h} px, need at least {min_size} px on each side")
    mean = float(luma.mean())
    dark, bright = float((luma <= 5).mean()), float((luma >= 250).mean())
    if mean < DARK_MEAN or dark > CLIPPED_FRACTION:
        verdicts.append(f"underexposed: mean luma {mean:.0f}, {dark:.0%} of pixels black")
    if mean > BRIGHT_MEAN or bright > CLIPPED_FRACTION:
        verdicts.append(f"overexposed: mean luma {mean:.0f}, {bright:.0%} of pixels white")
    sharp = laplacian_variance(_resize_luma(luma)) if min(h, w) >= 3 else 0.0
    if sharp < BLUR_VARIANCE:
        verdicts.append(f"blurred: Laplacian variance {sharp:.0f} < {BLUR_VARIANCE:.0f}")
    return PhotoQuality(w, h, round(mean, 2), float(np.percentile(luma, 1)), float(np.percentile(luma, 99)),
                        round(dark, 4), round(bright, 4), round(sharp, 2), verdicts)
