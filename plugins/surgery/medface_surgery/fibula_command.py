"""`surgery fibula`: fibula free-flap plan for a segmental mandible defect (logic in :mod:`.fibula`)."""

from __future__ import annotations

from medface.data import Result, SurfaceMesh
from medface.errors import InputError, ParameterError

LIMITS = ["Geometry only: the vascular pedicle, the skin paddle, plates and screws are not planned; a surgeon "
          "checks the segment lengths and angles against the patient's fibula and vessels.",
          "The template fibula (used when no fibula mesh is given) is synthetic: its dimensions are typical "
          "adult values, not the patient's.",
          "A single-barrel fibula rebuilds the mandible's lower border, not its full height: the distance from "
          "the resected bone's surface to the reconstruction includes the alveolar part and teeth it does not "
          "replace."]


def _planes_from_plan(plan) -> list:
    from .plan import SurgeryPlan
    from .slicer_planes import cut_plane

    osteotomies = [o for o in SurgeryPlan(plan).check().osteotomies if o["bone"] == "mandible"]
    if len(osteotomies) != 2:
        raise InputError(f"the plan has {len(osteotomies)} osteotomies on the mandible; a segmental defect needs two "
                         "resection planes", hint="give a plan with exactly two mandible osteotomies, or --defect-length")
    return [cut_plane(o) for o in osteotomies]


def _resection_planes(mandible: SurfaceMesh, landmarks, plan, *, side: str, start: float,
                      length: float | None) -> list:
    """The two resection planes: the plan's mandible osteotomies, or a body defect placed from
    the landmarks (``length`` mm, 40 when not given)."""
    from .fibula import body_defect_planes

    if plan is not None and length is not None:
        raise ParameterError("give either --plan (two resection planes) or --defect-length, not both",
                             parameter="defect_length")
    if plan is not None:
        return _planes_from_plan(plan)
    if landmarks is None:
        raise InputError("placing a body defect needs --landmarks (pog, go_l, go_r, porion, orbitale)",
                         hint="or give the resection planes in a plan (--plan)")
    return list(body_defect_planes(mandible, landmarks, side=side, start_mm=start,
                                   length_mm=40.0 if length is None else length))


def _summary(fp, contour: str) -> dict:
    m = fp.metrics
    return {"segments": fp.n_segments, "lengths_mm": ", ".join(f"{r['length_mm']:.1f}" for r in fp.segment_rows),
            "wedges_deg": ", ".join(f"{r['wedge_deg']:.1f}" for r in fp.junction_rows[1:-1]) or "none",
            "mean_distance_mm": m["reconstruction_to_original_mean_mm"],
            "max_distance_mm": m["reconstruction_to_original_max_mm"], "contour": contour}


def _tables(fp) -> dict:
    from .guides import printability

    tables = {"segments": fp.segment_rows, "junctions": fp.junction_rows}
    if fp.guides:
        tables["guides"] = [g.row() for g in fp.guides.values()]
        tables["printability"] = printability(fp.guides.values())
    return tables


def fibula(mandible: SurfaceMesh, landmarks=None, fibula: SurfaceMesh | None = None, plan=None, *,
           defect_side: str = "left", defect_start: float = 15.0, defect_length: float | None = None,
           contour: str = "original", min_segment: float = 20.0, max_segments: int = 4, max_deviation: float = 2.0,
           gap: float = 0.0, kerf: float = 1.0, fibula_side: str = "left", guides: bool = True,
           figures: bool = True, context=None) -> Result:
    """CLI entry of `surgery fibula`: declares the segments, pieces, stumps, resected bone,
    resection planes, the guides (with ``guides``) and a picture."""
    from .fibula import plan_figure, plan_fibula, plan_outputs

    stage = context.stage if context is not None else (lambda text: None)
    planes = _resection_planes(mandible, landmarks, plan, side=defect_side, start=defect_start, length=defect_length)
    stage("planning the fibula segments")
    fp = plan_fibula(mandible, planes, fibula, landmarks=landmarks, contour=contour, min_segment_mm=min_segment,
                     max_segments=max_segments, max_deviation_mm=max_deviation, gap_mm=gap, kerf_mm=kerf,
                     fibula_side=fibula_side, guides=guides)
    result = Result(command="surgery.fibula", limits=list(LIMITS), warnings=list(fp.warnings),
                    summary=_summary(fp, contour), metrics=dict(fp.metrics), tables=_tables(fp))
    for name, filename, value, kind in plan_outputs(fp):
        result.declare(name, filename, value, kind=kind)
    if figures:
        result.declare("fibula plan", "fibula_plan.png", plan_figure(mandible, fp))
    result.data.update({"plan": fp})
    return result
