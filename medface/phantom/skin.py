"""The template skin: the bone (with eyes) offset by a smooth soft-tissue thickness field,
united with a nose, ears and a neck, with a mouth line and closed eyelids.

The offset uses the Euclidean distance to the supporting tissues (bone, eyeballs), computed
on the grid, so a thickness of ``t`` mm at a point means the skin lies ``t`` mm from the
nearest bone there. The thickness field interpolates control values (the pooled means of
``medface.phantom.tables``) with a thin-plate spline; subjects get their own thicknesses later
by pinning the skin to their table values (``medface.phantom.head``).
"""

from __future__ import annotations

import numpy as np

from ..threads import query_workers
from . import sdf as S
from . import skull
from .grid import Grid

EYE_CENTRE = np.array([31.5, -76.5, 11.0])
EYE_RADIUS = 12.0


def eyes(p):
    q = p.copy()
    q[:, 0] = np.abs(q[:, 0])
    return S.sphere(q, EYE_CENTRE, EYE_RADIUS)


def muscles_and_fat(p):
    """Temporalis, masseter, buccal fat and the lip muscles: they fill the bony hollows."""
    q = p.copy()
    q[:, 0] = np.abs(q[:, 0])
    temporalis = S.ellipsoid(q, (52, -28, 22), (9, 36, 34), S.rotation("x", 10))
    masseter = S.capsule(q, (55, -31, -8), (47, -24, -60), 7.5, 6.0)
    buccal = S.ellipsoid(q, (36, -58, -40), (8, 15, 12))
    d = S.smooth_union(temporalis, masseter, 28)
    return S.smooth_union(d, buccal, 26)


def support(p):
    """What the skin drapes over: cranium (solid, orbits and aperture filled), mandible, eyes,
    and the main muscles and fat pads of the face."""
    outer = skull.vault_outer(p)
    base = skull.cranial_base_height(p) - p[:, 2]
    vault = S.smooth_intersect(outer, base, 8.0)
    lateral, mastoid = skull._face_lateral(p)
    d = S.smooth_union(vault, mastoid, 12)
    d = S.smooth_union(d, skull._maxilla(p), 10)
    d = S.smooth_union(d, lateral, 9)
    d = S.smooth_union(d, S.ellipsoid(p, (0, -95, 36), (15, 6, 8)), 10)
    d = S.smooth_union(d, skull.mandible(p), 2)
    d = np.minimum(d, skull.upper_teeth(p))
    d = S.smooth_union(d, muscles_and_fat(p), 26)
    return S.smooth_union(d, eyes(p), 4)


def nose(p):
    dorsum = S.capsule(p, (0, -98, 20), (0, -117, -8), 4.5, 6.5)
    tip = S.ellipsoid(p, (0, -119.5, -13), (8.5, 7.5, 7.5))
    q = p.copy()
    q[:, 0] = np.abs(q[:, 0])
    alae = S.ellipsoid(q, (11.5, -109, -19), (6.0, 8.5, 6.5), S.rotation("z", 15))
    side_walls = S.ellipsoid(p, (0, -105, -6), (12, 10, 16))
    columella = S.capsule(p, (0, -118, -19), (0, -109, -26.5), 3.6, 4.0)
    d = S.smooth_union(dorsum, tip, 6)
    d = S.smooth_union(d, side_walls, 8)
    d = S.smooth_union(d, alae, 5)
    d = S.smooth_union(d, columella, 4)
    nostrils = S.ellipsoid(q, (6.5, -111, -25.0), (3.0, 5.5, 2.0), S.rotation("z", 25) @ S.rotation("x", -25))
    return S.smooth_subtract(d, nostrils, 1.5)


def ears(p):
    q = p.copy()
    q[:, 0] = np.abs(q[:, 0])
    tilt = S.rotation("x", -18)
    pinna = S.ellipsoid(q, (68, 8, 2), (4.5, 17, 30), tilt)
    bowl = S.ellipsoid(q, (72.5, 6, -2), (4.0, 9, 13), tilt)
    attach = S.capsule(q, (60, 2, -2), (68, 4, -2), 7.0)
    return S.smooth_union(S.smooth_subtract(pinna, bowl, 3), attach, 5)


def neck(p):
    q = p - np.array([0.0, 30.0, 0.0])
    r = np.sqrt((q[:, 0] / 49.0) ** 2 + (q[:, 1] / 51.0) ** 2)
    tube = (r - 1.0) * 50.0
    top = p[:, 2] - (-10.0 - 0.45 * (p[:, 1] - 20.0))  # rises towards the skull base behind
    bottom = -140.0 - p[:, 2]
    return S.smooth_intersect(S.smooth_intersect(tube, top, 25), bottom, 2)


