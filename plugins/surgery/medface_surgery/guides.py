"""Printable cutting guides: a shell on the bone with a saw slot along each osteotomy plane.

A guide (:func:`cutting_guide`) is built for one bone and one or more planes, approached from one
direction ``d`` (from the front for a Le Fort I, from the side for a BSSO or a mandible resection,
from the lateral side for a fibula):

1. the bone's outermost surface seen from ``+d`` is found column by column
   (:func:`.printable.depth_buffer`), over the part of the bone within ``margin_mm`` of the planes
   (between the first and the last plane for several planes);
2. the **shell** fills each column from ``clearance_mm`` to ``clearance_mm + wall_mm`` above that
   surface: a height field, so the guide slides on and off along ``d`` (no undercuts) and never
   enters the bone;
3. a **saw block** rises ``block_mm`` above the shell around each plane, ``slot_wall_mm`` thick on
   each side of the slot, so the blade is held over the shell and block depth;
4. the **slot**, ``kerf_mm + clearance_mm`` wide and centred on the plane (the kerf the saw
   removes is centred on the osteotomy plane, as in :mod:`.cutting`), is subtracted with
   manifold3d; it stops ``bridge_mm`` short of both edges of the guide, so the guide stays one
   piece, and the saw finishes the cut past the bridges after the guide comes off.

Defaults (assumptions, to be set for the saw and printer used): the fit clearance 0.25 mm, the
slot wall 3 mm and slot width 1 mm (kerf) are BoneReconstructionPlanner's defaults
(``clearanceFitPrintingTolerance_mm`` 0.25, ``sawBoxSlotWall_mm`` 3.0, ``sawBoxSlotWidth_mm`` 1.0
in its ``Resources/defaultParameters.json``); the 2 mm shell, the 10 mm margin, the 5 mm block
and the 3 mm bridges are medface's assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError

from .cutting import CutPlane, check_closed, to_manifold
from .printable import (
    GridFrame,
    check_parameter,
    check_printable,
    clean_solid,
    depth_buffer,
    fill_outside,
    footprint_distance,
    mesh_field,
)

CLEARANCE_MM = 0.25
"""Gap between bone and guide for a printed fit (BoneReconstructionPlanner's default
``clearanceFitPrintingTolerance_mm``)."""
WALL_MM = 2.0
"""Shell thickness along the approach direction (assumption: 2 mm of a rigid resin or PA12)."""
SLOT_WALL_MM = 3.0
"""Material on each side of the slot in the saw block (BoneReconstructionPlanner's ``sawBoxSlotWall_mm``)."""
BLOCK_MM = 5.0
"""Height of the saw block above the shell (assumption; BRP's saw boxes are 15 mm tall overall)."""
MARGIN_MM = 10.0
"""How far the guide reaches past the outermost planes (assumption)."""
BRIDGE_MM = 3.0
"""Guide material left at each end of a slot, keeping the guide in one piece (assumption)."""
VOXEL_MM = 0.4
"""Grid spacing of the height field (assumption; the surface is placed between grid points to a
small fraction of it, so the fit follows the bone more closely than the spacing)."""
MAX_SLOPE_DEG = 80.0
"""Columns where the bone surface is steeper than this to the approach direction are left out:
a shell there would be a thin wall along ``d`` (assumption)."""


@dataclass
class Guide:
    """A printed cutting guide: ``mesh`` (watertight, mm, LPS), the planes it carries slots for,
    the approach direction it slides on along, and its parameters and checks."""

    name: str
    bone: str
    mesh: SurfaceMesh
    planes: list[CutPlane]
    approach: np.ndarray
    parameters: dict
    slot_lengths_mm: dict[str, float] = field(default_factory=dict)
    dropped_mm3: list[float] = field(default_factory=list)

    @cached_property
    def print_check(self):
        """The printability check of the guide (:func:`.printable.check_printable`), made once."""
        return check_printable(self.mesh, self.name)

    def row(self) -> dict:
        check = self.print_check
        return {"guide": self.name, "bone": self.bone, "planes": ", ".join(p.name for p in self.planes),
                "approach": [round(float(x), 3) for x in self.approach],
                "slot_length_mm": ", ".join(f"{v:.1f}" for v in self.slot_lengths_mm.values()),
                "volume_mm3": round(check.volume_mm3, 1), "faces": check.faces, "watertight": check.watertight,
                "components": check.components, "self_intersections": check.self_intersections}


def _axis(planes: list[CutPlane]) -> np.ndarray:
    a = np.zeros(3)
    for p in planes:
        a += p.normal if p.normal @ planes[0].normal >= 0 else -p.normal
    return a / np.linalg.norm(a)


def _in_region(points: np.ndarray, planes: list[CutPlane], axis: np.ndarray, margin: float) -> np.ndarray:
    """Points between the outermost planes along ``axis`` (plus ``margin``) and, for bounded
    planes, inside some plane's rectangle grown by ``margin``."""
    pos = np.array([p.centre @ axis for p in planes])
    s = points @ axis
    inside = (s >= pos.min() - margin) & (s <= pos.max() + margin)
    if all(p.size is not None for p in planes):
        rect = np.zeros(len(points), bool)
        for p in planes:
            u, v, _ = p.basis()
            q = points - p.centre
            w, h = p.size
            rect |= (np.abs(q @ u) <= w / 2 + margin) & (np.abs(q @ v) <= h / 2 + margin)
        inside &= rect
    return inside


def _slot_box(plane: CutPlane, frame: GridFrame, e_range: tuple[float, float], t_range: tuple[float, float],
              width: float):
    """The slot: a box ``width`` thick on the plane, across the guide over ``e_range`` (along
    ``e = d x n``), through the guide along ``d`` over ``t_range``."""
    import manifold3d as m3d

    n = plane.normal
    e = np.cross(frame.d, n)
    e /= np.linalg.norm(e)
    dd = np.cross(n, e)  # in the plane, the approach direction made perpendicular to n
    lo_e, hi_e = e_range
    lo_t, hi_t = t_range
    centre_e, centre_t = 0.5 * (lo_e + hi_e), 0.5 * (lo_t + hi_t)
    # a point on the plane at that e and t: start from the plane centre
    c = plane.centre + (centre_e - plane.centre @ e) * e
    c = c + (centre_t - (c - frame.origin) @ frame.d) / max(dd @ frame.d, 1e-6) * dd
    box = m3d.Manifold.cube((hi_e - lo_e, (hi_t - lo_t) / max(abs(dd @ frame.d), 0.2), width), center=True)
    return box.transform(np.column_stack([e, dd, n, c]))


def _guide_parameters(*, kerf_mm: float, wall_mm: float, clearance_mm: float, margin_mm: float, block_mm: float,
                      slot_wall_mm: float, bridge_mm: float, voxel_mm: float) -> dict:
    """A guide's parameters (mm), each checked against its range, with the slot width they give
    (kerf plus clearance)."""
    params = {"kerf_mm": check_parameter(kerf_mm, "kerf_mm", 0.1, 5.0),
              "wall_mm": check_parameter(wall_mm, "wall_mm", 0.8, 10.0),
              "clearance_mm": check_parameter(clearance_mm, "clearance_mm", 0.0, 2.0),
              "margin_mm": check_parameter(margin_mm, "margin_mm", 2.0, 40.0),
              "block_mm": check_parameter(block_mm, "block_mm", 0.0, 20.0),
              "slot_wall_mm": check_parameter(slot_wall_mm, "slot_wall_mm", 0.8, 10.0)}
    params["slot_width_mm"] = params["kerf_mm"] + params["clearance_mm"]
    params["bridge_mm"] = check_parameter(bridge_mm, "bridge_mm", 1.0, 20.0)
    params["voxel_mm"] = check_parameter(voxel_mm, "voxel_mm", 0.1, 1.0)
    return params


def _approach_across(approach, axis: np.ndarray, name: str) -> np.ndarray:
    """The approach direction made perpendicular to the planes' mean normal ``axis`` (unit)."""
    d = np.asarray(approach, float).reshape(3)
    d = d - (d @ axis) * axis
    if np.linalg.norm(d) < 1e-6:
        raise InputError(f"guide '{name}': the approach direction is along the planes' normal",
                         hint="approach the bone from a direction that lies in the cutting plane")
    return d / np.linalg.norm(d)


def _outer_surface(bone: SurfaceMesh, planes: list[CutPlane], axis: np.ndarray, d: np.ndarray, *, margin: float,
                   voxel: float, name: str, bone_label: str) -> tuple[GridFrame, np.ndarray, np.ndarray]:
    """A grid over the bone near the planes, seen along ``d``, and the bone's outermost surface
    in each column: ``(frame, height, face)`` (height inf where a column misses the bone)."""
    near = _in_region(bone.vertices, planes, axis, margin)
    if near.sum() < 3:
        raise InputError(f"guide '{name}': the planes {', '.join(p.name for p in planes)} do not reach bone "
                         f"'{bone_label}'", hint="check the planes' centres (LPS mm) against the bone")
    frame = GridFrame.around(bone.vertices[near], d, axis, voxel, pad=3.0 * voxel)
    top, top_face, _, _ = depth_buffer(bone, frame)
    return frame, top, top_face


def _facing_columns(bone: SurfaceMesh, frame: GridFrame, top: np.ndarray, top_face: np.ndarray,
                    planes: list[CutPlane], axis: np.ndarray, d: np.ndarray, *, margin: float,
                    max_slope_deg: float) -> np.ndarray:
    """The columns whose bone surface lies near the planes and faces the approach ``d`` (no
    steeper than ``max_slope_deg``)."""
    hit = np.isfinite(top)
    points = frame.column_points(np.where(hit, top, 0.0)).reshape(-1, 3)
    mask = hit & _in_region(points, planes, axis, margin).reshape(frame.shape)
    normals = bone.face_normals()[np.maximum(top_face, 0)]
    return mask & (np.abs(normals @ d) >= np.cos(np.radians(max_slope_deg)))


def _largest_patch(mask: np.ndarray, name: str) -> np.ndarray:
    """The footprint of the shell: the largest patch of ``mask`` (opened to drop slivers) with its
    holes filled."""
    from scipy import ndimage

    mask = ndimage.binary_opening(mask, iterations=2)
    labels, count = ndimage.label(mask)
    if count == 0:
        raise InputError(f"guide '{name}': no bone surface faces the approach direction near the planes",
                         hint="give another approach direction")
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    return ndimage.binary_fill_holes(labels == (1 + int(np.argmax(sizes))))


def _guide_field(frame: GridFrame, planes: list[CutPlane], top: np.ndarray, mask: np.ndarray,
                 params: dict) -> tuple[np.ndarray, float, float]:
    """The guide as a field over the grid (negative inside): the shell from ``clearance_mm`` to
    ``clearance_mm + wall_mm`` above the bone over the footprint ``mask``, and a saw block
    ``block_mm`` higher around each plane. Returns ``(field, t_lo, t_hi)``, the field sampled
    from ``t_lo`` along ``d``, every ``voxel_mm``, to past ``t_hi``."""
    voxel, block = params["voxel_mm"], params["block_mm"]
    hit = np.isfinite(top)
    # holes the filling closed take the height of the nearest column that meets the bone
    lower = fill_outside(np.where(mask & hit, top, 0.0), mask & hit) + params["clearance_mm"]
    upper = lower + params["wall_mm"]
    t_lo = float(lower[mask].min()) - 3 * voxel
    t_hi = float(upper[mask].max()) + block + 3 * voxel
    nt = int(np.ceil((t_hi - t_lo) / voxel)) + 1
    t = t_lo + voxel * np.arange(nt)
    fp = footprint_distance(mask, voxel)[..., None]
    low3, up3 = lower[..., None], upper[..., None]
    field = np.maximum(np.maximum(low3 - t, t - up3), fp)
    cols = frame.column_points(0.0)  # (nu, nv, 3) at t = 0
    half_block = params["slot_width_mm"] / 2 + params["slot_wall_mm"]
    for p in planes:
        sd0 = (cols - p.centre) @ p.normal  # signed distance at t = 0; grows by t * (d . n)
        sd = sd0[..., None] + t * float(frame.d @ p.normal)
        blockf = np.maximum(np.maximum(low3 - t, t - (up3 + block)), np.maximum(np.abs(sd) - half_block, fp))
        field = np.minimum(field, blockf)
    return field, t_lo, t_hi


def _slot_span(body: SurfaceMesh, frame: GridFrame, plane: CutPlane, params: dict, name: str) -> tuple[float, float]:
    """Where the slot runs along ``e = d x n``: from ``bridge_mm`` inside where the guide crosses
    the plane to ``bridge_mm`` inside the other side, so both sides of the slot stay joined."""
    e = np.cross(frame.d, plane.normal)
    e /= np.linalg.norm(e)
    bridge = params["bridge_mm"]
    reach = params["slot_width_mm"] / 2 + params["voxel_mm"]
    near_plane = np.abs((body.vertices - plane.centre) @ plane.normal) <= reach
    if near_plane.sum() < 3:
        raise InputError(f"guide '{name}': plane '{plane.name}' does not cross the guide",
                         hint="the plane must cut the bone where the guide sits")
    es = body.vertices[near_plane] @ e
    lo_e, hi_e = float(es.min()) + bridge, float(es.max()) - bridge
    if hi_e - lo_e < 2.0:
        raise InputError(f"guide '{name}': the guide is too narrow along plane '{plane.name}' for a slot "
                         f"between {bridge:g} mm bridges", hint="lower bridge_mm or raise margin_mm")
    return lo_e, hi_e


def _cut_slots(body: SurfaceMesh, frame: GridFrame, planes: list[CutPlane], params: dict,
               t_range: tuple[float, float], name: str):
    """The guide's solid with a slot cut along each plane through ``t_range`` (along ``d``), and
    the slots' lengths (mm, by plane name)."""
    solid = to_manifold(body)
    slot_lengths = {}
    for p in planes:
        lo_e, hi_e = _slot_span(body, frame, p, params, name)
        slot_lengths[p.name] = hi_e - lo_e
        solid = solid - _slot_box(p, frame, (lo_e, hi_e), t_range, params["slot_width_mm"])
    return solid, slot_lengths


def cutting_guide(bone: SurfaceMesh, planes, approach, *, kerf_mm: float = 1.0, wall_mm: float = WALL_MM,
                  clearance_mm: float = CLEARANCE_MM, margin_mm: float = MARGIN_MM, block_mm: float = BLOCK_MM,
                  slot_wall_mm: float = SLOT_WALL_MM, bridge_mm: float = BRIDGE_MM, voxel_mm: float = VOXEL_MM,
                  max_slope_deg: float = MAX_SLOPE_DEG, name: str = "guide", bone_name: str = "") -> Guide:
    """A cutting guide on ``bone`` with a slot along each of ``planes`` (see the module notes).

    ``approach`` is the direction the guide is put on from (LPS, pointing from the bone to the
    surgeon; made perpendicular to the planes' mean normal). Raises :class:`InputError` for an
    open bone, planes the bone does not reach, or a guide that comes out empty."""
    planes = [p for p in planes]
    if not planes:
        raise InputError(f"guide '{name}': no osteotomy plane to make a slot for")
    params = _guide_parameters(kerf_mm=kerf_mm, wall_mm=wall_mm, clearance_mm=clearance_mm, margin_mm=margin_mm,
                               block_mm=block_mm, slot_wall_mm=slot_wall_mm, bridge_mm=bridge_mm, voxel_mm=voxel_mm)
    bone = check_closed(bone, bone_name or "bone")
    axis = _axis(planes)
    d = _approach_across(approach, axis, name)
    frame, top, top_face = _outer_surface(bone, planes, axis, d, margin=params["margin_mm"], voxel=params["voxel_mm"],
                                          name=name, bone_label=bone_name or bone.name)
    mask = _largest_patch(_facing_columns(bone, frame, top, top_face, planes, axis, d, margin=params["margin_mm"],
                                          max_slope_deg=max_slope_deg), name)
    field, t_lo, t_hi = _guide_field(frame, planes, top, mask, params)
    body = mesh_field(field, frame, t_lo, name)
    solid, slot_lengths = _cut_slots(body, frame, planes, params, (t_lo - 20.0, t_hi + 20.0), name)
    mesh, dropped = clean_solid(solid, name)
    return Guide(name, bone_name or bone.name, mesh, planes, frame.d, params, slot_lengths, dropped)


# ---------------------------------------------------------------------------------------------
# guides for a plan
def approach_direction(bone: SurfaceMesh, plane: CutPlane, superior=None) -> np.ndarray:
    """The default approach to a plane's cut: from the bone's centroid out through the plane's
    centre, in the plane (and horizontal when ``superior`` is given: guides on the jaws go on
    from the front or the side)."""
    d = plane.centre - bone.vertices.mean(axis=0)
    d = d - (d @ plane.normal) * plane.normal
    if superior is not None:
        up = np.asarray(superior, float) / np.linalg.norm(superior)
        flat = d - (d @ up) * up
        if np.linalg.norm(flat) > 1e-6:
            d = flat
    if np.linalg.norm(d) < 1e-6:
        raise InputError(f"no default approach direction for plane '{plane.name}' (its centre is the bone's centroid)")
    return d / np.linalg.norm(d)


def plan_guides(plan, bones: dict[str, SurfaceMesh], **params) -> dict[str, Guide]:
    """One cutting guide per osteotomy of a plan (a :class:`.plan.SurgeryPlan`, a
    :class:`medface.data.Plan` or its dict), on the bone it cuts, approached horizontally from
    outside (head frame of the plan's landmarks when it has them). ``params`` go to
    :func:`cutting_guide` (the plan's kerf unless ``kerf_mm`` is given)."""
    from medface.anatomy.cephalometry import head_frame

    from .plan import SurgeryPlan
    from .slicer_planes import cut_plane

    plan = plan if isinstance(plan, SurgeryPlan) else SurgeryPlan(plan)
    plan.check()
    superior = None
    try:
        superior = head_frame(plan.landmarks).superior if plan.landmarks else None
    except InputError:
        superior = None
    params = {"kerf_mm": float(plan.content.get("kerf_mm", 1.0)), **params}
    out = {}
    for o in plan.osteotomies:
        if o["bone"] not in bones:
            raise InputError(f"the plan cuts bone '{o['bone']}' but no mesh was given for it",
                             hint=f"give the bone meshes {', '.join(sorted({x['bone'] for x in plan.osteotomies}))}")
        plane = cut_plane(o)
        bone = bones[o["bone"]]
        out[o["name"]] = cutting_guide(bone, [plane], approach_direction(bone, plane, superior),
                                       name=f"guide_{o['name']}", bone_name=o["bone"], **params)
    return out


# ---------------------------------------------------------------------------------------------
# the printed parts of a plan: guides and splints
JAW_SEGMENTS = ("maxilla", "mandible_distal")
"""The presets' segments that carry teeth: a plan that has one of them gets occlusal splints."""


def printability(parts) -> list[dict]:
    """The printability check (:func:`.printable.check_printable`) of each part (guides and
    splints, whose checks are made once and shared with their rows), as table rows."""
    return [part.print_check.to_dict() for part in parts]


@dataclass
class PlanParts:
    """The printed parts of a plan: its cutting guides and occlusal splints (by name)."""

    guides: dict[str, Guide]
    splints: dict = field(default_factory=dict)  # name -> splints.Splint
    notes: list[str] = field(default_factory=list)  # parts not made, and why

    def meshes(self) -> dict[str, SurfaceMesh]:
        """Every part's mesh by its part name (``guide_...``, ``splint_...``)."""
        return {p.name: p.mesh for p in self.parts()}

    def parts(self) -> list:
        """The guides, then the splints."""
        return [*self.guides.values(), *self.splints.values()]

    def tables(self, checks: list[dict]) -> dict[str, list[dict]]:
        """The guides' and splints' tables and the printability ``checks`` of :func:`printability`."""
        tables = {"guides": [g.row() for g in self.guides.values()]}
        if self.splints:
            tables["splints"] = [s.row() for s in self.splints.values()]
        tables["printability"] = checks
        return tables

    def warnings(self) -> list[str]:
        """Loose bits left out of the guides, the splints' warnings and the bite opening they need."""
        out = list(self.notes)
        out += [f"{g.name}: {len(g.dropped_mm3)} loose bit(s) of {sum(g.dropped_mm3):.1f} mm^3 left out"
                for g in self.guides.values() if g.dropped_mm3]
        for s in self.splints.values():
            out.extend(s.warnings)
            if s.opening_deg:
                out.append(f"{s.name} is made with the mandible opened {s.opening_deg:.1f} deg about the "
                           "condylar axis (autorotation) to give it its least thickness")
        return out


def plan_parts(plan, bones: dict[str, SurfaceMesh], *, splints: bool = True, stage=None, **params) -> PlanParts:
    """The cutting guides of a checked :class:`.plan.SurgeryPlan` (:func:`plan_guides`, given
    ``params``) and, with ``splints`` and when the plan has a tooth-bearing segment
    (:data:`JAW_SEGMENTS`), its occlusal splints (:func:`.splints.plan_splints`); a splint lies
    between both dental arches, so without the cranium or the mandible it is not made and a note
    says so. ``stage`` is told what is being made."""
    stage = stage if stage is not None else (lambda text: None)
    stage("making the cutting guides")
    parts = PlanParts(plan_guides(plan, bones, **params))
    if splints and any(s["name"] in JAW_SEGMENTS for s in plan.segments):
        from .splints import plan_splints

        missing = [b for b in ("cranium", "mandible") if b not in bones]
        if missing:
            parts.notes.append(f"no occlusal splints: they lie between both dental arches and the {' and the '.join(missing)} "
                               "surface was not given (give --bone and --mandible, or --ct)")
            return parts

        stage("making the occlusal splints")
        parts.splints = plan_splints(plan, bones)
    return parts


def parts_figure(bones: dict[str, SurfaceMesh], parts: PlanParts):
    """The guides on the bone from the front, and each splint from below."""
    from medface.data.outputs import Figure

    def scenes() -> list:
        from medface.viz import Scene

        scene = Scene()
        for b in bones.values():
            scene.add_mesh(b, color="bone")
        for g in parts.guides.values():
            scene.add_mesh(g.mesh, color=(0.2, 0.5, 0.9))
        return [scene, *(Scene().add_mesh(s.mesh, color=(0.95, 0.75, 0.2)) for s in parts.splints.values())]

    return Figure(scenes, views=["frontal"] + ["inferior"] * len(parts.splints), size=(400, 400),
                  titles=["cutting guides"] + [s.name for s in parts.splints.values()])
