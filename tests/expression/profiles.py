"""Synthetic colour profiles along a column of a face: bands of flat colour, for the lid-margin
and lip-border searches' tests."""

from __future__ import annotations

import numpy as np


def banded(bands, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(v, rgb)`` from 0 to 12 mm of ``(start_mm, rgb)`` bands, each until the next."""
    vs = np.arange(0.0, 12.0 + step / 2, step)
    rgb = np.zeros((len(vs), 3))
    for start, colour in bands:
        rgb[vs >= start] = colour
    return vs, rgb
