"""`surgery plan`: a checked surgical plan (plan.json) from landmarks and a procedure preset."""

from __future__ import annotations

from pathlib import Path

from medface.data import Landmarks, Result
from medface.errors import ParameterError

from .plan import save_plan
from .presets import PROCEDURES, make_plan

#: spellings accepted on the command line for each preset
ALIASES = {"lefort1": "le_fort_i", "le-fort-i": "le_fort_i", "lefort_i": "le_fort_i", "le_fort_1": "le_fort_i",
           "bsso": "bsso", "sagittal_split": "bsso", "genio": "genioplasty", "bimax": "bimaxillary"}


def procedure_id(name: str) -> str:
    key = name.strip().lower().replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in PROCEDURES:
        raise ParameterError(f"unknown procedure {name!r}; use one of {', '.join(PROCEDURES)} "
                             f"(or {', '.join(sorted(ALIASES))})", parameter="procedure")
    return key


def plan_command(landmarks: Landmarks, procedure: str, out, advance: float = 0.0, impaction: float = 0.0,
                 mandible_advance: float | None = None, chin_advance: float | None = None,
                 kerf: float = 1.0) -> Result:
    proc = procedure_id(procedure)
    plan = make_plan(proc, landmarks, advance=advance, impaction=impaction, mandible_advance=mandible_advance,
                     chin_advance=chin_advance, kerf_mm=kerf)
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise ParameterError(f"the plan is written as JSON: give a file name ending in .json, got {out.name!r}",
                             parameter="out")
    save_plan(plan, out)
    content = plan.content
    return Result(command="surgery.plan",
                  summary={"procedure": proc, "osteotomies": len(content.get("osteotomies", [])),
                           "segments": ", ".join(s["name"] for s in content.get("segments", [])),
                           "moves": len(content.get("moves", [])), "plan": str(out)},
                  outputs={"plan": str(out)},
                  tables={"moves": [{"segment": m["segment"],
                                     "translation_mm": [round(float(v), 2) for v in m["translation_mm"]],
                                     "rotation_deg": [round(float(v), 2) for v in m["rotation_deg"]]}
                                    for m in content.get("moves", [])],
                          "osteotomies": [{"name": o["name"], "bone": o["bone"],
                                           "centre": [round(float(v), 2) for v in o["centre"]],
                                           "normal": [round(float(v), 3) for v in o["normal"]]}
                                          for o in content.get("osteotomies", [])]},
                  limits=["Preset planes are placed from landmarks by rules (docs/surgery-plans.md); a surgeon "
                          "must check and adjust them on the patient's anatomy."])
