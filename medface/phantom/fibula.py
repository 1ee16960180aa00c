"""A template fibula: a closed surface for fibula free-flap planning when no leg CT is at hand.

The bone stands along +z in its own frame: z = 0 at the tip of the lateral malleolus (distal),
z = ``length`` at the apex of the head (proximal); +x is lateral for a left fibula (a right one
is the mirror image, x -> -x), -y anterior, so a left fibula's frame is LPS-like. The shaft is
a rounded triangle (the fibula's three borders and surfaces, the flat lateral surface facing +x)
flaring into an ellipsoidal head and malleolus; it is built with manifold3d (extrusion, hull and
union), so it is watertight. It is labelled synthetic like every phantom part.

Dimensions (mm):

- length 360: adult fibulae are about 33-40 cm long (the range usually quoted; e.g. Trotter &
  Gleser's stature regressions use fibular lengths of this size);
- shaft 14 across (rounded triangle 14 mm wide, 12.7 mm from the lateral surface to the
  interosseous border): the mid-shaft is commonly given as 13-15 mm across (**assumption** within
  that range);
- head 28 x 26 x 30 and malleolus 22 x 26 x 45 (width x depth x height): **assumptions** for
  shape only; planning keeps ~6-7 cm at each end unused (:mod:`medface_surgery.fibula`), so they
  never reach a plan.
"""

from __future__ import annotations

import numpy as np

from ..data import SurfaceMesh

FIBULA_LENGTH_MM = 360.0
SHAFT_WIDTH_MM = 14.0
SHAFT_ROUNDING_MM = 2.0
HEAD_RADII_MM = (14.0, 13.0, 15.0)
MALLEOLUS_RADII_MM = (11.0, 13.0, 22.5)


def _shaft_section(width: float, rounding: float):
    """The rounded-triangle cross-section: a flat lateral side (+x), the apex medial (-x)."""
    import manifold3d as m3d

    r = (width - 2 * rounding) / np.sqrt(3.0)  # circumradius of the sharp triangle
    angles = np.radians([60.0, 180.0, 300.0])
    tri = np.column_stack([r * np.cos(angles), r * np.sin(angles)])
    # centre the section on its centroid in x (the lateral face at +x)
    return m3d.CrossSection([tri]).offset(rounding, m3d.JoinType.Round, circular_segments=24)


def template_fibula(length: float = FIBULA_LENGTH_MM, shaft_width: float = SHAFT_WIDTH_MM, side: str = "left",
                    segments: int = 24) -> SurfaceMesh:
    """The template fibula as a closed :class:`SurfaceMesh` (see the module notes)."""
    import manifold3d as m3d

    from ..errors import ParameterError

    if side not in ("left", "right"):
        raise ParameterError(f"side must be 'left' or 'right', got {side!r}", parameter="side")
    if not 200.0 <= float(length) <= 500.0:
        raise ParameterError(f"a fibula of {length} mm is not an adult's (200-500 mm)", parameter="length")
    if not 8.0 <= float(shaft_width) <= 25.0:
        raise ParameterError(f"a shaft {shaft_width} mm across is not a fibula's (8-25 mm)", parameter="shaft_width")
    section = _shaft_section(float(shaft_width), SHAFT_ROUNDING_MM)
    z0, z1 = 30.0, float(length) - 25.0
    # the shaft, divided along its length so long thin triangles do not make a poor mesh
    shaft = m3d.Manifold.extrude(section, z1 - z0, n_divisions=int((z1 - z0) / 4.0)).translate((0.0, 0.0, z0))
    sphere = m3d.Manifold.sphere(1.0, segments * 2)
    head = sphere.scale(HEAD_RADII_MM).translate((1.0, 1.0, float(length) - HEAD_RADII_MM[2]))
    malleolus = sphere.scale(MALLEOLUS_RADII_MM).translate((2.0, 1.0, MALLEOLUS_RADII_MM[2]))
    neck = m3d.Manifold.extrude(section, 2.0).translate((0.0, 0.0, float(length) - 70.0))
    ankle = m3d.Manifold.extrude(section, 2.0).translate((0.0, 0.0, 65.0))
    top = m3d.Manifold.batch_hull([head, neck])
    bottom = m3d.Manifold.batch_hull([malleolus, ankle])
    bone = m3d.Manifold.batch_boolean([shaft, top, bottom], m3d.OpType.Add)
    out = bone.to_mesh64()
    vertices = np.array(out.vert_properties, dtype=np.float64)[:, :3].copy()
    faces = np.array(out.tri_verts, dtype=np.int64)
    if side == "right":
        vertices = vertices * np.array([-1.0, 1.0, 1.0])
        faces = faces[:, ::-1]
    return SurfaceMesh(vertices, faces, name=f"template fibula ({side}, synthetic)")
