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

import time
from dataclasses import dataclass, field
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


@dataclass
class SubjectCorrespondence:
    """One subject of a raw pairs folder: its table ``row`` (id, residuals, status), the
    template-topology ``meshes`` (cranium, mandible, skin; None when left out) and warnings."""

    folder: Path
    row: dict
    meshes: dict | None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.meshes is not None


def subject_folders(root: Path) -> list[Path]:
    """The subject folders of a raw pairs folder, checked cheaply (subject.json valid, skin.ply
    present) before any slow registration; InputError naming the subject."""
    from .train import SUBJECT_FILE, read_subject_info

    if not root.is_dir():
        raise InputError("the pairs folder does not exist", path=root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "template")
    if not folders:
        raise InputError("no subject folders", path=root, hint="one folder per subject: skull.ply, skin.ply, "
                                                               "subject.json")
    for f in folders:
        who = f"subject '{f.name}'"
        if not (f / SUBJECT_FILE).is_file():
            raise InputError(f"{who}: missing {SUBJECT_FILE}", path=f)
        read_subject_info(f / SUBJECT_FILE, f.name)
        if not (f / "skin.ply").is_file():
            raise InputError(f"{who}: missing skin.ply", path=f)
    return folders


def correspond_folder(folder: Path) -> SubjectCorrespondence:
    """Register the template onto one subject's skull and skin; a subject whose surfaces the
    registration refuses, or without a mandible, is left out with the reason."""
    from medface.io import read_mesh

    from .template import template_head

    who = f"subject '{folder.name}'"
    try:
        c = correspond_subject(_skull_mesh(folder, who), read_mesh(folder / "skin.ply"))
    except InputError as exc:
        return SubjectCorrespondence(folder, {"id": folder.name, "status": f"left out: {exc.message}"}, None,
                                     [f"{who} left out: {exc.message}"])
    row = {"id": folder.name, "skull_median_mm": round(c["skull_median_mm"], 2),
           "skin_median_mm": round(c["skin_median_mm"], 2), "skin_p95_mm": round(c["skin_p95_mm"], 2)}
    if not c["mandible_present"]:
        return SubjectCorrespondence(folder, {**row, "status": "left out: no mandible found"}, None,
                                     [f"{who} left out: no mandible found on its skull (the model needs it)"])
    head = template_head()
    meshes = {part: SurfaceMesh(c[part], getattr(head, part).faces) for part in ("cranium", "mandible", "skin")}
    return SubjectCorrespondence(folder, {**row, "status": "ok"}, meshes, [f"{who}: {w}" for w in c["warnings"]])


LIMIT = ("Correspondence comes from registering the phantom template; where a subject's anatomy lies far from it "
         "(pathology, surgery, a scan that cuts the face) the vertices may slide. Check the residuals of each subject.")


def correspond_command(pairs, out, context=None) -> Result:
    """CLI entry of `forensic correspond` (see the module docstring). The pairs folder is
    written last by :func:`.files.write_corresponded` (a folder layout of its own)."""
    from .files import write_corresponded

    root, out = Path(pairs), Path(out)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise InputError("the output folder lies inside the input folder", path=out,
                         hint="write the corresponded pairs to a folder of their own")
    folders = subject_folders(root)
    t0 = time.perf_counter()
    subjects = []
    for k, folder in enumerate(folders):
        if context is not None:
            context.stage(f"subject {k + 1} of {len(folders)}: {folder.name}")
        subjects.append(correspond_folder(folder))
    ok = [s.row for s in subjects if s.ok]
    result = Result(command="forensic.correspond", limits=[LIMIT])
    result.summary = {"subjects": len(folders), "corresponded": len(ok),
                      "skin_median_mm": round(float(np.median([r["skin_median_mm"] for r in ok])), 2) if ok else None,
                      "seconds": round(time.perf_counter() - t0, 1), "next": f"medface forensic train --pairs {out}"}
    result.tables["subjects"] = [s.row for s in subjects]
    result.warnings = [w for s in subjects for w in s.warnings]
    write_corresponded(out, subjects)
    result.outputs["pairs"] = str(out)
    return result
