"""Five-point alignment of a face to a canonical template (112 x 112 and 224 x 224 crops).

The template puts the eye centres on a horizontal line at 36 % of the crop height, 30/112 of
the crop width apart, the nose tip below their midpoint and the mouth corners lower still, in
the proportions of an adult face (eye-centre distance about 62 mm, nose tip 38 mm and the
mouth line 70 mm below the eyes, mouth width 52 mm). A weighted least-squares similarity
transform (rotation, uniform scale, translation; Umeyama 1991, the core's fit in
:mod:`medface.anatomy.registration`) maps the detected points onto the template; the eyes weigh
five times as much as nose and mouth, so that they land on the template even in faces of
unusual proportions, which is what screening is about.
"""

from __future__ import annotations

import numpy as np

from medface.errors import InputError

# Template for a 112 x 112 crop, in FIVE_POINTS order (medface.face.detect); scaled for other sizes.
# 0.484 px/mm for the adult proportions above: the whole face, from the hairline (about 80 mm
# above the eyes) to the chin (menton, about 115 mm below them, at y ~ 96), lies in the crop,
# so that a small or receding chin is seen (an earlier template, eyes 36 px apart at y = 52,
# cut the crop off about 10 mm above the menton).
TEMPLATE_112 = np.array([
    [41.0, 40.0],    # subject's right eye (image left)
    [71.0, 40.0],    # subject's left eye
    [56.0, 58.4],    # nose tip
    [43.4, 73.9],    # right mouth corner
    [68.6, 73.9],    # left mouth corner
])
#: template pixels per millimetre of an adult face (eye-centre distance 62 mm over 30 px)
TEMPLATE_PX_PER_MM = 30.0 / 62.0
POINT_WEIGHTS = np.array([5.0, 5.0, 1.0, 1.0, 1.0])
CROP_SIZES = (112, 224)


def template(size: int = 112) -> np.ndarray:
    """The five template points for a ``size`` x ``size`` crop (pixel centres at integers)."""
    if int(size) < 16:
        raise InputError(f"crop size must be at least 16 px, got {size}")
    return (TEMPLATE_112 + 0.5) * (int(size) / 112.0) - 0.5


def similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The 2 x 3 similarity matrix ``M`` minimising sum w_i |M [src_i, 1] - dst_i|^2 (the core's
    Umeyama fit, :func:`medface.anatomy.registration.umeyama`, in OpenCV's ``warpAffine`` form)."""
    from medface.anatomy.registration import umeyama

    if np.ndim(src) != 2 or np.shape(src)[1] != 2:
        raise InputError(f"alignment needs matching (N>=2, 2) point sets, got {np.shape(src)} and {np.shape(dst)}",
                         hint="give the five alignment points as (x, y) pixel pairs")
    return umeyama(src, dst, weights).affine


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with a 2 x 3 affine matrix."""
    p = np.asarray(points, float)
    return p @ m[:, :2].T + m[:, 2]


def alignment_matrix(points5: np.ndarray, size: int = 112) -> np.ndarray:
    """The similarity taking a face's five points to the ``size`` template."""
    return similarity(points5, template(size), POINT_WEIGHTS)


def warp(pixels: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``pixels`` under ``m`` (bilinear, border replicated).

    A face much larger than the crop is first reduced by area averaging, so that the crop
    is not aliased."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    src = pixels
    if scale < 0.5:
        # reduce the region the crop reads from by an integer factor, then warp the rest
        factor = int(1.0 / scale / 1.5) or 1
        inv = cv2.invertAffineTransform(m)
        corners = apply(inv, np.array([[0, 0], [size, 0], [0, size], [size, size]], float))
        h, w = pixels.shape[:2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2 * factor
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2 * factor
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 >= factor and y1 - y0 >= factor:
            region = pixels[y0:y1, x0:x1]
            rh, rw = region.shape[0] // factor, region.shape[1] // factor
            src = cv2.resize(region[:rh * factor, :rw * factor], (rw, rh), interpolation=cv2.INTER_AREA)
            # source pixel (x, y) of the reduced region is original ((x + 0.5) * f - 0.5 + x0, ...)
            shift = np.array([[factor, 0, x0 + 0.5 * factor - 0.5], [0, factor, y0 + 0.5 * factor - 0.5]])
            m = m @ np.vstack([shift, [0, 0, 1]])
    return cv2.warpAffine(np.ascontiguousarray(src), m, (int(size), int(size)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def align(pixels: np.ndarray, points5: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """The aligned ``size`` x ``size`` RGB crop and the 2 x 3 matrix from image to crop pixels."""
    m = alignment_matrix(points5, size)
    return warp(pixels, m, size), m
