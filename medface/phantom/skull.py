"""The template skull as signed-distance fields: cranium (with the upper teeth) and mandible.

Coordinates are LPS millimetres in the head frame: the origin is the midpoint of the two
porions, the Frankfurt horizontal plane (porions and orbitales) is ``z = 0`` and the
mid-sagittal plane is ``x = 0``; +x is the patient's left, -y anterior, +z superior. The
dimensions are those of an average adult (both sexes pooled), chosen so that the classical
craniometric distances land near published means (``docs/phantom.md``). Subject variation is
applied later by a smooth warp of this template (``medface.phantom.shape``).

Every function is symmetric in x unless stated; left-right pairs are built by mirroring.
"""

from __future__ import annotations

import numpy as np

from . import sdf as S

# ---------------------------------------------------------------------------------------------
# dental arches: half-ellipses through the incisors (front) and the second molars (back)
UPPER_ARCH = dict(half_width=26.0, y_back=-50.0, depth=40.0)
LOWER_ARCH = dict(half_width=24.0, y_back=-50.0, depth=34.5)
# teeth from the midline backwards: (name, mesiodistal half-width, buccolingual half-thickness)
TEETH = [("central incisor", 4.2, 3.2), ("lateral incisor", 3.4, 3.0), ("canine", 3.9, 3.9),
         ("first premolar", 3.5, 4.4), ("second premolar", 3.4, 4.4), ("first molar", 5.0, 5.2),
         ("second molar", 4.7, 5.0)]


def arch_point(t: float, half_width: float, y_back: float, depth: float) -> np.ndarray:
    """Point on a dental arch; t in [-1, 1] from the right molars (-1) over the incisors (0)."""
    a = t * np.pi / 2
    return np.array([half_width * np.sin(a), y_back - depth * np.cos(a)])


def _arch_params_for_teeth(arch: dict) -> list[tuple[float, float, float]]:
    """(t, half width, half thickness) per tooth on the left side, spaced by their widths."""
    ts = np.linspace(0, 1, 400)
    pts = np.array([arch_point(t, **arch) for t in ts])
    arclen = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    total = sum(2 * w for _, w, _ in TEETH) + 0.3 * len(TEETH)
    scale = arclen[-1] / total
    out, s = [], 0.0
    for _, w, th in TEETH:
        centre = (s + w + 0.15) * scale
        out.append((float(np.interp(centre, arclen, ts)), w * scale, th))
        s += 2 * w + 0.3
    return out


def teeth(p: np.ndarray, arch: dict, z_edge: float, z_root: float, upper: bool) -> np.ndarray:
    """Crowns and roots of one dental arch as vertical rounded capsules along the arch."""
    d = np.full(len(p), 1e3, dtype=p.dtype)
    for t0, w, th in _arch_params_for_teeth(arch):
        for side in (1, -1):
            t = side * t0
            xy = arch_point(t, **arch)
            # tangent of the arch: the tooth is wide along it and thick across it
            xy2 = arch_point(t + 1e-3, **arch)
            tangent = (xy2 - xy) / np.linalg.norm(xy2 - xy)
            rot = np.array([[tangent[0], -tangent[1], 0], [tangent[1], tangent[0], 0], [0, 0, 1.0]])
            crown_z = z_edge + (3.5 if upper else -3.5)
            crown = S.ellipsoid(p, (xy[0], xy[1], crown_z), (w, th, 5.2), rot)
            root = S.capsule(p, (xy[0], xy[1], crown_z), (xy[0], xy[1], z_root), 0.55 * min(w, th), 0.25 * min(w, th))
            d = np.minimum(d, S.smooth_union(crown, root, 2.0))
    return d


def upper_teeth(p):
    return teeth(p, UPPER_ARCH, z_edge=-52.0, z_root=-28.0, upper=True)


def lower_teeth(p):
    return teeth(p, LOWER_ARCH, z_edge=-54.0, z_root=-76.0, upper=False)


# ---------------------------------------------------------------------------------------------
def _mirror(f):
    """Apply a left-side primitive to both sides: evaluate at (|x|, y, z)."""

    def both(p):
        q = p.copy()
        q[:, 0] = np.abs(q[:, 0])
        return f(q)

    return both


def _flattened(shape, points, radii, z_scale: float = 1.6):
    """A tube squashed vertically by ``z_scale`` (a plate-like arch)."""
    points = np.asarray(points, float)
    centre_z = points[:, 2].mean()

    def f(p):
        q = p.copy()
        q[:, 2] = centre_z + (q[:, 2] - centre_z) / z_scale
        return shape(q, points, radii, k=2)

    return f


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def vault_outer(p):
    parietal = S.ellipsoid(p, (0, 3, 38), (70, 80, 84))
    frontal = S.ellipsoid(p, (0, -38, 48), (59, 58, 66))
    occipital = S.ellipsoid(p, (0, 31, 30), (59, 53, 62))
    d = S.smooth_union(S.smooth_union(parietal, frontal, 18), occipital, 14)
    inion = S.ellipsoid(p, (0, 78, 6), (13, 6, 6))
    return S.smooth_union(d, inion, 8)


