"""Occlusal splints (wafers) for orthognathic plans: the space between the two dental arches.

A splint holds the jaws in a planned relation while the surgeon fixes the bone. For a
bimaxillary plan done maxilla first (as surgical planning software such as ProPlan CMF gives them):

- the **intermediate** splint lies between the *moved* maxilla and the *unmoved* mandible: it
  carries the maxilla to its planned place against the still uncut mandible;
- the **final** splint lies between the moved maxilla and the moved mandible (the planned
  occlusion).

A plan that moves only one jaw gets only the final splint. :func:`occlusal_splint` builds one as a
height field over the occlusal plane (``d`` = the head frame's superior axis): in each column
over the teeth it fills from ``clearance_mm`` above the lower teeth to ``clearance_mm`` below the
upper teeth, and wraps over the cusps no more than ``imprint_mm`` past the teeth's tips (the
local highest lower / lowest upper tooth surface within ``tip_window_mm``), so the teeth sit in
imprints ``imprint_mm`` deep and the splint comes off both arches along ``d``. The footprint is
the teeth's outline seen along ``d`` grown by ``rim_mm``; teeth are the parts of each arch within
``crown_mm`` of its tips, 5 mm or more in front of the coronoid tips (``cor_l``/``cor_r``).

Numbers (assumptions, no source read for them): 2.5 mm imprints, a 2 mm rim, 0.15 mm clearance,
8 mm crowns and a 1 mm least thickness between the arches; a thinner splint is a warning (open
the bite, e.g. by autorotating the mandible, and plan again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError

from .cutting import to_manifold
from .printable import GridFrame, check_parameter, check_printable, clean_solid, depth_buffer, fill_outside, \
    footprint_distance, mesh_field

IMPRINT_MM = 2.5
RIM_MM = 2.0
CLEARANCE_MM = 0.15
CROWN_MM = 8.0
MIN_THICKNESS_MM = 1.0
TIP_WINDOW_MM = 10.0
VOXEL_MM = 0.3
RAMUS_MARGIN_MM = 5.0
"""Teeth are looked for this far in front of the coronoid tips (assumption: the anterior ramus
border runs down and forward from the tip; the last molars stand in front of it)."""


@dataclass
class Splint:
    """An occlusal splint: ``mesh`` (watertight, mm, LPS) and what it was made between."""

    name: str
    mesh: SurfaceMesh
    upper: str
    lower: str
    min_thickness_mm: float
    parameters: dict
    warnings: list[str] = field(default_factory=list)
    opening_deg: float = 0.0  # autorotation of the mandible about the condylar axis, to make room

    @cached_property
    def print_check(self):
        """The printability check of the splint (:func:`.printable.check_printable`), made once."""
        return check_printable(self.mesh, self.name)

    def row(self) -> dict:
        check = self.print_check
        return {"splint": self.name, "upper": self.upper, "lower": self.lower,
                "min_thickness_mm": round(self.min_thickness_mm, 2), "opening_deg": round(self.opening_deg, 2),
                "volume_mm3": round(check.volume_mm3, 1),
                "faces": check.faces, "watertight": check.watertight, "components": check.components,
                "self_intersections": check.self_intersections}


MAX_OPENING_DEG = 12.0
"""The most the mandible is opened about the condylar axis to make room for a splint (assumption)."""


def _rotate(points: np.ndarray, hinge, angle_deg: float) -> np.ndarray:
    """Points turned by ``angle_deg`` about the hinge axis ``(point, unit axis)`` (right hand)."""
    from scipy.spatial.transform import Rotation

    centre, axis = hinge
    rot = Rotation.from_rotvec(np.radians(angle_deg) * np.asarray(axis)).as_matrix()
    return (np.asarray(points) - centre) @ rot.T + centre


def _crop(mesh: SurfaceMesh, keep_vertex: np.ndarray) -> SurfaceMesh:
    faces = mesh.faces[keep_vertex[mesh.faces].any(axis=1)]
    return SurfaceMesh(mesh.vertices, faces, name=mesh.name)


def _head_axes(superior, anterior) -> tuple[np.ndarray, np.ndarray]:
    """The superior axis (unit) and the anterior one made perpendicular to it (unit)."""
    up = np.asarray(superior, float) / np.linalg.norm(superior)
    ant = np.asarray(anterior, float) - (np.asarray(anterior, float) @ up) * up
    return up, ant / np.linalg.norm(ant)


def _tooth_tips(upper: SurfaceMesh, lower: SurfaceMesh, up: np.ndarray, ant: np.ndarray, ramus_front: float,
                crown: float, name: str):
    """The arches' tooth tip levels (mm along ``up``: the lowest upper and the highest lower
    teeth, 0.5th percentiles) and the vertices of their teeth: the parts in front of the rami
    within ``crown`` of the tips. Returns ``(tip_u, tip_l, teeth_u, teeth_l)``."""
    front_u, front_l = upper.vertices @ ant > ramus_front, lower.vertices @ ant > ramus_front
    if front_u.sum() < 10 or front_l.sum() < 10:
        raise InputError(f"splint '{name}': no teeth in front of the rami", hint="check the arches and landmarks")
    tip_u = float(np.percentile(upper.vertices[front_u] @ up, 0.5))
    # lower teeth lie below the upper ones (give or take an overbite): the coronoids do not
    front_l &= lower.vertices @ up < tip_u + 0.5 * crown
    if front_l.sum() < 10:
        raise InputError(f"splint '{name}': no lower teeth below the upper ones")
    tip_l = float(np.percentile(lower.vertices[front_l] @ up, 99.5))
    teeth_u = front_u & (upper.vertices @ up < tip_u + crown)
    teeth_l = front_l & (lower.vertices @ up > tip_l - crown)
    return tip_u, tip_l, teeth_u, teeth_l


@dataclass
class _Occlusion:
    """The two arches over a grid along the superior axis: the upper teeth's surface seen from
    below (fixed) and the lower arch, which :meth:`heights` may open about the ``hinge``."""

    name: str
    frame: GridFrame
    lower: SurfaceMesh          # the lower arch, cropped to its teeth
    in_front: np.ndarray        # columns in front of the rami
    h_up: np.ndarray            # the upper teeth's surface in each column (t, mm)
    is_up: np.ndarray           # columns over an upper tooth
    tip_up: float               # the tip levels (t, mm)
    tip_low: float
    parameters: dict
    hinge: tuple | None

    def heights(self, angle_deg: float):
        """The splint's bottom and top in each column with the lower arch opened by ``angle_deg``
        about the hinge axis, its footprint, and its least thickness between the arches."""
        from scipy import ndimage

        p = self.parameters
        voxel, crown, clearance, imprint = p["voxel_mm"], p["crown_mm"], p["clearance_mm"], p["imprint_mm"]
        lowered = self.lower if angle_deg == 0 else SurfaceMesh(_rotate(self.lower.vertices, self.hinge, angle_deg),
                                                                self.lower.faces)
        h_low, _, _, _ = depth_buffer(lowered, self.frame)    # the lower teeth seen from above
        is_low = np.isfinite(h_low) & (h_low > self.tip_low - crown) & self.in_front
        is_up, h_up = self.is_up, self.h_up
        teeth = is_up | is_low
        if teeth.sum() < 20:
            raise InputError(f"splint '{self.name}': the teeth of the two arches were not found over each other")
        grow = max(1, int(round(p["rim_mm"] / voxel)))
        mask = ndimage.binary_closing(teeth, iterations=grow)
        mask = ndimage.binary_dilation(mask, iterations=grow) & self.in_front
        labels, count = ndimage.label(mask)
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
        win = max(3, int(round(p["tip_window_mm"] / voxel)))
        # local tip levels: the highest lower tooth and the lowest upper tooth near each column
        low_tip = ndimage.maximum_filter(np.where(is_low, h_low, -np.inf), size=win)
        up_tip = ndimage.minimum_filter(np.where(is_up, h_up, np.inf), size=win)
        low_tip = np.where(np.isfinite(low_tip), low_tip, self.tip_low)
        up_tip = np.where(np.isfinite(up_tip), up_tip, self.tip_up)
        lower_t = np.maximum(np.where(is_low, h_low, -np.inf) + clearance, low_tip - imprint)
        upper_t = np.minimum(np.where(is_up, h_up, np.inf) - clearance, up_tip + imprint)
        both = mask & is_up & is_low
        thick = float(np.min((upper_t - lower_t)[both])) if both.any() else float(np.min((upper_t - lower_t)[mask]))
        return lower_t, upper_t, mask, thick


def _occlusion(upper: SurfaceMesh, lower: SurfaceMesh, up: np.ndarray, ant: np.ndarray, ramus_front: float,
               params: dict, hinge, name: str) -> _Occlusion:
    """The arches' teeth over a grid along ``up`` (see :class:`_Occlusion`)."""
    crown, voxel = params["crown_mm"], params["voxel_mm"]
    tip_u, tip_l, teeth_u, teeth_l = _tooth_tips(upper, lower, up, ant, ramus_front, crown, name)
    pts = np.vstack([upper.vertices[teeth_u], lower.vertices[teeth_l]])
    frame = GridFrame.around(pts, up, np.cross(ant, up), voxel, pad=params["rim_mm"] + 4 * voxel)
    up_crop = _crop(upper, upper.vertices @ up < tip_u + crown + 5)
    low_crop = _crop(lower, lower.vertices @ up > tip_l - crown - 5)
    in_front = (frame.column_points(0.0) @ ant) > ramus_front
    origin_t = float(frame.origin @ up)
    _, _, h_up, _ = depth_buffer(up_crop, frame)      # the upper teeth seen from below
    tu, tl = tip_u - origin_t, tip_l - origin_t
    is_up = np.isfinite(h_up) & (h_up < tu + crown) & in_front
    return _Occlusion(name, frame, low_crop, in_front, h_up, is_up, tu, tl, params, hinge)


