"""`surgery plan`: a checked surgical plan (plan.json) from landmarks and a procedure preset."""

from __future__ import annotations

from pathlib import Path

from medface.data import Landmarks, Result
from medface.errors import ParameterError

from .plan import SurgeryPlan

LIMITS = ["Preset planes are placed from landmarks by rules (docs/surgery-plans.md); a surgeon must check and "
          "adjust them on the patient's anatomy."]


def _tables(plan: SurgeryPlan) -> dict:
    return {"moves": [{"segment": m["segment"], "translation_mm": [round(float(v), 2) for v in m["translation_mm"]],
                       "rotation_deg": [round(float(v), 2) for v in m["rotation_deg"]]} for m in plan.moves],
            "osteotomies": [{"name": o["name"], "bone": o["bone"], "centre": [round(float(v), 2) for v in o["centre"]],
                             "normal": [round(float(v), 3) for v in o["normal"]]} for o in plan.osteotomies]}


def plan_command(landmarks: Landmarks, procedure: str, out, advance: float = 0.0, impaction: float = 0.0,
                 mandible_advance: float | None = None, chin_advance: float | None = None,
                 kerf: float = 1.0) -> Result:
    """CLI entry of `surgery plan`: the preset's plan, declared as the JSON file ``out``."""
    plan = SurgeryPlan.from_preset(procedure, landmarks, advance=advance, impaction=impaction,
                                   mandible_advance=mandible_advance, chin_advance=chin_advance, kerf_mm=kerf)
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise ParameterError(f"the plan is written as JSON: give a file name ending in .json, got {out.name!r}",
                             parameter="out")
    summary = {"procedure": plan.procedure, "osteotomies": len(plan.osteotomies),
               "segments": ", ".join(s["name"] for s in plan.segments), "moves": len(plan.moves), "plan": str(out)}
    result = Result(command="surgery.plan", summary=summary, tables=_tables(plan), limits=list(LIMITS))
    return result.declare("plan", out.name, plan.document)