def cranial_base_height(p):
    """Height of the underside of the cranial base (the vault is cut below it)."""
    x, y = p[:, 0], p[:, 1]
    return -30.0 - 0.35 * (y - 10.0) + 20.0 * (x / 55.0) ** 2


def brain_cavity(p, outer):
    """Inside the vault, thicker near the base (petrous and sphenoid bone), above the fossae."""
    z = p[:, 2]
    thickness = 6.0 + 14.0 * _smoothstep(12.0, -20.0, z)
    cavity = outer + thickness
    y = p[:, 1]
    floor = np.where(y > -2, -20.0, np.where(y < -36, 36.0, -20.0 + (36.0 + 20.0) * (-2 - y) / 34.0))
    floor = floor + 10.0 * (p[:, 0] / 45.0) ** 2
    return S.smooth_intersect(cavity, floor - z, 6.0)


@_mirror
def _face_lateral(p):
    zygoma = S.ellipsoid(p, (45, -66, -3), (9, 14, 13), S.rotation("z", -28))
    orbital_process = S.capsule(p, (44, -71, 4), (47, -76, 23), 6.0, 5.0)
    arch = _flattened(S.tube, [(47, -60, -5), (58, -44, -3), (61, -26, -2), (59, -9, -2)], [5.5, 5.0, 4.8, 5.4])(p)
    infraorbital_rim = S.tube(p, [(13, -87, 1), (30, -81, -1), (44, -74, 3)], [4.5, 4.6, 5.0], k=2)
    supraorbital = S.capsule(p, (8, -93, 33), (46, -79, 28), 6.0, 5.0)
    mastoid = S.ellipsoid(p, (51, 9, -20), (6.5, 8, 11), S.rotation("y", -15))
    d = S.smooth_union(zygoma, orbital_process, 7)
    d = S.smooth_union(d, arch, 5)
    d = S.smooth_union(d, infraorbital_rim, 4)
    d = S.smooth_union(d, supraorbital, 6)
    return d, mastoid


@_mirror
def _orbit(p):
    front = S.ellipsoid(p, (32, -72, 14), (20, 21, 18.0), S.rotation("z", 22))
    apex = S.ellipsoid(p, (24, -50, 12), (10, 20, 10), S.rotation("z", 22))
    return S.smooth_union(front, apex, 6)


@_mirror
def _ear_and_joint(p):
    meatus = S.capsule(p, (76, 0, -4.5), (54, 0, -4.5), 4.5)
    fossa = S.ellipsoid(p, (53, -10, -7), (10, 7.5, 5.5))
    return S.smooth_union(meatus, fossa, 2)


def _maxilla(p):
    block = S.ellipsoid(p, (0, -66, -12), (36, 29, 32))
    nasal_pyramid = S.ellipsoid(p, (0, -90, 8), (11, 9, 19))
    nasal_bridge = S.capsule(p, (0, -89, 24), (0, -101, 5), 5.0, 3.5)
    ridge = S.tube(p, [(x, y, -36.0) for x, y in (arch_point(t, **UPPER_ARCH) for t in np.linspace(-1, 1, 15))],
                   7.5, k=2)
    d = S.smooth_union(block, nasal_pyramid, 8)
    d = S.smooth_union(d, nasal_bridge, 5)
    return S.smooth_union(d, ridge, 6)


def _nasal_openings(p):
    aperture = S.smooth_union(S.ellipsoid(p, (0, -94, -15), (12, 16, 12)),
                              S.ellipsoid(p, (0, -95, -2), (6, 14, 10)), 6)
    cavity = S.box(p, (0, -56, -9), (11.5, 27, 17), rounding=7)
    return S.smooth_union(aperture, cavity, 4)


