"""Sampling signed-distance functions on grids and extracting surfaces from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Grid:
    """A regular grid in LPS mm: ``values[k, j, i]`` at ``origin + spacing * (i, j, k)``."""

    values: np.ndarray
    origin: np.ndarray
    spacing: float

    def points(self) -> np.ndarray:
        nk, nj, ni = self.values.shape
        k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
        return np.stack([i, j, k], axis=-1).reshape(-1, 3) * self.spacing + self.origin

    def sample(self, points: np.ndarray, fill: float = 1e3) -> np.ndarray:
        """Trilinear interpolation at LPS points (``fill`` outside the grid)."""
        from scipy.ndimage import map_coordinates

        ijk = (np.asarray(points, float) - self.origin) / self.spacing
        coords = ijk[:, ::-1].T  # to (k, j, i)
        return map_coordinates(self.values, coords, order=1, mode="constant", cval=fill)


def grid_axes(lo, hi, spacing: float):
    lo = np.floor(np.asarray(lo, float) / spacing) * spacing
    n = np.ceil((np.asarray(hi, float) - lo) / spacing).astype(int) + 1
    return lo, n


def sample_banded(sdf: Callable[[np.ndarray], np.ndarray], lo, hi, spacing: float, coarse_factor: int = 3,
                  band: float | None = None, chunk: int = 400_000) -> Grid:
    """Sample ``sdf`` on a grid, exactly only near the surface.

    A coarse grid (``coarse_factor`` times the spacing) is evaluated everywhere and
    interpolated; fine points whose interpolated value lies within ``band`` of zero are
    evaluated exactly. Far from the surface only the sign matters.
    """
    from scipy.ndimage import map_coordinates

    origin, n = grid_axes(lo, hi, spacing)
    coarse_spacing = spacing * coarse_factor
    nc = (n - 1) // coarse_factor + 2
    coarse = Grid(np.zeros(nc[::-1], np.float32), origin, coarse_spacing)
    cpts = coarse.points()
    coarse.values = _evaluate(sdf, cpts, chunk).reshape(nc[::-1]).astype(np.float32)
    band = band if band is not None else 1.8 * coarse_spacing
    k, j, i = np.meshgrid(*(np.arange(m) for m in n[::-1]), indexing="ij")
    coords = np.stack([k.ravel(), j.ravel(), i.ravel()]) / coarse_factor
    values = map_coordinates(coarse.values, coords, order=1, mode="nearest").astype(np.float32)
    near = np.abs(values) < band
    fine_pts = np.stack([i.ravel()[near], j.ravel()[near], k.ravel()[near]], axis=1) * spacing + origin
    values[near] = _evaluate(sdf, fine_pts, chunk)
    return Grid(values.reshape(n[::-1]), origin, spacing)


def _evaluate(sdf, points: np.ndarray, chunk: int) -> np.ndarray:
    out = np.empty(len(points), np.float32)
    for start in range(0, len(points), chunk):
        out[start:start + chunk] = sdf(points[start:start + chunk])
    return out


def extract_surface(grid: Grid, level: float = 0.0):
    """Marching cubes on the grid; returns (vertices in LPS mm, faces) with outward normals."""
    from skimage.measure import marching_cubes

    verts, faces, _, _ = marching_cubes(grid.values, level=level, spacing=(grid.spacing,) * 3,
                                        gradient_direction="ascent", allow_degenerate=False)
    verts = verts[:, ::-1] + grid.origin  # (k, j, i) -> (x, y, z); with "ascent" the winding is outward
    return verts.astype(np.float64), faces.astype(np.int64)