def _autorotation(occlusion: _Occlusion, min_thickness_mm: float) -> float:
    """The least opening of the mandible about the condylar axis (deg, to 1/4096 of the bracket)
    that leaves ``min_thickness_mm`` between the arches: doubled from 1 deg, then bisected."""
    lo, hi = 0.0, 1.0
    while occlusion.heights(hi)[3] < min_thickness_mm:
        lo, hi = hi, 2 * hi
        if hi > MAX_OPENING_DEG:
            raise InputError(f"splint '{occlusion.name}': the arches overlap so much that opening the mandible by "
                             f"{MAX_OPENING_DEG:g} deg does not make room for a {min_thickness_mm:g} mm splint",
                             hint="check the plan's moves (the jaws run into each other)")
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if occlusion.heights(mid)[3] < min_thickness_mm else (lo, mid)
    return hi


def _splint_solid(frame: GridFrame, lower_t: np.ndarray, upper_t: np.ndarray, mask: np.ndarray, voxel: float,
                  name: str) -> tuple[SurfaceMesh, list[float]]:
    """The splint filling each column of the footprint ``mask`` from ``lower_t`` to ``upper_t``,
    as a watertight mesh, and the volumes of the loose pieces left out."""
    lower_t = fill_outside(np.where(mask, lower_t, 0.0), mask)
    upper_t = fill_outside(np.where(mask, upper_t, 0.0), mask)
    t_lo, t_hi = float(lower_t[mask].min()) - 3 * voxel, float(upper_t[mask].max()) + 3 * voxel
    t = t_lo + voxel * np.arange(int(np.ceil((t_hi - t_lo) / voxel)) + 1)
    fp = footprint_distance(mask, voxel)[..., None]
    field_ = np.maximum(np.maximum(lower_t[..., None] - t, t - upper_t[..., None]), fp)
    body = mesh_field(field_, frame, t_lo, name)
    return clean_solid(to_manifold(body), name)


