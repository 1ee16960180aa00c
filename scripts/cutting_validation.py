"""Write the "## Cutting" section of docs/validation/surgery.md.

Cuts the phantom's skull (Le Fort I preset) and mandible (genioplasty preset) from sample_data,
and a box and a sphere whose removed slab is known analytically, and tabulates whether the
pieces are watertight and whether their volumes add up to the original minus the kerf. Only
this section is replaced (or appended when absent).

    .venv/bin/python scripts/cutting_validation.py
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import trimesh

from medface.data import SurfaceMesh
from medface.io import read_landmarks, read_mesh
from medface_surgery.cutting import CutPlane, cut, slab_volume_estimate
from medface_surgery.plan import cut_plane
from medface_surgery.presets import genioplasty, le_fort_i

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "validation" / "surgery.md"
HEADING = "## Cutting"
KERF = 1.0


def _mesh(tm: trimesh.Trimesh) -> SurfaceMesh:
    return SurfaceMesh(np.asarray(tm.vertices, float), np.asarray(tm.faces, np.int64))


def cases():
    sample = REPO / "sample_data"
    marks = read_landmarks(sample / "landmarks.mrk.json").to_dict()
    skull, mandible = read_mesh(sample / "skull.ply"), read_mesh(sample / "mandible.ply")
    yield "phantom skull", "Le Fort I preset", skull, [cut_plane(le_fort_i(marks))], None
    yield "phantom mandible", "genioplasty preset", mandible, [cut_plane(genioplasty(marks))], None
    box = _mesh(trimesh.creation.box((40.0, 30.0, 20.0)))
    yield "box 40 x 30 x 20 mm", "plane x = 3 mm", box, [CutPlane("x", [3.0, 0, 0], [1.0, 0, 0])], 30.0 * 20.0 * KERF
    ball = _mesh(trimesh.creation.icosphere(subdivisions=5, radius=20.0))
    r, a, b = 20.0, 2.0 - KERF / 2, 2.0 + KERF / 2  # spherical slab between z = a and z = b
    slab = np.pi * (r * r * (b - a) - (b ** 3 - a ** 3) / 3.0)
    yield "sphere r = 20 mm", "plane z = 2 mm", ball, [CutPlane("z", [0, 0, 2.0], [0, 0, 1.0])], slab


def table() -> list[str]:
    rows = ["| mesh | cut | pieces | all watertight | original (mm³) | reference kerf (mm³) | "
            "sum of pieces vs original − reference kerf |", "|---|---|---|---|---|---|---|"]
    for name, what, mesh, planes, analytic in cases():
        res = cut(mesh, planes, KERF)
        tight = all(len(p.mesh.boundary_edges()) == 0 for p in res.pieces)
        ref = analytic if analytic is not None else sum(slab_volume_estimate(mesh, p, KERF) for p in planes)
        kind = "analytic" if analytic is not None else "section area × kerf"
        expected = res.original_volume - ref
        rows.append(f"| {name} | {what} | {len(res.pieces)} | {'yes' if tight else 'NO'} | "
                    f"{res.original_volume:,.0f} | {ref:,.1f} ({kind}) | "
                    f"{100 * (res.pieces_volume - expected) / expected:+.3f} % |")
    return rows


def main() -> None:
    body = ["Cutting by planes with manifold3d (`medface_surgery/cutting.py`), kerf 1 mm: the saw removes a "
            "1 mm slab around each plane. Acceptance: pieces watertight, and their volumes plus the kerf add up "
            "to the original within 1 %. The kerf reference is the analytic slab for the box and the sphere, and "
            "the cross-section area times the kerf for the phantom bones (an independent estimate). Regenerate "
            "with `scripts/cutting_validation.py`; `tests/surgery/test_plan_cutting.py` asserts the same checks.",
            "", *table(), ""]
    section = "\n".join([HEADING, "", *body]) + "\n"
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Surgery plugin: validation\n\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")
    print(section)


if __name__ == "__main__":
    main()
