"""Signed-distance primitives and combinators over point arrays (negative inside, in mm).

Small direct functions over ``(N, 3)`` float arrays, in the style of trimesh: each returns an
``(N,)`` array. Combinators with a blending radius ``k`` (smooth union, subtraction,
intersection) use the polynomial smooth minimum, which keeps the result within ``k / 4`` of
the sharp one. Ellipsoids use the usual first-order distance estimate, exact on the surface.
"""

from __future__ import annotations

import numpy as np


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation about x, y or z by ``degrees`` (right-handed)."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _local(p: np.ndarray, centre, rot) -> np.ndarray:
    q = p - np.asarray(centre, dtype=p.dtype)
    return q if rot is None else q @ np.asarray(rot, dtype=p.dtype)


def sphere(p, centre, radius):
    return np.linalg.norm(p - np.asarray(centre, dtype=p.dtype), axis=1) - radius


def ellipsoid(p, centre, radii, rot=None):
    """Ellipsoid with semi-axes ``radii`` along the columns of ``rot`` (identity if None)."""
    q = _local(p, centre, rot)
    r = np.asarray(radii, dtype=p.dtype)
    k0 = np.linalg.norm(q / r, axis=1)
    k1 = np.linalg.norm(q / (r * r), axis=1)
    return np.where(k1 > 0, k0 * (k0 - 1.0) / np.maximum(k1, 1e-12), -float(r.min()))


def box(p, centre, half, rot=None, rounding=0.0):
    q = np.abs(_local(p, centre, rot)) - (np.asarray(half, dtype=p.dtype) - rounding)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside - rounding


def capsule(p, a, b, radius_a, radius_b=None):
    """Round cone from ``a`` to ``b`` with radii ``radius_a`` and ``radius_b`` (approximate when they differ)."""
    a = np.asarray(a, dtype=p.dtype)
    b = np.asarray(b, dtype=p.dtype)
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    r = radius_a if radius_b is None else radius_a + (radius_b - radius_a) * t
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1) - r


def tube(p, points, radii, k: float = 0.0):
    """A tube along a polyline with a radius per vertex (a union of round cones)."""
    points = np.asarray(points, dtype=float)
    radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(points),))
    d = capsule(p, points[0], points[1], radii[0], radii[1])
    for i in range(1, len(points) - 1):
        nxt = capsule(p, points[i], points[i + 1], radii[i], radii[i + 1])
        d = smooth_union(d, nxt, k) if k > 0 else np.minimum(d, nxt)
    return d


def half_space(p, point, normal):
    """Negative on the side the unit ``normal`` points away from."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    return (p - np.asarray(point, dtype=p.dtype)) @ n.astype(p.dtype)


def cylinder(p, a, b, radius):
    """Capped cylinder between ``a`` and ``b``."""
    a = np.asarray(a, dtype=p.dtype)
    b = np.asarray(b, dtype=p.dtype)
    ba = b - a
    pa = p - a
    baba = float(ba @ ba)
    paba = pa @ ba
    x = np.linalg.norm(pa * baba - paba[:, None] * ba, axis=1) - radius * baba
    y = np.abs(paba - baba * 0.5) - baba * 0.5
    x2, y2 = x * x, y * y * baba
    d = np.where(np.maximum(x, y) < 0.0, -np.minimum(x2, y2),
                 np.where(x > 0.0, x2, 0.0) + np.where(y > 0.0, y2, 0.0))
    return np.sign(d) * np.sqrt(np.abs(d)) / baba


def smooth_union(a, b, k):
    if k <= 0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def smooth_subtract(a, b, k):
    """``a`` minus ``b``."""
    return -smooth_union(-a, b, k)


def smooth_intersect(a, b, k):
    return -smooth_union(-a, -b, k)


def union(*ds):
    out = ds[0]
    for d in ds[1:]:
        out = np.minimum(out, d)
    return out


def shell(d, thickness):
    """The layer of ``thickness`` inside the surface of ``d``."""
    return np.maximum(d, -(d + thickness))