def occlusal_splint(upper: SurfaceMesh, lower: SurfaceMesh, *, superior, anterior, ramus_front: float,
                    imprint_mm: float = IMPRINT_MM, rim_mm: float = RIM_MM, clearance_mm: float = CLEARANCE_MM,
                    crown_mm: float = CROWN_MM, min_thickness_mm: float = MIN_THICKNESS_MM,
                    tip_window_mm: float = TIP_WINDOW_MM, voxel_mm: float = VOXEL_MM, name: str = "splint",
                    upper_name: str = "upper", lower_name: str = "lower", hinge=None) -> Splint:
    """The splint between an upper arch (a mesh with the upper teeth: the maxilla) and a lower
    one (the mandible), in their planned places.

    ``superior`` and ``anterior`` are the head frame's axes (LPS unit vectors); teeth are looked
    for in front of ``ramus_front`` (mm along ``anterior``, e.g. the coronoid tips'). Raises
    :class:`InputError` when no teeth face each other there."""
    params = {"imprint_mm": check_parameter(imprint_mm, "imprint_mm", 0.5, 6.0),
              "rim_mm": check_parameter(rim_mm, "rim_mm", 0.0, 8.0),
              "clearance_mm": check_parameter(clearance_mm, "clearance_mm", 0.0, 1.0),
              "crown_mm": check_parameter(crown_mm, "crown_mm", 2.0, 15.0),
              "min_thickness_mm": float(min_thickness_mm),
              "voxel_mm": check_parameter(voxel_mm, "voxel_mm", 0.1, 1.0)}
    up, ant = _head_axes(superior, anterior)
    occlusion = _occlusion(upper, lower, up, ant, ramus_front, {**params, "tip_window_mm": tip_window_mm}, hinge, name)
    warnings: list[str] = []
    opening = 0.0
    lower_t, upper_t, mask, min_thick = occlusion.heights(0.0)
    if min_thick < min_thickness_mm and hinge is not None:
        # autorotation: open the mandible about the condylar axis until the splint is thick enough
        opening = _autorotation(occlusion, min_thickness_mm)
        lower_t, upper_t, mask, min_thick = occlusion.heights(opening)
    elif min_thick < min_thickness_mm:
        warnings.append(f"splint '{name}' is only {min_thick:.2f} mm thick between the arches (wanted "
                        f">= {min_thickness_mm:g} mm): open the bite and plan again")
    mesh, dropped = _splint_solid(occlusion.frame, lower_t, upper_t, mask, params["voxel_mm"], name)
    if dropped:
        warnings.append(f"splint '{name}': {len(dropped)} loose piece(s) of {sum(dropped):.1f} mm^3 left out "
                        "(where the arches touch)")
    return Splint(name, mesh, upper_name, lower_name, min_thick, params, warnings, opening)


