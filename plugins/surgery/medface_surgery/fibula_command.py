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


def fibula(mandible: SurfaceMesh, landmarks=None, fibula: SurfaceMesh | None = None, plan=None, *,
           defect_side: str = "left", defect_start: float = 15.0, defect_length: float | None = None,
           contour: str = "original", min_segment: float = 20.0, max_segments: int = 4, max_deviation: float = 2.0,
           gap: float = 0.0, kerf: float = 1.0, fibula_side: str = "left", guides: bool = True,
           figures: bool = True, context=None) -> Result:
    """CLI entry of `surgery fibula`."""
    from .fibula import body_defect_planes, plan_fibula

    stage = context.stage if context is not None else (lambda text: None)
    if plan is not None and defect_length is not None:
        raise ParameterError("give either --plan (two resection planes) or --defect-length, not both",
                             parameter="defect_length")
    if plan is not None:
        planes = _planes_from_plan(plan)
    else:
        if landmarks is None:
            raise InputError("placing a body defect needs --landmarks (pog, go_l, go_r, porion, orbitale)",
                             hint="or give the resection planes in a plan (--plan)")
        planes = body_defect_planes(mandible, landmarks, side=defect_side, start_mm=defect_start,
                                    length_mm=40.0 if defect_length is None else defect_length)
    stage("planning the fibula segments")
    fp = plan_fibula(mandible, planes, fibula, landmarks=landmarks, contour=contour, min_segment_mm=min_segment,
                     max_segments=max_segments, max_deviation_mm=max_deviation, gap_mm=gap, kerf_mm=kerf,
                     fibula_side=fibula_side, guides=guides)
    m = fp.metrics
    result = Result(command="surgery.fibula", limits=list(LIMITS), warnings=list(fp.warnings),
                    summary={"segments": fp.n_segments,
                             "lengths_mm": ", ".join(f"{r['length_mm']:.1f}" for r in fp.segment_rows),
                             "wedges_deg": ", ".join(f"{r['wedge_deg']:.1f}" for r in fp.junction_rows[1:-1]) or "none",
                             "mean_distance_mm": m["reconstruction_to_original_mean_mm"],
                             "max_distance_mm": m["reconstruction_to_original_max_mm"], "contour": contour},
                    metrics=dict(m), tables={"segments": fp.segment_rows, "junctions": fp.junction_rows})
    from .slicer_planes import plane_to_slicer

    for k, seg in enumerate(fp.segments):
        result.declare(f"fibula segment {k + 1} (placed)", f"fibula_segment_{k + 1}.stl", seg)
    for k, piece in enumerate(fp.fibula_pieces):
        result.declare(f"fibula segment {k + 1} (on the fibula)", f"fibula_piece_{k + 1}.stl", piece)
    for k, stump in enumerate(fp.stumps):
        result.declare(f"mandible stump {k + 1}", f"mandible_stump_{k + 1}.stl", stump)
    result.declare("resected bone", "resected.stl", fp.resected)
    for p in fp.planes:
        result.declare(f"resection plane {p.name}", f"plane_{p.name}.mrk.json",
                       plane_to_slicer({"name": p.name, "bone": "mandible", "centre": p.centre, "normal": p.normal,
                                        "size_mm": list(p.size) if p.size else None,
                                        "u_axis": p.u_axis}), kind="json")
    if guides:
        from .printable import check_printable

        result.tables["guides"] = [g.row() for g in fp.guides.values()]
        result.tables["printability"] = [check_printable(g.mesh, g.name).to_dict() for g in fp.guides.values()]
        for g in fp.guides.values():
            result.declare(g.name, f"{g.name}.stl", g.mesh)
    if figures:
        from medface.data.outputs import Figure

        def scenes():
            from medface.viz import Scene

            recon = Scene()
            for s in fp.stumps:
                recon.add_mesh(s, color="bone")
            for s in fp.segments:
                recon.add_mesh(s, color=(0.85, 0.35, 0.30))
            return [Scene().add_mesh(mandible, color="bone"), recon]

        result.declare("fibula plan", "fibula_plan.png",
                       Figure(scenes, views="three_quarter_left", size=(420, 420),
                              titles=["before", "fibula segments in the defect"]))
    result.data.update({"plan": fp})
    return result