def mouth_line(p):
    return S.box(p, (0, -112, -50.5), (25, 16, 0.55), rounding=0.5)


def eyelid_lines(p):
    q = p.copy()
    q[:, 0] = np.abs(q[:, 0])
    return S.ellipsoid(q, (31.0, -92.0, 10.0), (14.0, 3.0, 0.55), S.rotation("z", 8))


# control thickness values (mm) at points near the support, for the template only
THICKNESS_CONTROLS = [
    ((0, -96, 38), 5.5), ((0, -94, 27), 6.5), ((0, -103, 6), 3.0), ((0, -97, -33), 11.0),
    ((0, -93, -44), 10.5), ((0, -88, -57), 11.0), ((0, -85, -70), 10.0), ((0, -89, -86), 11.0),
    ((0, -74, -100), 8.0), ((0, 0, 124), 5.5), ((0, 94, 35), 6.0), ((0, -80, 75), 5.0),
    ((35, -80, -1), 4.5), ((62, -28, -4), 5.0), ((48, -10, -72), 10.0), ((72, 5, 55), 5.5),
    ((47, -77, 22), 5.5), ((45, -68, -10), 8.0), ((36, -70, -38), 9.0), ((40, -55, -65), 9.0),
    ((48, -25, -42), 8.0), ((31.5, -92, 11), 2.2), ((20, -86, 30), 6.0), ((58, -50, 30), 9.0),
    ((52, 10, -30), 8.0), ((22, -78, -85), 9.0), ((28, -84, -48), 11.0), ((14, -97, -18), 10.0),
]


def thickness_field(sigma: float = 22.0):
    """Kernel-weighted average of the control thicknesses (smooth, bounded, symmetric in x)."""
    pts, vals = [], []
    for (x, y, z), t in THICKNESS_CONTROLS:
        for sx in ((1, -1) if x != 0 else (1,)):
            pts.append((sx * x, y, z))
            vals.append(t)
    pts, vals = np.array(pts, float), np.array(vals, float)

    def field(q):
        out = np.empty(len(q))
        for start in range(0, len(q), 200_000):
            block = q[start:start + 200_000]
            d2 = ((block[:, None, :] - pts[None]) ** 2).sum(-1)
            w = np.exp(-d2 / (2 * sigma ** 2)) + 1e-12
            out[start:start + 200_000] = (w * vals).sum(1) / w.sum(1)
        return out

    return field


def _band_points(shape, origin, spacing, mask):
    idx = np.nonzero(mask.ravel())[0]
    nk, nj, ni = shape
    k, rem = np.divmod(idx, nj * ni)
    j, i = np.divmod(rem, ni)
    return idx, np.stack([i, j, k], axis=1) * spacing + origin


def skin_grid(spacing: float, lo, hi, support_spacing: float = 1.0) -> Grid:
    """Sample the skin's signed distance on a grid.

    The distance to the support is Euclidean: the distance to a dense sampling of the support
    surface (marching cubes at ``support_spacing``), signed by the support's own field.
    """
    from scipy.ndimage import gaussian_filter
    from scipy.spatial import cKDTree

    from .grid import extract_surface, grid_axes, sample_banded

    sup_fine = sample_banded(support, lo, hi, support_spacing)
    sverts, _ = extract_surface(sup_fine)
    tree = cKDTree(sverts)
    origin, n = grid_axes(lo, hi, spacing)
    sup = sample_banded(support, lo, hi, spacing)
    shape = sup.values.shape
    dist = sup.values.copy()
    idx, pts = _band_points(shape, origin, spacing, (sup.values > -3) & (sup.values < 45))
    dd, _ = tree.query(pts, workers=query_workers())
    sign = np.sign(sup.values.ravel()[idx])
    flat = dist.ravel()
    flat[idx] = sign * dd
    thickness = thickness_field()
    t = np.full(flat.size, 6.0, np.float32)
    t[idx] = thickness(pts)
    offset = (flat - t).reshape(shape)
    offset = gaussian_filter(offset, sigma=1.2 / spacing)
    idx2, pts2 = _band_points(shape, origin, spacing, np.ones(shape, bool))
    d = offset.ravel()[idx2]
    d = S.smooth_union(d, nose(pts2), 7)
    d = S.smooth_union(d, ears(pts2), 5)
    d = S.smooth_union(d, neck(pts2), 30)
    d = S.smooth_subtract(d, mouth_line(pts2), 1.0)
    d = S.smooth_subtract(d, eyelid_lines(pts2), 0.8)
    values = offset.ravel().copy()
    values[idx2] = d
    return Grid(values.reshape(shape).astype(np.float32), origin, spacing)
