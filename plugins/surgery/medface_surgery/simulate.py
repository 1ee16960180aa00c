"""`surgery simulate`: the command over :class:`.simulation.Simulation`.

It binds the surfaces (from a CT or given as meshes), runs the simulation, and declares the
outputs: the moved segments and uncut remainders as STL, the predicted skin (PLY, with its
displacement in mm) and the before/after pictures; the runner writes them.
"""

from __future__ import annotations

from medface.data import Result, SurfaceMesh, Volume

from .fem import DEFAULT_GRADE_MM
from .figures import simulation_figures
from .plan import SurgeryPlan
from .simulation import Simulation, SimulationResult, patient_surfaces

LIMITS = ["Soft tissue is linear-elastic and homogeneous (no muscles, no sliding layers, no swelling); "
          "no patient pre- and post-operative data was available to validate the prediction.",
          "Bone surfaces from CT are threshold segmentations: check them before any printing."]


def _rounded(value, digits: int):
    return round(float(value), digits) if isinstance(value, float) else value


def _region_rows(per_region: dict[str, dict]) -> list[dict]:
    return [{"region": name, **{k: _rounded(v, 3) for k, v in stats.items()}} for name, stats in per_region.items()]


def _summary(sim: SimulationResult) -> dict:
    return {"segments": ", ".join(sim.segments), "tissue_model": sim.tissue,
            "max_skin_change_mm": round(sim.max_skin_change_mm, 2),
            "mean_skin_change_mm": round(sim.mean_skin_change_mm, 3), "skin_vertices": len(sim.skin.vertices)}


def _tables_and_metrics(sim: SimulationResult) -> tuple[dict, dict]:
    tables = {"measures": [{k: _rounded(v, 2) for k, v in row.items()} for row in sim.measures],
              "soft-tissue change": _region_rows(sim.skin_change)}
    metrics = {}
    if sim.preview_vs_fem is not None:
        metrics["preview_vs_fem"] = sim.preview_vs_fem
        tables["preview vs FEM"] = _region_rows(sim.preview_vs_fem)
    if sim.fem_info is not None:
        metrics["fem"] = sim.fem_info
    metrics["kerf_volume_mm3"] = {k: round(float(v), 1) for k, v in sim.planned.kerf_volume.items()}
    planned = sim.planned
    metrics["collisions"] = [o.to_dict() for o in planned.collisions]
    if planned.collisions:
        tables["bone collisions"] = metrics["collisions"]
    if planned.dropped:
        metrics["slivers_dropped_mm3"] = {k: [round(v, 2) for v in vols] for k, vols in planned.dropped.items()}
    if planned.mirror is not None:
        metrics["mirror"] = mirror_metrics(planned)
    return tables, metrics


def mirror_metrics(planned) -> dict:
    """The mirror step in numbers: plane, fit, transform, size of the mirrored half."""
    from .cutting import volume_centroid

    plane = planned.mirror_plane
    volume, _ = volume_centroid(planned.mirror.vertices, planned.mirror.faces)
    return {"plane_centre_mm": [round(float(x), 2) for x in plane.centre],
            "plane_normal": [round(float(x), 4) for x in plane.normal],
            "registration_rms_mm": None if planned.mirror_rms_mm is None else round(float(planned.mirror_rms_mm), 3),
            "mirrored_volume_mm3": round(abs(volume), 1),
            "transform": [[round(float(x), 6) for x in row] for row in planned.mirror_transform]}


def mirror_plane_markups(planned, bone: str) -> dict:
    """The mirror plane as a 3D Slicer markups plane (LPS)."""
    from .slicer_planes import plane_to_slicer

    plane = planned.mirror_plane
    return plane_to_slicer({"name": "mirror_plane", "bone": bone, "centre": plane.centre, "normal": plane.normal,
                            "size_mm": [150.0, 150.0], "u_axis": [0.0, 1.0, 0.0],
                            "description": "mid-sagittal plane the healthy side was mirrored across"})


def declare_plan_outputs(result: Result, planned, plan) -> None:
    """What the operating room needs from the plan: pieces, mirror, planes and moved landmarks."""
    from medface.data import Landmarks

    from .slicer_planes import plane_to_slicer

    for name, mesh in planned.segments.items():
        result.declare(f"segment {name}", f"segment_{name}.stl", mesh)
    for bone_name, mesh in planned.rest.items():
        result.declare(f"{bone_name} (rest)", f"{bone_name}_rest.stl", mesh)
    if planned.mirror is not None:
        bone = plan.content["mirror"]["bone"]
        result.declare("mirrored healthy side", "mirror.stl", planned.mirror)
        result.declare("mirror plane", "mirror_plane.mrk.json", mirror_plane_markups(planned, bone), kind="json")
    for o in plan.content.get("osteotomies", []):
        result.declare(f"osteotomy plane {o['name']}", f"plane_{o['name']}.mrk.json", plane_to_slicer(o), kind="json")
    if planned.landmarks:
        moved = Landmarks.from_dict(planned.landmarks, name="landmarks after the plan")
        result.declare("landmarks after the plan", "landmarks_after.mrk.json", moved)


def simulate(plan, ct: Volume | None = None, bone: SurfaceMesh | None = None, mandible: SurfaceMesh | None = None,
             skin: SurfaceMesh | None = None, *, tissue: str = "fem", h: float = 3.0, grade: float = DEFAULT_GRADE_MM,
             gaps: bool = True, figures: bool = True, sex: str | None = None, context=None) -> Result:
    """CLI entry of `surgery simulate`."""
    stage = context.stage if context is not None else (lambda text: None)
    simulation = Simulation(plan, tissue=tissue, h=h, sex=sex, grade_mm=grade, gaps=gaps)
    surfaces = patient_surfaces(ct, bone, mandible, skin, landmarks=SurgeryPlan(simulation.plan).landmarks, stage=stage)
    sim = simulation.run(surfaces.bones, surfaces.skin, stage=stage)
    tables, metrics = _tables_and_metrics(sim)
    result = Result(command="surgery.simulate", summary=_summary(sim), tables=tables, metrics=metrics,
                    warnings=list(surfaces.notes) + list(sim.planned.warnings) + list(sim.fem_warnings),
                    limits=list(LIMITS))
    declare_plan_outputs(result, sim.planned, simulation.plan)
    result.declare("predicted skin", "skin_predicted.ply", sim.skin_after)
    if figures:
        for name, filename, figure in simulation_figures(surfaces.bones, sim):
            result.declare(name, filename, figure, face=True)  # skin before and after: face renders
    result.data.update({"segments": sim.segments, "skin_after": sim.skin_after, "simulation": sim})
    return result
