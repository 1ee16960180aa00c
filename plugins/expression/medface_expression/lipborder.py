"""The lower lip's vermilion border found in the photo itself, per side.

MediaPipe's face mesh keeps its lower-lip points (181 / 405) nearly symmetric: its shape prior
moves both halves of the lip together when only one half is pulled down (docs/validation/
expression.md). So the border used for ``lower_lip_height`` is searched in the pixels: on each
side, in the column halfway between the commissure and the facial midline (the measure's
definition) and in two columns :data:`COLUMNS_MM` beside it, along the face frame's ``v`` within
:data:`SEARCH_MM` of the mesh's outer lower-lip contour, the border is the lowest place where the
lip's redness falls clearly going down (lip above, skin below; the open mouth above the lip
falls into the lip as well, which is why it is the lowest fall and why the window reaches
further down than up).

The redness signal is the *pseudo-hue* ``R / (R + G)`` (Hurlbert & Poggio, Science 239, 1988; the lip-contour
signal of Eveno, Caplier & Coulon 2004, IEEE Trans. Circuits Syst. Video Technol. 14:706-715):
lips are usually higher in it than the skin around them, and, as a ratio of two channels, it
does not change with brightness, so the shading of the lip's rounded surface does
not move the edge. It is smoothed along the column (:data:`SMOOTH_MM`) before its derivative is
taken. A column counts when the drop of the signal across the edge found is at least
:data:`MIN_DROP`, the edge lies inside the window and the signal does not rise by as much above
it (a second red band, such as a shadow under a pale lip, makes the edge ambiguous); the border
is the median over the columns that count. When none counts, the contrast is too weak or too
ambiguous to trust (a grey or badly lit photo, lipstick matching the skin, a red crease): the
result is the mesh's contour with ``refined`` False, and the measurement keeps the mesh's point
(:func:`.measure.measure_face`, :func:`.grading.consistent_lower_lip`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L
from .sampling import sample_columns

#: the search window along v (mm) from the mesh's contour: further down (the skin, down to the
#: labiomental fold, has no edge of the same sign) than up (where the lip's inner margin falls too)
SEARCH_MM = (-3.5, 7.0)
#: sampling step along v (mm) and the Gaussian smoothing of the signal (sigma, mm)
STEP_MM, SMOOTH_MM = 0.1, 0.5
#: the columns searched, in mm along u from the halfway column (away from the midline is +)
COLUMNS_MM = (-1.5, 0.0, 1.5)
#: the least drop of the pseudo-hue across the edge (mean 0.5-1.5 mm above minus below) that counts
MIN_DROP = 0.01
#: the edge must lie at least this far (mm) inside the window
EDGE_MARGIN_MM = 0.5


@dataclass
class LipBorder:
    """One side's lower-lip border in one photo (``v`` in face-frame mm)."""

    u: float  # the halfway column searched
    v: float  # the border used: the image's when refined, else the mesh contour's
    v_mesh: float  # the mesh's outer lower-lip contour in that column
    drop: float  # median pseudo-hue drop across the edges found (0 when none counted)
    refined: bool


def pseudo_hue(rgb: np.ndarray) -> np.ndarray:
    """``R / (R + G)`` of (..., 3) colours (0.5 where both are 0)."""
    rgb = np.asarray(rgb, np.float64)
    total = rgb[..., 0] + rgb[..., 1]
    return np.where(total > 0, rgb[..., 0] / np.maximum(total, 1e-9), 0.5)


def _drop(vs: np.ndarray, smooth: np.ndarray, v: float) -> float:
    """Mean of the signal 0.5-1.5 mm above ``v`` minus its mean 0.5-1.5 mm below."""
    above = smooth[(vs >= v - 1.5) & (vs <= v - 0.5)]
    below = smooth[(vs >= v + 0.5) & (vs <= v + 1.5)]
    return float(above.mean() - below.mean()) if len(above) and len(below) else 0.0


def edge_in_profile(vs: np.ndarray, signal: np.ndarray) -> tuple[float, float]:
    """``(v, drop)`` of the lowest fall of ``signal`` along ``vs`` (evenly spaced, mm, downwards)
    that drops by at least :data:`MIN_DROP`, after smoothing: the lip's border with the skin is the
    lowest such fall (the mouth's inside above the lip falls into the lip too). ``drop`` is 0 when
    no fall inside the window (by :data:`EDGE_MARGIN_MM`) drops that much, or when the signal rises
    by as much above that fall (:func:`_largest_rise`)."""
    from scipy.ndimage import gaussian_filter1d

    step = float(vs[1] - vs[0])
    smooth = gaussian_filter1d(np.asarray(signal, np.float64), SMOOTH_MM / step, mode="nearest")
    slope = np.gradient(smooth, step)
    inner = (vs - vs[0] >= EDGE_MARGIN_MM) & (vs[-1] - vs >= EDGE_MARGIN_MM)
    minima = [i for i in np.flatnonzero(inner[1:-1]) + 1 if slope[i] < slope[i - 1] and slope[i] <= slope[i + 1]]
    for i in sorted(minima, reverse=True):
        a, b, c = slope[i - 1:i + 2]  # a parabola through the slope's minimum and its neighbours
        den = a - 2 * b + c
        v = float(vs[i] + step * (0.5 * (a - c) / den if den > 0 else 0.0))
        drop = _drop(vs, smooth, v)
        if drop >= MIN_DROP:
            return v, (drop if _largest_rise(smooth[vs <= v - 0.5]) < MIN_DROP else 0.0)
    return float(vs[int(np.argmin(slope))]), 0.0


def _largest_rise(smooth: np.ndarray) -> float:
    """The largest increase of the signal going down (``smooth[j] - min(smooth[:j])``): a rise above
    the edge means a second red band (a shadow or a crease under the lip), so the edge is ambiguous."""
    if len(smooth) < 2:
        return 0.0
    return float(np.max(smooth - np.minimum.accumulate(smooth)))


def halfway_column(f: np.ndarray, side: str) -> tuple[float, float]:
    """``(u, v)`` of the mesh's outer lower-lip contour halfway between the commissure and the
    midline (``f``: the landmarks in face mm)."""
    from .measure import v_at_u

    u = 0.5 * float(f[L.COMMISSURE[side], 0])
    return u, v_at_u(f[list(L.OUTER_LOWER_LIP[side])], u)


def lower_lip_border(pixels: np.ndarray, frame, f: np.ndarray, side: str) -> LipBorder:
    """The lower lip's vermilion border of ``side`` found in ``pixels`` (see the module's text)."""
    u, v_mesh = halfway_column(f, side)
    outward = np.sign(u) if u else (1.0 if side == "left" else -1.0)
    vs = np.arange(v_mesh + SEARCH_MM[0], v_mesh + SEARCH_MM[1] + STEP_MM / 2, STEP_MM)
    colours = sample_columns(pixels, frame, [(u + outward * du, vs) for du in COLUMNS_MM])
    edges = [edge_in_profile(vs, pseudo_hue(rgb)) for rgb in colours]
    good = [(v, d) for v, d in edges if d >= MIN_DROP]
    if not good:
        return LipBorder(u, v_mesh, v_mesh, 0.0, False)
    v, d = np.median(np.array(good), axis=0)
    return LipBorder(u, float(v), v_mesh, float(d), True)
