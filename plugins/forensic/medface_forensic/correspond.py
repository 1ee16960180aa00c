"""`forensic correspond`: a lab's skull-skin pairs, in any topology, brought into the template's
dense correspondence so that `forensic train` can learn from them.

Input layout (one folder per subject, surfaces as cut from each subject's CT, mm, one frame per
subject; poses may differ)::

    raw/
      <subject id>/
        skull.ply        the whole skull with the mandible (or cranium.ply + mandible.ply)
        skin.ply         the skin surface of the head
        subject.json     {"sex": "F" | "M", "age": years, "bmi": kg/m^2}

For each subject the template skull is registered onto the skull
(:func:`.register.register_skull`: similarity, then a smooth non-rigid field) and the template
skin, carried along by the skull's transform, is fitted onto the skin
(:func:`.register.register_skin`). The output folder has the layout of
:mod:`.train`: ``<id>/cranium.ply``, ``mandible.ply``, ``skin.ply`` with the template's vertices
and triangles, and the subject.json. Subjects whose mandible is not found are left out (the
model needs it), with the reason in the result.

The correspondence is only as good as the registration: the report gives each subject's
residuals (median distance of the fitted template to the input surfaces); check the worst.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from medface.data import Result, SurfaceMesh
from medface.errors import InputError


def _skull_mesh(folder: Path, who: str) -> SurfaceMesh:
    from medface.io import read_mesh

    if (folder / "skull.ply").is_file():
        return read_mesh(folder / "skull.ply")
    if (folder / "cranium.ply").is_file() and (folder / "mandible.ply").is_file():
        cr, md = read_mesh(folder / "cranium.ply"), read_mesh(folder / "mandible.ply")
        return SurfaceMesh(np.concatenate([cr.vertices, md.vertices]),
                           np.concatenate([cr.faces, md.faces + len(cr.vertices)]), name=f"skull of {who}")
    raise InputError(f"{who}: no skull.ply (or cranium.ply and mandible.ply)", path=folder,
                     hint="put the subject's skull surface, with its mandible, in skull.ply")


def correspond_subject(skull: SurfaceMesh, skin: SurfaceMesh) -> dict:
    """Template cranium, mandible and skin vertices on one subject's skull and skin (mm), and the
    registration's residuals and warnings."""
    from .register import register_skin, register_skull

    reg = register_skull(skull)
    skin_vertices, skin_res = register_skin(reg, skin)
    return {"cranium": reg.vertices[: reg.n_cranium], "mandible": reg.vertices[reg.n_cranium:],
            "skin": skin_vertices, "mandible_present": reg.mandible_present,
            "skull_median_mm": float(reg.residual_mm.get("final_median", np.nan)),
            "skin_median_mm": skin_res["median_mm"], "skin_p95_mm": skin_res["p95_mm"],
            "warnings": list(reg.warnings)}


def correspond_command(pairs, out) -> Result:
    """CLI entry of `forensic correspond` (see the module docstring)."""
    from medface.io import read_mesh, write_mesh

    from .template import template_head
    from .train import SUBJECT_FILE, read_subject_info

    root, out = Path(pairs), Path(out)
    if not root.is_dir():
        raise InputError("the pairs folder does not exist", path=root)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise InputError("the output folder lies inside the input folder", path=out,
                         hint="write the corresponded pairs to a folder of their own")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "template")
    if not folders:
        raise InputError("no subject folders", path=root, hint="one folder per subject: skull.ply, skin.ply, "
                                                               "subject.json")
    for f in folders:  # cheap checks of every subject before the slow registrations
        who = f"subject '{f.name}'"
        if not (f / SUBJECT_FILE).is_file():
            raise InputError(f"{who}: missing {SUBJECT_FILE}", path=f)
        read_subject_info(f / SUBJECT_FILE, f.name)
        if not (f / "skin.ply").is_file():
            raise InputError(f"{who}: missing skin.ply", path=f)
    head = template_head()
    faces = {"cranium": head.cranium.faces, "mandible": head.mandible.faces, "skin": head.skin.faces}
    result = Result(command="forensic.correspond")
    rows, kept = [], 0
    t0 = time.perf_counter()
    for f in folders:
        who = f"subject '{f.name}'"
        try:
            c = correspond_subject(_skull_mesh(f, who), read_mesh(f / "skin.ply"))
        except InputError as exc:
            rows.append({"id": f.name, "status": f"left out: {exc.message}"})
            result.warnings.append(f"{who} left out: {exc.message}")
            continue
        row = {"id": f.name, "skull_median_mm": round(c["skull_median_mm"], 2),
               "skin_median_mm": round(c["skin_median_mm"], 2), "skin_p95_mm": round(c["skin_p95_mm"], 2)}
        if not c["mandible_present"]:
            rows.append({**row, "status": "left out: no mandible found"})
            result.warnings.append(f"{who} left out: no mandible found on its skull (the model needs it)")
            continue
        dest = out / f.name
        dest.mkdir(parents=True, exist_ok=True)
        for part in ("cranium", "mandible", "skin"):
            write_mesh(SurfaceMesh(c[part], faces[part]), dest / f"{part}.ply")
        shutil.copyfile(f / SUBJECT_FILE, dest / SUBJECT_FILE)
        rows.append({**row, "status": "ok"})
        result.warnings += [f"{who}: {w}" for w in c["warnings"]]
        kept += 1
    ok = [r for r in rows if r["status"] == "ok"]
    result.summary = {"subjects": len(folders), "corresponded": kept,
                      "skin_median_mm": round(float(np.median([r["skin_median_mm"] for r in ok])), 2) if ok else None,
                      "seconds": round(time.perf_counter() - t0, 1), "next": f"medface forensic train --pairs {out}"}
    result.tables["subjects"] = rows
    result.outputs["pairs"] = str(out)
    (out / "correspondence.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "correspondence.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    result.limits.append("Correspondence comes from registering the phantom template; where a subject's anatomy "
                         "lies far from it (pathology, surgery, a scan that cuts the face) the vertices may slide. "
                         "Check the residuals of each subject.")
    return result
