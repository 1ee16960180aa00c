"""Write the "## Soft-tissue model" section of docs/validation/surgery.md.

Two parts: the FEM's convergence under mesh refinement on a synthetic two-sphere geometry, and
the preview blend against the FEM on the phantom's bimaxillary advancement. Only this section is
replaced (or appended when absent); the rest of the file is left as it is.

    .venv/bin/python scripts/soft_tissue_validation.py
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from medface_surgery.fem import SoftTissueModel
from medface_surgery.preview import RigidBlendPreview
from medface_surgery.tissue_validation import (
    compare,
    convergence_study,
    face_regions,
    phantom_case,
)

REPO = Path(__file__).resolve().parents[1]
HEADING = "## Soft-tissue model"


def convergence_section() -> list[str]:
    rows = convergence_study((6.0, 4.5, 3.0), 2.0)
    lines = [
        "### Convergence under mesh refinement",
        "",
        ("Synthetic geometry (`tissue_validation.two_sphere_case`): a skin sphere of radius 25 mm "
         "(2562 vertices) around two bone spheres of radius 7 mm at x = -10 mm (fixed) and x = +10 mm "
         "(advanced 2 mm towards -y); nu = 0.45. Error: skin vertex displacement against the 2 mm mesh. "
         "Reproduced by `tests/surgery/test_fem.py::test_convergence_under_refinement` (which asserts the "
         "monotone decrease)."),
        "",
        "| h (mm) | nodes | tets | free dofs | RMS error (mm) | max error (mm) | relative RMS |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = " (reference)" if r.get("reference") else ""
        lines.append(f"| {r['h_mm']:g}{ref} | {r['nodes']} | {r['tets']} | {r['free_dofs']} | "
                     f"{r['rms_error_mm']:.4f} | {r['max_error_mm']:.4f} | {100 * r['relative_rms']:.2f} % |")
    return lines


def phantom_section() -> list[str]:
    segments, skin, landmarks, moves = phantom_case(REPO / "sample_data")
    model = SoftTissueModel(segments, skin, h=3.0, fixed=["cranium"], roi=25.0)
    preview = RigidBlendPreview(segments, skin, fixed=["cranium"])
    fem = model.predict(moves)
    blend = preview.predict(moves)
    regions = face_regions(skin, landmarks)
    table = compare(fem, blend, skin, regions)
    moved = compare(fem, skin.vertices, skin, regions)
    info = model.info()
    lines = [
        "### Preview blend against the FEM on the phantom",
        "",
        ("**No patient pre- or post-operative data was available, so this compares the two models with "
         "each other only; it says nothing about accuracy against real outcomes.**"),
        "",
        (f"Case: the sample head (`sample_data/`, synthetic), skin of {skin.n_vertices} vertices; the skull split "
         "by a Le Fort I box (4 mm above ANS, anterior to y = -15 mm) into cranium (fixed) and maxilla; "
         "maxilla advanced 3 mm, mandible advanced 5 mm (towards -y, LPS). FEM: 3 mm tetrahedra, "
         f"tissue within 25 mm of the moving bone ({info['nodes']} nodes, {info['tets']} tets, "
         f"{info['free_dofs']} free dofs), nu = 0.45. Preview: inverse-distance blend (p = 2, eps = 2 mm, "
         "cutoff 40 mm, fixed surroundings). Regions (`tissue_validation.face_regions`): the face anterior to the tragi, split "
         "at soft-tissue nasion and subnasale."),
        "",
        "| region | vertices | FEM skin movement, mean (mm) | preview vs FEM: mean (mm) | P90 (mm) | max (mm) | within 2 mm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("face", "upper", "mid", "lower"):
        r, m = table[name], moved[name]
        lines.append(f"| {name} | {r['n']} | {m['mean_mm']:.2f} | {r['mean_mm']:.2f} | {r['p90_mm']:.2f} | "
                     f"{r['max_mm']:.2f} | {r['within_2mm_pct']:.1f} % |")
    return lines


def write_section(path: Path, body: list[str]) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Surgery plugin: validation\n"
    section = "\n".join([HEADING, "", *body]) + "\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "validation" / "surgery.md")
    args = parser.parse_args()
    intro = [
        ("`medface_surgery.fem.SoftTissueModel`: linear elasticity on P1 tetrahedra from a regular grid, "
         "bone segments as Dirichlet data, factorised once, plan updates from the precomputed response to "
         "the 12 affine basis fields of each moving segment. Checks in `tests/surgery/test_fem.py`: patch "
         "test (a linear field on all boundary nodes is reproduced inside to 1e-8, nu = 0.3, 0.45, 0.49); "
         "no move gives exactly no change; a common rigid move of all bone moves the skin by it within "
         "1e-6 mm; the basis update equals the direct solve and a from-scratch solve to 1e-9 relative; "
         "absurd moves, open skins and a skin that does not enclose the bone are refused."),
        "",
    ]
    body = intro + convergence_section() + [""] + phantom_section()
    write_section(args.out, body)
    print("\n".join(body))


if __name__ == "__main__":
    main()
