"""Bilinear sampling of a photo's colours at a few points, converting only the pixels around them.

The lid-margin and lip-border searches sample short columns of a photo (tens of points). Turning
the whole photo into float64 for each column and channel cost more than the rest of the grading;
:func:`sample_rgb` converts only the window that holds the points (plus one pixel), which gives
the same values as sampling the whole photo: bilinear interpolation reads only the four pixels
around each point, and where the window meets the photo's edge it is the photo's edge, so the
"nearest" edge mode clamps the same way.
"""

from __future__ import annotations

import numpy as np


def sample_rgb(pixels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The (n, 3) float64 colours of ``pixels`` (H, W, 3) at image ``points`` (n, 2: x, y),
    bilinear, edge values beyond the photo (``scipy.ndimage.map_coordinates``, ``order=1``,
    ``mode="nearest"``)."""
    from scipy.ndimage import map_coordinates

    points = np.asarray(points, np.float64)
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = 0, 0, w, h
    if len(points) and np.isfinite(points).all():
        (x0, y0), (x1, y1) = _window(points, (w, h))
    patch = np.asarray(pixels[y0:y1, x0:x1, :3], np.float64)
    coords = [points[:, 1] - y0, points[:, 0] - x0]
    return np.stack([map_coordinates(patch[..., c], coords, order=1, mode="nearest") for c in range(3)], axis=-1)


def _window(points: np.ndarray, size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((x0, y0), (x1, y1))``: the pixels around ``points``, one beyond on every side, within the photo."""
    lo = np.floor(points.min(axis=0)).astype(int) - 1
    hi = np.floor(points.max(axis=0)).astype(int) + 3
    lo = np.clip(lo, 0, np.array(size) - 1)
    hi = np.clip(hi, lo + 1, np.array(size))
    return (int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1]))


def sample_columns(pixels: np.ndarray, frame, columns: list[tuple[float, np.ndarray]]) -> list[np.ndarray]:
    """The (n_i, 3) colours along each face-frame column ``(u, vs)`` (mm; ``frame``: a
    :class:`.measure.FaceFrame`), sampled together in one window (:func:`sample_rgb`)."""
    if not columns:
        return []
    uv = np.concatenate([np.stack([np.full_like(vs, u), vs], axis=-1) for u, vs in columns])
    rgb = sample_rgb(pixels, frame.to_image(uv))
    return np.split(rgb, np.cumsum([len(vs) for _, vs in columns])[:-1])
