"""`surgery guides`: printable cutting guides and occlusal splints for a plan (logic in
:mod:`.guides` and :mod:`.splints`); the runner writes the declared STL files and pictures."""

from __future__ import annotations

from medface.data import Result, SurfaceMesh, Volume
from medface.errors import InputError

LIMITS = ["Guides and splints are built on the bone surfaces as given: a threshold segmentation's errors "
          "(teeth fused, thin walls, metal artefacts) go into the print; check the fit on a printed model first.",
          "The saw finishes each cut past the slot's bridges after the guide is removed; screw holes are not made.",
          "Research software, not a medical device: a surgeon checks every part before it is used."]


def _bones(bone: SurfaceMesh | None, mandible: SurfaceMesh | None, ct: Volume | None, stage,
           landmarks=None) -> tuple[dict, list[str]]:
    """The bone surfaces by name (``cranium``, ``mandible``) and the segmentation's warnings:
    segmented from the CT (the mandible split seeded at the plan's ``landmarks``), or as given."""
    from .simulation import patient_surfaces

    if ct is None and bone is None and mandible is None:
        raise InputError("give the bone surfaces (--bone and/or --mandible) or a CT (--ct)")
    if ct is not None:
        surfaces = patient_surfaces(ct, None, None, None, landmarks=landmarks, stage=stage)
        return surfaces.bones, list(surfaces.notes)
    return {k: v for k, v in (("cranium", bone), ("mandible", mandible)) if v is not None}, []


def _summary(parts, checks: list[dict]) -> dict:
    return {"guides": ", ".join(g.name for g in parts.guides.values()),
            "splints": ", ".join(s.name for s in parts.splints.values()) or "none",
            "all_printable": all(c["printable"] for c in checks)}


def guides(plan, bone: SurfaceMesh | None = None, mandible: SurfaceMesh | None = None, ct: Volume | None = None, *,
           wall_mm: float = 2.0, clearance_mm: float = 0.25, block_mm: float = 5.0, margin_mm: float = 10.0,
           splints: bool = True, figures: bool = True, context=None) -> Result:
    """CLI entry of `surgery guides`: a guide per osteotomy and, for a plan that moves a jaw, the
    splints; declares ``<part>.stl`` for each and a picture."""
    from .guides import parts_figure, plan_parts, printability
    from .plan import SurgeryPlan

    stage = context.stage if context is not None else (lambda text: None)
    plan = SurgeryPlan(plan).check()
    bones, notes = _bones(bone, mandible, ct, stage, plan.landmarks)
    parts = plan_parts(plan, bones, splints=splints, stage=stage, wall_mm=wall_mm, clearance_mm=clearance_mm,
                       block_mm=block_mm, margin_mm=margin_mm)
    meshes = parts.meshes()
    checks = printability(parts.parts())
    result = Result(command="surgery.guides", limits=list(LIMITS), summary=_summary(parts, checks),
                    tables=parts.tables(checks), warnings=notes + parts.warnings(),
                    metrics={"volume_mm3": {c["part"]: c["volume_mm3"] for c in checks}})
    for name, mesh in meshes.items():
        result.declare(name, f"{name}.stl", mesh)
    if figures:
        result.declare("guides and splints", "guides.png", parts_figure(bones, parts))
    result.data.update({"guides": parts.guides, "splints": parts.splints})
    return result