def plan_splints(plan, bones: dict[str, SurfaceMesh], planned=None, **params) -> dict[str, Splint]:
    """The intermediate and final splints of a plan that moves the maxilla and/or the mandible
    (the ``maxilla`` and ``mandible_distal`` segments of the presets, or any segment of bone
    ``cranium`` / ``mandible``). ``planned``: the :class:`.apply.PlanResult` when already
    applied. Returns ``{"intermediate": ..., "final": ...}`` (intermediate only when both jaws
    move)."""
    from medface.anatomy.cephalometry import head_frame

    from .plan import SurgeryPlan

    plan = plan if isinstance(plan, SurgeryPlan) else SurgeryPlan(plan)
    planned = planned if planned is not None else plan.apply(bones)
    lm = plan.landmarks
    if not all(k in lm for k in ("cor_l", "cor_r")):
        raise InputError("splints need the coronoid tips cor_l and cor_r in the plan's landmarks "
                         "(the teeth are looked for in front of them)")
    frame = head_frame(lm)
    ramus_front = float(max(lm["cor_l"] @ frame.anterior, lm["cor_r"] @ frame.anterior)) + RAMUS_MARGIN_MM
    moved = {name for name, m in planned.transforms.items() if not np.allclose(m, np.eye(4))}

    def arch(bone: str) -> tuple[SurfaceMesh, str, bool]:
        """(moved arch, its name, whether it moved) for ``cranium`` or ``mandible``."""
        segs = [s["name"] for s in plan.segments if s["bone"] == bone and s["name"] in planned.segments]
        tooth_seg = next((s for s in segs if s in ("maxilla", "mandible_distal")), segs[0] if segs else None)
        if tooth_seg is not None and tooth_seg in moved:
            return planned.segments[tooth_seg], tooth_seg, True
        if bone not in bones:
            raise InputError(f"splints need the {bone} mesh (it carries the "
                             f"{'upper' if bone == 'cranium' else 'lower'} teeth)")
        return bones[bone], bone, False

    up_moved, up_name, up_did = arch("cranium")
    low_moved, low_name, low_did = arch("mandible")
    if not (up_did or low_did):
        raise InputError("the plan moves neither jaw: there is no splint to make",
                         hint="splints are for plans that move the maxilla and/or the mandible")
    hinge = None
    if all(k in lm for k in ("co_l", "co_r")):
        # the condylar axis, oriented so a positive turn moves the chin down (opens the mouth)
        axis = lm["co_l"] - lm["co_r"]
        axis = axis / np.linalg.norm(axis)
        centre = 0.5 * (lm["co_l"] + lm["co_r"])
        chin = lm.get("me", centre + 60 * frame.anterior - 60 * frame.superior)
        if np.cross(axis, chin - centre) @ frame.superior > 0:
            axis = -axis
        hinge = (centre, axis)
    kw = dict(superior=frame.superior, anterior=frame.anterior, ramus_front=ramus_front, hinge=hinge, **params)
    out = {}
    if up_did and low_did:
        out["intermediate"] = occlusal_splint(up_moved, bones["mandible"], name="splint_intermediate",
                                              upper_name=up_name, lower_name="mandible (not moved)", **kw)
    out["final"] = occlusal_splint(up_moved, low_moved, name="splint_final", upper_name=up_name,
                                   lower_name=low_name, **kw)
    return out
