"""The plugin's own file layouts, written where a command's output is a set of files.

The runner writes single declared outputs through ``medface.io`` (`reconstruct` declares each
mesh, variants included, as a PLY and a VTP); this writes the layout that is more than one file:
the pairs folder of `correspond` (called by the command last). The model folder of `train` is
:func:`.shape_model.save_model`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def write_corresponded(out: Path, subjects: list) -> None:
    """The pairs folder `forensic train` reads: per kept subject
    (:class:`.correspond.SubjectCorrespondence`) its three meshes and a copy of its
    subject.json, and correspondence.json with every subject's row."""
    from medface.io import write_mesh

    from .train import SUBJECT_FILE

    for subject in subjects:
        if not subject.ok:
            continue
        dest = out / subject.folder.name
        dest.mkdir(parents=True, exist_ok=True)
        for part, mesh in subject.meshes.items():
            write_mesh(mesh, dest / f"{part}.ply")
        shutil.copyfile(subject.folder / SUBJECT_FILE, dest / SUBJECT_FILE)
    out.mkdir(parents=True, exist_ok=True)
    rows = [s.row for s in subjects]
    (out / "correspondence.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
