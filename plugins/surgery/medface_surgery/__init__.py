"""medface surgery plugin: craniomaxillofacial surgery planning.

The logic is importable without the CLI or any file (``docs/surgery.md``, "Python API")::

    from medface_surgery import Simulation, SurgeryPlan

    plan = SurgeryPlan.from_preset("genioplasty", landmarks, advance=4.0)
    planned = plan.apply({"mandible": mandible})          # PlanResult: moved segments, landmarks
    sim = Simulation(plan, tissue="preview").run({"cranium": skull, "mandible": mandible}, skin)

The names below are imported on first use, so ``import medface_surgery`` stays cheap.
"""

from __future__ import annotations

from medface.lazy import lazy_exports


__version__ = "0.1.0"

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "SurgeryPlan": "plan", "PlanError": "plan_schema", "PlanResult": "apply", "apply_plan": "apply",
    "make_plan": "presets", "procedure_id": "presets", "PROCEDURES": "presets",
    "CutPlane": "cutting", "cut": "cutting",
    "mirror_healthy_side": "mirror", "symmetry_plane_from_surface": "mirror",
    "SoftTissueModel": "fem", "RigidBlendPreview": "preview", "TissueMesh": "tissue_mesh",
    "build_tissue_mesh": "tissue_mesh",
    "Simulation": "simulation", "SimulationResult": "simulation", "simulate_surfaces": "simulation",
    "PatientSurfaces": "simulation", "patient_surfaces": "simulation", "surfaces_from_ct": "simulation",
    "SegmentMovePreview": "live",
    "cutting_guide": "guides", "plan_guides": "guides", "Guide": "guides",
    "occlusal_splint": "splints", "plan_splints": "splints", "Splint": "splints",
    "check_printable": "printable", "self_intersections": "printable",
    "plan_fibula": "fibula", "FibulaPlan": "fibula", "body_defect_planes": "fibula",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