def cranium(p):
    """The skull without the mandible, with the upper teeth: one closed surface."""
    outer = vault_outer(p)
    base_cut = cranial_base_height(p) - p[:, 2]
    vault = S.smooth_intersect(outer, base_cut, 8.0)
    lateral, mastoid = _face_lateral(p)
    d = S.smooth_union(vault, mastoid, 12)
    d = S.smooth_union(d, _maxilla(p), 10)
    d = S.smooth_union(d, lateral, 9)
    d = S.smooth_union(d, S.ellipsoid(p, (0, -95, 36), (15, 6, 8)), 10)  # glabella
    d = S.smooth_subtract(d, _orbit(p), 3)
    d = S.smooth_subtract(d, _nasal_openings(p), 2.5)
    d = S.smooth_subtract(d, S.ellipsoid(p, (0, -102.5, -31), (13, 4.5, 5.5)), 4)  # concavity at A point
    d = S.smooth_union(d, S.capsule(p, (0, -86, -26), (0, -99, -27.5), 2.6, 1.2), 1.5)  # anterior nasal spine
    d = S.smooth_subtract(d, _ear_and_joint(p), 2)
    cavity = S.smooth_union(brain_cavity(p, outer), S.sphere(p, (0, -24, 18), 6.0), 2)  # pituitary fossa
    d = np.maximum(d, -cavity)
    foramen = S.cylinder(p, (0, 20, -60), (0, 20, 0), 15.5)
    d = S.smooth_subtract(d, foramen, 3)
    return S.smooth_union(d, upper_teeth(p), 1.5)


# ---------------------------------------------------------------------------------------------
@_mirror
def _ramus(p):
    condyle = S.ellipsoid(p, (52, -10, -9.5), (9, 4.5, 4.5), S.rotation("z", -12))
    neck = S.capsule(p, (51, -10, -10), (49.5, -11, -24), 4.2, 4.8)
    posterior = S.tube(p, [(49.5, -11, -22), (48.5, -9, -46), (47, -11, -67)], [4.8, 5.0, 5.5], k=3)
    coronoid = S.tube(p, [(44, -37, -19), (43.5, -30, -40), (41, -35, -58)], [2.8, 4.0, 5.0], k=3)
    plate = S.box(p, (46.5, -22, -42), (3.6, 11.5, 20), S.rotation("x", -4), rounding=3.0)
    d = S.smooth_union(posterior, coronoid, 3)
    d = S.smooth_union(d, plate, 5)
    d = S.smooth_union(d, neck, 4)
    notch = S.ellipsoid(p, (46, -24, -18), (8, 8.5, 9))  # sigmoid notch between condyle and coronoid
    d = S.smooth_subtract(d, notch, 3)
    return S.smooth_union(d, condyle, 3)


def _polyline_closest(xy: np.ndarray, line: np.ndarray):
    """Distance from 2D points to a polyline and the curve parameter (0..1) of the closest point."""
    best = np.full(len(xy), np.inf)
    param = np.zeros(len(xy))
    seg_len = np.linalg.norm(np.diff(line, axis=0), axis=1)
    cum = np.concatenate([[0], np.cumsum(seg_len)]) / seg_len.sum()
    for i in range(len(line) - 1):
        a, b = line[i], line[i + 1]
        ab = b - a
        t = np.clip(((xy - a) @ ab) / (ab @ ab), 0, 1)
        d = np.linalg.norm(xy - (a + t[:, None] * ab), axis=1)
        closer = d < best
        best[closer] = d[closer]
        param[closer] = cum[i] + t[closer] * (cum[i + 1] - cum[i])
    return best, param


_BODY_T = np.linspace(-1, 1, 49)
_BODY_LINE = np.array([arch_point(t, half_width=46.0, y_back=-12.0, depth=71.0) for t in _BODY_T])


def _mandible_body(p):
    """A U-shaped plate: thick basal border, thinner alveolar part, height varying along the arch."""
    dist, u = _polyline_closest(p[:, :2], _BODY_LINE)
    t = 2 * u - 1  # -1 right gonion .. 0 symphysis .. 1 left gonion
    front = np.cos(t * np.pi / 2)
    z_low = -70.0 - 27.0 * front ** 1.7
    z_top = -62.0 - 4.0 * front
    h = np.clip((p[:, 2] - z_low) / np.maximum(z_top - z_low, 1), 0, 1)
    # the alveolar part leans forward at the front, which makes the concavity at B point
    lean = np.zeros_like(h)
    lean[:] = 4.0 * h ** 2 * front ** 2
    shifted = p[:, :2].copy()
    shifted[:, 1] += lean
    dist, _ = _polyline_closest(shifted, _BODY_LINE)
    half_thick = 6.8 - 2.6 * h + 1.5 * front
    wall = dist - half_thick
    height = np.maximum(z_low - p[:, 2], p[:, 2] - z_top)
    d = S.smooth_intersect(wall, height, 4.0)
    chin = S.ellipsoid(p, (0, -83.5, -87), (13, 5.5, 9))
    return S.smooth_union(d, chin, 6)


def mandible(p):
    """The mandible with the lower teeth, a separate closed surface below the cranium."""
    d = S.smooth_union(_mandible_body(p), _ramus(p), 8)
    return S.smooth_union(d, lower_teeth(p), 1.5)


BOUNDS = (np.array([-82.0, -115.0, -110.0]), np.array([82.0, 105.0, 130.0]))
