"""`surgery simulate`: the command over :class:`.simulation.Simulation`.

It binds the surfaces (from a CT or given as meshes), runs the simulation, and declares the
outputs: the moved segments and uncut remainders as STL, the predicted skin (PLY, with its
displacement in mm) and the before/after pictures; the runner writes them.
"""

from __future__ import annotations

from medface.data import Result, SurfaceMesh, Volume

from .figures import simulation_figures
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
    return tables, metrics


def simulate(plan, ct: Volume | None = None, bone: SurfaceMesh | None = None, mandible: SurfaceMesh | None = None,
             skin: SurfaceMesh | None = None, *, tissue: str = "fem", h: float = 3.0, figures: bool = True,
             context=None) -> Result:
    """CLI entry of `surgery simulate`."""
    stage = context.stage if context is not None else (lambda text: None)
    surfaces = patient_surfaces(ct, bone, mandible, skin, stage=stage)
    sim = Simulation(plan, tissue=tissue, h=h).run(surfaces.bones, surfaces.skin, stage=stage)
    tables, metrics = _tables_and_metrics(sim)
    result = Result(command="surgery.simulate", summary=_summary(sim), tables=tables, metrics=metrics,
                    warnings=list(surfaces.notes), limits=list(LIMITS))
    for name, mesh in sim.segments.items():
        result.declare(f"segment {name}", f"segment_{name}.stl", mesh)
    for bone_name, mesh in sim.planned.rest.items():
        result.declare(f"{bone_name} (rest)", f"{bone_name}_rest.stl", mesh)
    result.declare("predicted skin", "skin_predicted.ply", sim.skin_after)
    if figures:
        for name, filename, figure in simulation_figures(surfaces.bones, sim):
            result.declare(name, filename, figure, face=True)  # skin before and after: face renders
    result.data.update({"segments": sim.segments, "skin_after": sim.skin_after, "simulation": sim})
    return result
