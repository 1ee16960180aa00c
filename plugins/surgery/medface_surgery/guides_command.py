"""`surgery guides`: printable cutting guides and occlusal splints for a plan (logic in
:mod:`.guides` and :mod:`.splints`); the runner writes the declared STL files and pictures."""

from __future__ import annotations

from medface.data import Result, SurfaceMesh, Volume
from medface.errors import InputError

LIMITS = ["Guides and splints are built on the bone surfaces as given: a threshold segmentation's errors "
          "(teeth fused, thin walls, metal artefacts) go into the print; check the fit on a printed model first.",
          "The saw finishes each cut past the slot's bridges after the guide is removed; screw holes are not made.",
          "Research software, not a medical device: a surgeon checks every part before it is used."]


def guides(plan, bone: SurfaceMesh | None = None, mandible: SurfaceMesh | None = None, ct: Volume | None = None, *,
           wall_mm: float = 2.0, clearance_mm: float = 0.25, block_mm: float = 5.0, margin_mm: float = 10.0,
           splints: bool = True, figures: bool = True, context=None) -> Result:
    """CLI entry of `surgery guides`."""
    from .guides import plan_guides
    from .plan import SurgeryPlan
    from .printable import check_printable
    from .simulation import patient_surfaces

    stage = context.stage if context is not None else (lambda text: None)
    if ct is None and bone is None and mandible is None:
        raise InputError("give the bone surfaces (--bone and/or --mandible) or a CT (--ct)")
    if ct is not None:
        bones = patient_surfaces(ct, None, None, None, stage=stage).bones
    else:
        bones = {k: v for k, v in (("cranium", bone), ("mandible", mandible)) if v is not None}
    plan = SurgeryPlan(plan).check()
    stage("making the cutting guides")
    made = plan_guides(plan, bones, wall_mm=wall_mm, clearance_mm=clearance_mm, block_mm=block_mm,
                       margin_mm=margin_mm)
    result = Result(command="surgery.guides", limits=list(LIMITS))
    parts = {g.name: g.mesh for g in made.values()}
    tables = {"guides": [g.row() for g in made.values()]}
    warnings = [f"{g.name}: {len(g.dropped_mm3)} loose bit(s) of {sum(g.dropped_mm3):.1f} mm^3 left out"
                for g in made.values() if g.dropped_mm3]
    made_splints = {}
    if splints:
        from .splints import plan_splints

        moved = [s for s in plan.segments if s["name"] in ("maxilla", "mandible_distal")]
        if moved:
            stage("making the occlusal splints")
            made_splints = plan_splints(plan, bones)
            tables["splints"] = [s.row() for s in made_splints.values()]
            parts.update({s.name: s.mesh for s in made_splints.values()})
            for s in made_splints.values():
                warnings.extend(s.warnings)
                if s.opening_deg:
                    warnings.append(f"{s.name} is made with the mandible opened {s.opening_deg:.1f} deg about the "
                                    "condylar axis (autorotation) to give it its least thickness")
    checks = [check_printable(m, name).to_dict() for name, m in parts.items()]
    tables["printability"] = checks
    result.tables, result.warnings = tables, warnings
    result.summary = {"guides": ", ".join(g.name for g in made.values()),
                      "splints": ", ".join(s.name for s in made_splints.values()) or "none",
                      "all_printable": all(c["printable"] for c in checks)}
    result.metrics = {"volume_mm3": {c["part"]: c["volume_mm3"] for c in checks}}
    for name, mesh in parts.items():
        result.declare(name, f"{name}.stl", mesh)
    if figures:
        from medface.data.outputs import Figure

        def scenes():
            from medface.viz import Scene

            scene = Scene()
            for b in bones.values():
                scene.add_mesh(b, color="bone")
            for g in made.values():
                scene.add_mesh(g.mesh, color=(0.2, 0.5, 0.9))
            out = [scene]
            for s in made_splints.values():
                out.append(Scene().add_mesh(s.mesh, color=(0.95, 0.75, 0.2)))
            return out

        n = 1 + len(made_splints)
        result.declare("guides and splints", "guides.png",
                       Figure(scenes, views=["frontal"] + ["inferior"] * (n - 1), size=(400, 400),
                              titles=["cutting guides"] + [s.name for s in made_splints.values()]))
    result.data.update({"guides": made, "splints": made_splints})
    return result
